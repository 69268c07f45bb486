"""OCR with Tesseract that reads documents and scene text (signs on busy photos), as word/line/block evidence.

One pass of Tesseract reads a clean page well and a photo badly: a sign's light letters on a coloured
plate, surrounded by windows and leaves, come back as nothing or as junk. So the tool runs several passes
and merges them:

- "page": the whole image (grayscale, upscaled when small) in the requested or automatic page mode;
  when it reads little, OSD (orientation detection) is asked and a rotated page is read upright;
- "sparse": the whole image in sparse-text mode (psm 11), which finds scattered words anywhere;
- "region:k": text-like regions found from the image itself (morphological gradient, letters closed
  into lines, contour boxes), each cropped, upscaled to a readable height, binarised (Otsu, text made
  dark on light) and read as a block.

Every reading is mapped back to original-image pixels, implausible words (junk, specks, unsure single
letters) are dropped, overlapping readings are de-duplicated keeping the more confident one, and lines
and blocks are rebuilt geometrically (`tools.ocr_layout`).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass

from tools.base import Tool
from tools.errors import BadInputError, ToolError
from tools.evidence import Finding, clip_box
from tools.images import ImageRef
from tools.ocr_layout import (
    OcrWord,
    clean_text,
    covered,
    group_blocks,
    group_lines,
    merge,
    plausible,
    rotate_box,
)

Box = tuple[float, float, float, float]


# Added to a reading's confidence when passes disagree about the same spot: the page pass sees whole
# lines, a region pass a cleaned-up crop, the sparse pass only isolated word fragments.
PASS_BONUS = {"page": 0.1, "region": 0.08, "sparse": 0.0}


@dataclass
class OCRConfig:
    """Knobs of the multi-pass reader (defaults measured on the rendered sign/receipt sets)."""

    max_regions: int = 8  # text-like regions read one by one (each costs one small Tesseract call)
    region_text_px: int = 48  # a region crop is scaled so its text line is about this many pixels tall
    max_upscale: float = 4.0  # never enlarge a crop more than this
    small_char_px: float = 9.0  # the page pass upscales images whose typical letter (median blob) is shorter
    page_char_px: float = 16.0  # ... to make that letter about this tall
    osd_min_conf: float = 2.0  # OSD orientation confidence needed before a page is rotated
    sparse_min_len: int = 3  # the sparse pass hallucinates short words on textures; it needs this many chars
    sparse_min_conf: float = 0.75  # and at least this confidence
    call_timeout_s: float = 20.0  # a single Tesseract call is killed after this
    read_enough_words: int = 8  # a page pass reading this many confident words needs no OSD


class _ThreadLimitedEnv(Mapping):
    """os.environ plus OMP_THREAD_LIMIT=1 for Tesseract only (2-3x faster on small images, and it
    leaves the cores to the other tools); the process's own environment is left untouched."""

    def __getitem__(self, k):
        if k == "OMP_THREAD_LIMIT" and k not in os.environ:
            return "1"
        return os.environ[k]

    def __iter__(self) -> Iterator[str]:
        yield from os.environ
        if "OMP_THREAD_LIMIT" not in os.environ:
            yield "OMP_THREAD_LIMIT"

    def __len__(self) -> int:
        return len(os.environ) + ("OMP_THREAD_LIMIT" not in os.environ)


