"""One OCR request with both engines: which engine leads, on what, and how the page is turned first.

`read_fused` is what the OCR tool runs by default (`tools.ocr`). The neural detector looks at the image
first; its lines decide whether the image is a page (many lines, or text covering much of it) or a scene,
and whether it lies sideways or upside down (it is then read turned upright, boxes mapped back). The
readings are combined by `tools.ocr_fuse`; a failing engine leaves the other's reading and a note.

An image far longer than it is wide (a 20000x30 strip, a long banner) is read in overlapping tiles
(`tiles`, `read_tiled`): whole, the neural detector would see it shrunk to a line of specks and
Tesseract refuses a side above 32767 pixels once its page pass upscales small letters. Each word is kept
from the one tile whose own stretch holds its centre, so the overlaps read nothing twice.
"""

from __future__ import annotations

import numpy as np

from tools.errors import ToolError
from tools.evidence import clip_box
from tools.ocr_fuse import FuseConfig, along, fuse, on_line
from tools.ocr_image import Frame
from tools.ocr_layout import OcrWord
from tools.ocr_rapid import TextLine


def read_engines(engine: str, reader, rapid, img, psm, mode: str, min_conf: float, cfg: FuseConfig):
    """One image read by `engine` ("tesseract", "rapid" or both: "auto") -> (words, notes, dense)."""
    if engine == "tesseract":
        return reader.read(img.convert("L"), psm=psm, mode=mode, min_conf=min_conf), [], False
    rgb = np.asarray(img.convert("RGB"))
    if engine == "rapid":
        return rapid.read(rgb, min_conf), [], False
    return read_fused(reader, rapid, img.convert("L"), rgb, psm, mode, min_conf, cfg)