class OCRTool(Tool):
    name = "ocr"
    description = (
        "Read the text in an image (documents, receipts, screenshots, signs in photos). Returns words, "
        "lines and blocks with their boxes and confidences. Give `region` to read only part of the image."
    )
    inputs = {
        "region": {"type": "box", "description": "Only read this part of the image.", "default": None},
        "psm": {
            "type": "integer",
            "description": "Tesseract page segmentation mode for the page pass (default: automatic).",
            "default": None,
            "minimum": 0,
            "maximum": 13,
        },
        "lang": {
            "type": "string",
            "description": "Tesseract language(s), e.g. 'eng' or 'eng+deu'.",
            "default": "eng",
        },
        "min_confidence": {
            "type": "number",
            "description": "Drop words read with less confidence than this (0..1).",
            "default": 0.5,
            "minimum": 0.0,
            "maximum": 1.0,
        },
        "mode": {
            "type": "string",
            "description": "'document' for pages and receipts, 'scene' for text in photos, 'auto' for both.",
            "default": "auto",
            "enum": ["auto", "document", "scene"],
        },
    }
    version = "1"
    evidence_prefix = "ocr"
    timeout_s = 30.0

    def __init__(self, config: OCRConfig | None = None):
        super().__init__()
        self.config = config or OCRConfig()
        self._languages: set[str] = set()

    def setup(self) -> None:
        try:
            import pytesseract
        except ImportError:
            raise ToolError(self.name, "pytesseract is not installed: pip install pytesseract") from None
        pytesseract.pytesseract.environ = _ThreadLimitedEnv()
        try:
            self._languages = set(pytesseract.get_languages(config=""))
        except pytesseract.TesseractNotFoundError:
            raise ToolError(
                self.name, "the tesseract program is not installed (apt-get install tesseract-ocr)"
            ) from None

    def forward(self, image: ImageRef, region=None, psm=None, lang="eng", min_confidence=0.5, mode="auto"):
        missing = [part for part in lang.split("+") if part not in self._languages]
        if missing:
            raise BadInputError(
                f"tool ocr: language(s) {missing} not installed; available: {sorted(self._languages)}"
            )
        im = image.image
        ox, oy = 0.0, 0.0
        if region is not None:
            x0, y0, x1, y1 = (round(v) for v in clip_box(region, im.size))
            if x1 - x0 < 2 or y1 - y0 < 2:
                raise BadInputError(
                    f"tool ocr: region {list(region)} lies outside the {im.size[0]}x{im.size[1]} image"
                )
            im, ox, oy = im.crop((x0, y0, x1, y1)), float(x0), float(y0)
        reader = _Reader(self.config, lang, time.monotonic() + self.timeout_s * 0.9)
        words = reader.read(im.convert("L"), psm=psm, mode=mode, min_conf=min_confidence)
        if region is not None:
            words = [
                OcrWord(
                    w.text, w.conf, (w.box[0] + ox, w.box[1] + oy, w.box[2] + ox, w.box[3] + oy), w.source
                )
                for w in words
            ]
        return to_findings(words)


def to_findings(words: list[OcrWord]) -> list[Finding]:
    """Merged words -> word, line and block findings, words carrying their line and block ids."""
    blocks = group_blocks(group_lines(words))
    word_f, line_f, block_f = [], [], []
    line_id = 0
    for block_id, block in enumerate(blocks):
        for line in block:
            for w in line.words:
                extra = {"line_id": line_id, "block_id": block_id, "pass": w.source}
                word_f.append(Finding("word", w.text, round(w.conf, 4), _round(w.box), extra))
            extra = {"line_id": line_id, "block_id": block_id, "n_words": len(line.words)}
            line_f.append(Finding("line", line.text, round(line.conf, 4), _round(line.box), extra))
            line_id += 1
        box = (
            min(li.box[0] for li in block),
            block[0].box[1],
            max(li.box[2] for li in block),
            block[-1].box[3],
        )
        conf = sum(li.conf for li in block) / len(block)
        extra = {"block_id": block_id, "n_lines": len(block)}
        block_f.append(
            Finding("block", "\n".join(li.text for li in block), round(conf, 4), _round(box), extra)
        )
    return word_f + line_f + block_f


def _round(box: Box) -> Box:
    return tuple(round(float(v), 1) for v in box)


class _Reader:
    """One OCR request: runs the passes within a deadline and merges what they read."""

    def __init__(self, cfg: OCRConfig, lang: str, deadline: float):
        self.cfg, self.lang, self.deadline = cfg, lang, deadline

    def read(self, gray, psm: int | None, mode: str, min_conf: float) -> list[OcrWord]:
        words: list[OcrWord] = []
        if mode in ("auto", "document"):
            words += self._page(gray, psm)
        if mode in ("auto", "scene"):
            words += self._sparse(gray)
            # Only the page pass's readings count as already read: the sparse pass splits "12.50" in two.
            words += self._regions(
                gray, already=[w for w in words if w.conf >= 0.85 and w.source.startswith("page")]
            )
        words = [OcrWord(clean_text(w.text), w.conf, w.box, w.source) for w in words]
        keep = []
        for w in words:
            sparse = w.source == "sparse"
            need = max(min_conf, self.cfg.sparse_min_conf) if sparse else min_conf
            if plausible(w, need, min_len=self.cfg.sparse_min_len if sparse else 1):
                keep.append(w)
        return merge(keep, bonus=PASS_BONUS)

    # ---- passes ----------------------------------------------------------------------------------

    def _page(self, gray, psm: int | None) -> list[OcrWord]:
        from PIL import Image

        # Upscale only small type: enlarging text that is already legible makes Tesseract worse.
        h = char_height(gray)
        scale = (
            1.0
            if h >= self.cfg.small_char_px
            else min(self.cfg.max_upscale, self.cfg.page_char_px / max(h, 4))
        )
        big = (
            gray.resize((round(gray.width * scale), round(gray.height * scale)), Image.LANCZOS)
            if scale > 1
            else gray
        )
        page_psm = 3 if psm is None else psm
        words = self._tesseract(big, page_psm, "page", lambda b: _scaled(b, scale))
        confident = [w for w in words if w.conf >= 0.8 and len(w.text.strip()) >= 2]
        if psm is not None or len(confident) >= self.cfg.read_enough_words:
            return words
        rotate = self._osd(gray)
        if rotate:
            upright = big.rotate(-rotate, expand=True)

            def back(b, big_size=big.size, up_size=upright.size):
                return _scaled(rotate_box(b, rotate, up_size, big_size), scale)

            turned = self._tesseract(upright, page_psm, f"page@{rotate}", back)
            if sum(w.conf for w in turned) > sum(w.conf for w in words):
                return turned
        return words

    def _sparse(self, gray) -> list[OcrWord]:
        return self._tesseract(gray, 11, "sparse", lambda b: b)

    def _regions(self, gray, already: list[OcrWord]) -> list[OcrWord]:
        from PIL import Image

        out: list[OcrWord] = []
        for k, box in enumerate(text_regions(gray, self.cfg.max_regions, skip=already)):
            if self._left() < 1.0:
                break
            x0, y0, x1, y1 = box
            h = y1 - y0
            m = max(4, round(0.3 * h))
            cx0, cy0 = max(0, x0 - m), max(0, y0 - m)
            crop = gray.crop((cx0, cy0, min(gray.width, x1 + m), min(gray.height, y1 + m)))
            scale = min(self.cfg.max_upscale, max(1.0, self.cfg.region_text_px / max(1, min(h, 80))))
            crop = crop.resize((round(crop.width * scale), round(crop.height * scale)), Image.LANCZOS)
            inner = (
                round((x0 - cx0) * scale),
                round((y0 - cy0) * scale),
                round((x1 - cx0) * scale),
                round((y1 - cy0) * scale),
            )
            prepared = binarize(crop, inner)

            def back(b, s=scale, dx=cx0, dy=cy0):
                return (b[0] / s + dx, b[1] / s + dy, b[2] / s + dx, b[3] / s + dy)

            out += self._tesseract(prepared, 6, f"region:{k}", back)
        return out

    # ---- Tesseract -------------------------------------------------------------------------------

    def _left(self) -> float:
        return self.deadline - time.monotonic()

    def _call(self, fn, *args, **kw):

        left = self._left()
        if left <= 0.2:
            raise ToolError("ocr", "ran out of time before Tesseract finished")
        try:
            return fn(*args, timeout=min(self.cfg.call_timeout_s, left), **kw)
        except RuntimeError as e:
            if "timeout" in str(e).lower():
                raise ToolError(
                    "ocr", f"Tesseract did not finish within {min(self.cfg.call_timeout_s, left):.1f} s"
                ) from None
            raise

    def _tesseract(self, img, psm: int, source: str, to_orig: Callable[[Box], Box]) -> list[OcrWord]:
        import pytesseract

        data = self._call(
            pytesseract.image_to_data,
            img,
            lang=self.lang,
            config=f"--psm {psm}",
            output_type=pytesseract.Output.DICT,
        )
        out = []
        for text, conf, x, y, w, h in zip(
            data["text"], data["conf"], data["left"], data["top"], data["width"], data["height"], strict=True
        ):
            if not str(text).strip() or float(conf) < 0:
                continue
            out.append(OcrWord(str(text).strip(), float(conf) / 100.0, to_orig((x, y, x + w, y + h)), source))
        return out

    def _osd(self, gray) -> int:
        """Degrees (90/180/270, clockwise) OSD says the page must turn to be upright; 0 when unsure."""
        import pytesseract

        try:
            osd = self._call(
                pytesseract.image_to_osd, gray, config="--psm 0", output_type=pytesseract.Output.DICT
            )
        except pytesseract.TesseractError:
            return 0  # "too few characters": nothing to orient by
        rotate = int(osd.get("rotate", 0)) % 360
        return rotate if rotate and float(osd.get("orientation_conf", 0)) >= self.cfg.osd_min_conf else 0