def read_fused(
    reader, rapid, gray_img, rgb: np.ndarray, psm, mode: str, min_conf: float, cfg: FuseConfig, turned=False
):
    """Both engines on one image at full recall -> (words, notes about an engine that failed, whether it
    was read as a document page).

    `reader` is the Tesseract reader of one request (`tools.ocr._Reader`), `rapid` a `RapidEngine` or an
    exception saying why it could not load. The neural detector decides what the image is: a page with
    many lines is read by Tesseract's page pass, and the neural recogniser reads only the lines Tesseract
    did not read confidently (a receipt's far-right prices, a stamp, a logo); a scene's few lines are all
    read by the neural recogniser and by Tesseract on the same line crops, and Tesseract's own scene
    passes (sparse text, text-like regions) run only when the neural engine found nothing it is sure of.
    `mode` is a hint: "document"/"scene" choose the path; no path drops a line the detector found."""
    notes: list[str] = []
    gray = np.asarray(gray_img, dtype=np.uint8)
    lines: list[TextLine] = []
    if isinstance(rapid, Exception):
        notes.append(f"neural OCR engine unavailable: {rapid}")
        rapid = None
    else:
        try:
            lines = rapid.detect(rgb)
        except Exception as e:  # an engine's failure leaves the other's reading, never a crash
            notes.append(f"neural OCR engine failed: {type(e).__name__}: {e}")
            rapid = None
    if rapid is not None and not turned:
        try:
            turn = rapid.upright_turn(rgb, lines)
        except Exception as e:
            notes.append(f"neural OCR engine failed: {type(e).__name__}: {e}")
            rapid, turn = None, 0
        if turn:  # a sideways or upside-down page: read it turned upright, boxes mapped back
            return _read_turned(reader, rapid, gray_img, rgb, turn, psm, mode, min_conf, cfg, notes)
    # A page: many lines, or text covering much of the image (a scan, a zoomed-in crop of small print).
    area = sum((li.box[2] - li.box[0]) * (li.box[3] - li.box[1]) for li in lines) / max(1, rgb.size // 3)
    dense = mode == "document" or (
        mode == "auto" and (len(lines) >= cfg.dense_lines or area >= cfg.dense_area)
    )

    def tesseract(kind: str) -> list[OcrWord]:
        try:
            return reader.read(gray_img, psm=psm, mode=kind, min_conf=min_conf)
        except ToolError as e:
            notes.append(f"Tesseract failed: {e.reason}")
            return []

    if rapid is None:
        return tesseract("auto" if mode == "auto" else mode), notes, mode == "document"
    if dense:
        tess = tesseract("document")
        sure = [w for w in tess if w.conf >= cfg.doc_conf]
        todo = [li for li in lines if not _covered(li, sure, cfg)]
        read = _recognize(rapid, rgb, todo, notes)
    else:
        read = _recognize(rapid, rgb, lines + cut_lines(gray_img, lines, cfg), notes)
        tess = []
        if read:
            try:
                tess = _plausible(reader.read_lines(gray, read, cfg), min_conf)
            except ToolError as e:
                notes.append(f"Tesseract failed: {e.reason}")
        if not any(li.conf >= cfg.doc_conf for li in read):
            tess += tesseract("scene")
    words = fuse(read, tess, dense, cfg, gray)
    # Lines are grouped in one level frame: Tesseract's deskewed page when it read one, else the image
    # turned so the neural lines run level (a slanted paragraph's lines would otherwise run together).
    frame = getattr(reader, "frame", None) if dense else None
    if frame is None or not frame.steps:
        frame = _level_frame(gray_img, read, cfg)
    for w in words:
        w.fbox = frame.from_original(w.box) if frame is not None and frame.steps else None
    return [w for w in words if w.conf >= min_conf], notes, dense


def cut_lines(gray_img, lines: list[TextLine], cfg: FuseConfig) -> list[TextLine]:
    """The stretches of text the neural detector cut off its lines, as lines of their own.

    The detector sometimes finds only part of a line ("AND ANSWER BANANA" of a sign's longer line). The
    image's text-like regions (`text_regions`, letters chained by shape, ~0.2 CPU-s) do not stop where
    the detector did: a region on a detected line's row reaching more than a line height past its end
    marks text the detector missed, and that stretch is read like any detected line. A stretch another
    detected line already covers is not added twice."""
    from tools.ocr_image import text_regions

    flat = [li for li in lines if not li.vertical]
    if not flat:
        return []
    small, s = fit(gray_img, cfg.region_side)
    out: list[TextLine] = []
    for box, _ in text_regions(small, cfg.cut_regions):
        x0, y0, x1, y1 = (v / s for v in box)
        for li in flat:
            lx0, ly0, lx1, ly1 = li.box
            lh = ly1 - ly0
            vert = min(y1, ly1) - max(y0, ly0)
            if vert < 0.5 * min(y1 - y0, lh) or not 0.35 * lh <= y1 - y0 <= 1.2 * lh:
                continue
            m = 0.3 * lh
            for a, b in ((x0 - m, lx0), (lx1, x1 + m)):
                a, b = max(0.0, a), min(float(gray_img.width), b)
                if b - a < lh + m or any(_row_overlap(o, a, ly0, b, ly1) for o in flat + out if o is not li):
                    continue
                quad = np.array([[a, ly0], [b, ly0], [b, ly1], [a, ly1]], dtype=np.float32)
                out.append(TextLine(quad))
    return out


def _row_overlap(li: TextLine, x0: float, y0: float, x1: float, y1: float) -> bool:
    b = li.box
    return min(x1, b[2]) - max(x0, b[0]) > 0 and min(y1, b[3]) - max(y0, b[1]) > 0.5 * min(
        y1 - y0, b[3] - b[1]
    )


def fit(img, max_side: int):
    """`img` shrunk so its longer side is at most `max_side`, and the factor applied (1.0 when unchanged)."""
    from PIL import Image

    s = min(1.0, max_side / max(img.size))
    if s >= 1.0:
        return img, 1.0
    return img.resize((max(1, round(img.width * s)), max(1, round(img.height * s))), Image.LANCZOS), s


def _read_turned(reader, rapid, gray_img, rgb, turn: int, psm, mode, min_conf, cfg, notes):
    from PIL import Image

    from tools.evidence import clip_box

    frame, gray_t = Frame(gray_img.size).then(gray_img, turn)
    rgb_t = np.asarray(Image.fromarray(rgb).rotate(turn, expand=True))
    words, more, dense = read_fused(reader, rapid, gray_t, rgb_t, psm, mode, min_conf, cfg, turned=True)
    for w in words:
        w.fbox = w.fbox or w.box  # lines are grouped in the upright frame
        w.box = clip_box(frame.to_original(w.box), frame.size)
    return words, notes + more, dense


def _level_frame(gray_img, lines: list[TextLine], cfg: FuseConfig) -> Frame | None:
    """The image turned so its horizontal neural lines run level (median slant), None when they do."""
    import math

    slants = []
    for li in lines:
        if not li.vertical:
            (x0, y0), (x1, y1) = li.quad[0], li.quad[1]
            slants.append(math.degrees(math.atan2(float(y0 - y1), float(x1 - x0))))
    if not slants:
        return None
    slant = sorted(slants)[len(slants) // 2]
    if abs(slant) < cfg.level_deg or abs(slant) > 45:
        return None
    return Frame(gray_img.size).then(gray_img, -slant)[0]


def _recognize(rapid, rgb, lines: list[TextLine], notes: list[str]) -> list[TextLine]:
    try:
        return rapid.recognize(rgb, lines)
    except Exception as e:
        notes.append(f"neural OCR engine failed: {type(e).__name__}: {e}")
        return []


def _plausible(words: list[OcrWord], min_conf: float) -> list[OcrWord]:
    from tools.ocr_layout import clean_text, plausible

    out = []
    for w in words:
        w.text = clean_text(w.text, keep_hyphen=True)
        if plausible(w, min_conf):
            out.append(w)
    return out


def _covered(li: TextLine, words: list[OcrWord], cfg: FuseConfig) -> bool:
    """Did Tesseract's confident words read this detected line end to end (no gap a word could hide in)?"""
    q = li.quad
    a0, a1 = (q[0], q[3]) if li.vertical else (q[0], q[1])
    length = float(np.linalg.norm(a1 - a0))
    if length <= 0:
        return True
    spans = []
    for w in words:
        if not on_line(li, w.box, cfg):
            continue
        b = w.box
        ends = ((b[0], b[1]), (b[0], b[3])) if li.vertical else ((b[0], b[1]), (b[2], b[1]))
        ts = sorted(along(li, (x, y, x, y)) for x, y in ends)
        spans.append((ts[0], ts[1]))
    if not spans:
        return False
    allowed = li.height / length  # a gap wider than a line height could hold a word
    t = 0.0
    for s0, s1 in sorted(spans):
        if s0 - t > allowed:
            return False
        t = max(t, s1)
    return 1.0 - t <= allowed


# Tesseract refuses an image with a side above 32767 pixels; tiles stay well below it when upscaled.
TESSERACT_MAX_SIDE = 32767


def tiles(size: tuple[int, int], det_side: int, ratio: float = 4.0) -> list[tuple[tuple, tuple]]:
    """The tiles an image is read in: [(crop box, (start, end) of the stretch along its long side whose
    word centres the tile keeps)], or [] when it is read whole. Tiled: an image whose long side passes
    the neural detector's side and is `ratio` times its short side or more (the detector would shrink
    its text away), or any side Tesseract could not take."""
    w, h = size
    long, short = max(w, h), max(1, min(w, h))
    if long <= det_side or (long < ratio * short and long * 4 <= TESSERACT_MAX_SIDE):
        return []
    tile = max(det_side, 2 * short)
    overlap = min(tile // 2, max(256, 10 * short))  # a word cut by one tile's edge is whole in the next
    starts = list(range(0, max(1, long - overlap), tile - overlap))
    out = []
    for k, a in enumerate(starts):
        b = min(long, a + tile)
        own = (a + overlap // 2 if k else 0, b - overlap // 2 if k < len(starts) - 1 else long)
        out.append(((a, 0, b, h) if w >= h else (0, a, w, b), own))
        if b >= long:
            break
    out[-1] = (out[-1][0], (out[-1][1][0], long))
    return out


def read_tiled(read, img, spans: list[tuple[tuple, tuple]], max_side: int):
    """`read(image)` -> (words, notes, dense) over the tiles, boxes mapped back to `img`; a word kept
    from the tile whose own stretch holds its centre. Thin tiles (a strip's) are stacked into one sheet
    read once, side by side across a strip's short side, when the sheet fits `max_side`; others are read
    one by one."""
    from PIL import Image

    across = img.width >= img.height  # the strip runs across: tiles stack downwards
    short = img.height if across else img.width
    band = short + max(16, short // 2)  # a tile and the white gap after it
    length = max(b[2] - b[0] if across else b[3] - b[1] for b, _ in spans)
    placed = []  # (tile's box in img, own stretch, its offset in what was read)
    if len(spans) * band <= max_side and length <= max_side:
        size = (length, len(spans) * band) if across else (len(spans) * band, length)
        sheet = Image.new(img.mode, size, "white")
        for k, (box, own) in enumerate(spans):
            at = (0, k * band) if across else (k * band, 0)
            sheet.paste(img.crop(box), at)
            placed.append((box, own, at))
        readings = [(read(sheet), placed)]
    else:
        readings = [(read(img.crop(box)), [(box, own, (0, 0))]) for box, own in spans]
    words, notes, dense = [], [], False
    for (ws, more, d), tiles_read in readings:
        dense |= d
        notes += [n for n in more if n not in notes]
        for w in ws:
            cy = (w.box[1] + w.box[3]) / 2 if across else (w.box[0] + w.box[2]) / 2
            k = min(len(tiles_read) - 1, int(cy // band)) if len(tiles_read) > 1 else 0
            box, (a, b), (ox, oy) = tiles_read[k]
            dx, dy = box[0] - ox, box[1] - oy
            shift = lambda q, dx=dx, dy=dy: (q[0] + dx, q[1] + dy, q[2] + dx, q[3] + dy)  # noqa: E731
            w.box, w.fbox = clip_box(shift(w.box), img.size), None  # lines are grouped in img's frame
            w.parts = [{**p, "box": shift(p["box"])} for p in w.parts]
            centre = (w.box[0] + w.box[2]) / 2 if across else (w.box[1] + w.box[3]) / 2
            if a <= centre < b:
                words.append(w)
    return words, notes, dense