def _scaled(b: Box, s: float) -> Box:
    return (b[0] / s, b[1] / s, b[2] / s, b[3] / s)


def text_regions(gray, limit: int = 8, skip: list[OcrWord] = ()) -> list[Box]:
    """Boxes of text-like regions: strong edges (morphological gradient) closed horizontally into lines.

    Regions mostly covered by words already read confidently (`skip`) are left out; the rest are ranked
    by edge density times size, the most text-like first.
    """
    import cv2
    import numpy as np

    a = np.asarray(gray, dtype=np.uint8)
    H, W = a.shape
    grad = cv2.morphologyEx(a, cv2.MORPH_GRADIENT, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (3, 3)))
    _, bw = cv2.threshold(grad, 0, 255, cv2.THRESH_BINARY | cv2.THRESH_OTSU)
    closed = cv2.morphologyEx(
        bw, cv2.MORPH_CLOSE, cv2.getStructuringElement(cv2.MORPH_RECT, (max(9, W // 60), 3))
    )
    closed = cv2.morphologyEx(closed, cv2.MORPH_OPEN, cv2.getStructuringElement(cv2.MORPH_RECT, (3, 3)))
    contours, _ = cv2.findContours(closed, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    scored = []
    for c in contours:
        x, y, w, h = cv2.boundingRect(c)
        if h < 8 or h > H * 0.4 or w < h * 1.0 or w * h < 150:
            continue
        density = float(np.count_nonzero(bw[y : y + h, x : x + w])) / (w * h)
        if not 0.15 <= density <= 0.9:
            continue
        box = (float(x), float(y), float(x + w), float(y + h))
        if covered(box, skip):
            continue
        scored.append((density * (w * h) ** 0.5, box))
    scored.sort(key=lambda t: -t[0])
    return [b for _, b in scored[:limit]]


def char_height(gray) -> float:
    """Median height of letter-like blobs (Otsu, minority colour as ink); 0 when there are none."""
    import cv2
    import numpy as np

    a = np.asarray(gray, dtype=np.uint8)
    _, bw = cv2.threshold(a, 0, 255, cv2.THRESH_BINARY_INV | cv2.THRESH_OTSU)
    best: list[int] = []
    for ink in (bw, 255 - bw):  # dark-on-light or light-on-dark: the one with more letter-like blobs wins
        n, _, stats, _ = cv2.connectedComponentsWithStats(ink, connectivity=8)
        hs = [int(h) for _, _, w, h, area in stats[1:n] if 4 <= h <= 120 and w <= 3 * h and area >= 8]
        best = hs if len(hs) > len(best) else best
    return float(np.median(best)) if best else 0.0


def binarize(crop, inner: Box):
    """Otsu threshold computed on the region itself (not its busy margin), text made dark on light."""
    import cv2
    import numpy as np
    from PIL import Image

    a = np.asarray(crop, dtype=np.uint8)
    x0, y0, x1, y1 = inner
    core = a[y0:y1, x0:x1]
    if core.size == 0:
        return crop
    t, _ = cv2.threshold(core, 0, 255, cv2.THRESH_BINARY | cv2.THRESH_OTSU)
    bw = np.where(a > t, 255, 0).astype(np.uint8)
    # Text is the minority inside the region: if light pixels are fewer, the text is light; flip it.
    if np.count_nonzero(core > t) < core.size / 2:
        bw = 255 - bw
    return Image.fromarray(bw)
