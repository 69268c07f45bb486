"""The neural OCR engine: PP-OCRv4 text detection and recognition from `rapidocr-onnxruntime`.

The wheel ships the ONNX models (detection, recognition for Chinese + English, 180-degree angle
classifier), so nothing is downloaded. Tesseract reads clean pages well and scene text badly; this engine
is the reverse, so the OCR tool runs both and fuses them (`tools.ocr_fuse`).

The library's own `RapidOCR.__call__` is not used as a whole: its detector ignores the configured side
limit for the "max" limit type (a 1600 px photo is detected at full size) and it recognises every line,
while the OCR tool wants a bounded detector input and recognition only of the lines it asks for. So
`RapidEngine` drives the library's parts (detector network and post-processing, angle classifier,
recogniser) itself. The models load once per process (`engine()`), and inference is serialised by a
lock: onnxruntime sessions are shared, the detector object keeps per-call state, and on two cores two
concurrent inferences only slow each other down.

A detected line is a 4-point polygon; `TextLine.sub_box` maps a stretch of the line (fractions along the
reading direction) back to an axis-aligned box in image pixels, which gives word boxes from the
recogniser's character positions (CTC columns) or, failing those, from character counts.
"""

from __future__ import annotations

import os
import threading
import time
from dataclasses import dataclass, field

import numpy as np

from tools.errors import ToolError
from tools.ocr_layout import OcrWord

Box = tuple[float, float, float, float]


@dataclass
class RapidConfig:
    """Knobs of the neural engine (defaults measured on 2 cores)."""

    # The detector sees the image with its longer side at most this: a 1280 px photo at full size (its
    # small signs need it), a 4000 px one shrunk (the detector's cost grows with the pixels).
    det_side: int = 1280
    det_box_thresh: float = 0.5  # detector: mean text probability a line's polygon needs
    det_unclip: float = 1.6  # detector: how far a line's polygon is grown around its core
    threads: int = field(default_factory=lambda: max(1, min(2, os.cpu_count() or 1)))  # onnxruntime intra-op
    # Let the angle classifier turn single lines half round. Off: on short or blurred words it flips
    # upright text ("dog" read as "bop"); upside-down pages are turned whole (`upright_turn`).
    use_cls: bool = False
    rec_batch: int = 6  # lines per recogniser call (lines of similar width are batched together)
    min_score: float = 0.5  # a recognised line needs at least this mean character probability


# Fraction of a detected line's thickness taken off each side for word boxes (the detector's margin).
INSET = 0.15
# The margin added around an image before detection: this fraction of its shorter side, at most
# MARGIN_PX (a photo's text rarely touches its frame; a crop's often does).
MARGIN, MARGIN_PX = 0.1, 32

_LOAD_LOCK = threading.Lock()
_RUN_LOCK = threading.Lock()
_ENGINES: dict[tuple, object] = {}


def engine(cfg: RapidConfig):
    """The process's RapidOCR instance for these settings, built on first use (models load ~1 s)."""
    key = (cfg.threads, cfg.det_box_thresh, cfg.det_unclip)
    with _LOAD_LOCK:
        if key not in _ENGINES:
            try:
                from rapidocr_onnxruntime import RapidOCR
            except ImportError as e:
                raise ToolError(
                    "ocr", f"the neural OCR engine needs rapidocr-onnxruntime==1.4.4 (pip install): {e}"
                ) from None
            _ENGINES[key] = RapidOCR(
                intra_op_num_threads=cfg.threads,
                inter_op_num_threads=1,
                det_box_thresh=cfg.det_box_thresh,
                det_unclip_ratio=cfg.det_unclip,
                rec_batch_num=cfg.rec_batch,
            )
        return _ENGINES[key]


@dataclass(eq=False)  # compared by identity: a polygon array has no single truth value
class TextLine:
    """One detected text line: its polygon in image pixels and, once recognised, its text."""

    quad: np.ndarray  # 4x2 float32: top-left, top-right, bottom-right, bottom-left as detected
    text: str = ""
    conf: float = 0.0
    cols: list[float] | None = None  # centre of each character of `text`, as a fraction of the line's length
    vertical: bool = False  # the line runs top to bottom (its crop was turned a quarter)
    flipped: bool = False  # the angle classifier turned it half round (read right to left in the image)
    read: bool = False  # recognised (lines left to Tesseract are not)

    @property
    def box(self) -> Box:
        xs, ys = self.quad[:, 0], self.quad[:, 1]
        return (float(xs.min()), float(ys.min()), float(xs.max()), float(ys.max()))

    @property
    def height(self) -> float:
        """The line's thickness across its reading direction, in pixels."""
        q = self.quad
        if self.vertical:
            return float(max(np.linalg.norm(q[0] - q[1]), np.linalg.norm(q[3] - q[2])))
        return float(max(np.linalg.norm(q[0] - q[3]), np.linalg.norm(q[1] - q[2])))

    def sub_box(self, t0: float, t1: float) -> Box:
        """Axis-aligned box of the stretch of this line between fractions t0 < t1 of its reading direction."""
        t0, t1 = max(0.0, min(1.0, t0)), max(0.0, min(1.0, t1))
        if self.flipped:
            t0, t1 = 1.0 - t1, 1.0 - t0
        q = self.quad
        # Reading direction: along the top edge (tl -> tr), or for a vertical line down the left edge.
        a0, a1, b0, b1 = (q[0], q[1], q[3], q[2]) if not self.vertical else (q[0], q[3], q[1], q[2])
        # The detector grows each line's polygon around its letters (unclip); take part of that back so
        # word boxes hug the letters as Tesseract's do (lines are then grouped by their overlap).
        s = INSET
        a0, a1, b0, b1 = a0 + s * (b0 - a0), a1 + s * (b1 - a1), b0 + s * (a0 - b0), b1 + s * (a1 - b1)
        pts = [a0 + t * (a1 - a0) for t in (t0, t1)] + [b0 + t * (b1 - b0) for t in (t0, t1)]
        xs, ys = [float(p[0]) for p in pts], [float(p[1]) for p in pts]
        return (min(xs), min(ys), max(xs), max(ys))

    def words(self, source: str = "rapid") -> list[OcrWord]:
        """The line split at spaces into words with approximate boxes (from character positions)."""
        out, i = [], 0
        for token in self.text.split():
            start = self.text.index(token, i)
            i = start + len(token)
            out.append(self.span(start, i, source))
        return out

    def span(self, start: int, end: int, source: str = "rapid") -> OcrWord:
        """The characters text[start:end] as a word with its box: from the recogniser's character
        positions where it gave them, else from character counts (a line of one character is all of it)."""
        n = len(self.text)
        cols = self.cols if self.cols is not None and len(self.cols) == n else None
        if cols and len(self.text.strip()) > 1:
            pitch = char_pitch(cols)
            t0, t1 = cols[start] - pitch / 2, cols[end - 1] + pitch / 2
        else:
            t0, t1 = start / max(1, n), end / max(1, n)
        return OcrWord(self.text[start:end].strip(), self.conf, self.sub_box(t0, t1), source, None)


def char_pitch(cols: list[float]) -> float:
    """Typical distance between neighbouring characters (median), as a fraction of the line."""
    gaps = sorted(b - a for a, b in zip(cols, cols[1:], strict=False) if b > a)
    return gaps[len(gaps) // 2] if gaps else 0.05


class RapidEngine:
    """Detection and recognition on one RGB image (numpy HxWx3, RGB order) for one OCR request."""

    def __init__(self, cfg: RapidConfig | None = None, deadline: float | None = None):
        self.cfg = cfg or RapidConfig()
        self.deadline = deadline
        self._ocr = engine(self.cfg)

    def detect(self, rgb: np.ndarray) -> list[TextLine]:
        """Text lines in reading order (top to bottom, left to right), polygons in image pixels.

        Where none is found, it looks again with a margin around the image, in the colour of its border:
        the detector finds no line whose letters touch the frame (a tight crop of a word), as Tesseract's
        docs say of borders too. Only then: a margin shifts what the detector sees of other images."""
        h, w = rgb.shape[:2]
        return self._detect(rgb, 0) or self._detect(rgb, min(MARGIN_PX, max(4, round(MARGIN * min(h, w)))))

    def _detect(self, rgb: np.ndarray, m: int) -> list[TextLine]:
        from rapidocr_onnxruntime.ch_ppocr_det.utils import DetPreProcess

        det = self._ocr.text_det
        bgr = np.ascontiguousarray(rgb[:, :, ::-1])
        h, w = bgr.shape[:2]
        # Tiny or very flat images get at least 32 px of height, as the library pads them.
        pad = max(m, (max(0, 32 - h) + 1) // 2)
        if m:  # the margin; the side limit grows by it, so the image itself is seen at the same scale
            ring = np.concatenate([bgr[0], bgr[-1], bgr[:, 0], bgr[:, -1]])
            fill = np.median(ring, axis=0).astype(bgr.dtype)
            bgr = np.stack(
                [np.pad(bgr[:, :, c], ((pad, pad), (m, m)), constant_values=fill[c]) for c in range(3)],
                axis=2,
            )
        elif pad:
            bgr = np.pad(bgr, ((pad, pad), (0, 0), (0, 0)), mode="edge")
        pre = DetPreProcess(self.cfg.det_side + 2 * pad * (m > 0), "max", det.mean, det.std)
        with _RUN_LOCK:
            x = pre(bgr)
            if x is None:
                return []
            preds = det.infer(x)[0]
        boxes, _ = det.postprocess_op(preds, bgr.shape[:2])
        if boxes is None or len(boxes) == 0:
            return []
        boxes = det.filter_tag_det_res(boxes, bgr.shape[:2])
        if len(boxes) == 0:
            return []
        lines = []
        for q in self._ocr.sorted_boxes(boxes):
            q = np.asarray(q, dtype=np.float32).copy()
            q[:, 1] = np.clip(q[:, 1] - pad, 0, h)
            q[:, 0] = np.clip(q[:, 0] - m, 0, w)
            wide = max(np.linalg.norm(q[0] - q[1]), np.linalg.norm(q[2] - q[3]))
            tall = max(np.linalg.norm(q[0] - q[3]), np.linalg.norm(q[1] - q[2]))
            lines.append(TextLine(q, vertical=tall >= 1.5 * wide))
        return lines

    def upright_turn(self, rgb: np.ndarray, lines: list[TextLine], most: int = 12) -> int:
        """Degrees (counter-clockwise) to turn the image so most of its lines read upright; 0 when they do.

        Mostly vertical lines mean a sideways page; the angle classifier, asked about the longest lines
        at once, says which way round (one line's verdict is unreliable, the majority is not)."""
        if len(lines) < 2:
            return 0  # one line is no page: it is read as it lies
        vertical = [li for li in lines if li.vertical]
        group = vertical if len(vertical) > 0.6 * len(lines) else [li for li in lines if not li.vertical]
        if len(group) < 2:
            return 0
        group = sorted(group, key=lambda li: -(li.box[2] - li.box[0]) * (li.box[3] - li.box[1]))[:most]
        bgr = np.ascontiguousarray(rgb[:, :, ::-1])
        with _RUN_LOCK:
            _, votes, _ = self._ocr.text_cls([rectify(bgr, li) for li in group])
        flipped = sum(float(score) for label, score in votes if label == "180")
        upright = sum(float(score) for label, score in votes if label != "180")
        if group[0].vertical:
            # Vertical crops are turned a quarter counter-clockwise to be read (`rectify`).
            return -90 if flipped > upright else 90
        if flipped <= 2 * upright:
            return 0
        # Turning a photo upside down on a wrong verdict would lose everything: the recogniser must
        # also be surer of the lines read half round.
        crops = [rectify(bgr, li) for li in group]
        with _RUN_LOCK:
            as_is, _ = self._ocr.text_rec(crops)
            turned, _ = self._ocr.text_rec([np.ascontiguousarray(c[::-1, ::-1]) for c in crops])
        mean = lambda res: sum(float(r[1]) for r in res) / len(res)  # noqa: E731
        return 180 if mean(turned) > mean(as_is) + 0.05 else 0

    def recognize(self, rgb: np.ndarray, lines: list[TextLine]) -> list[TextLine]:
        """Read `lines` (in place, batched); returns those read with at least `min_score`. Stops between
        batches once the request's deadline has passed (the lines not reached stay unread)."""
        if not lines:
            return []
        bgr = np.ascontiguousarray(rgb[:, :, ::-1])
        crops = [rectify(bgr, li) for li in lines]
        # Sort by aspect so each batch pads its lines to a similar width (as the library does).
        order = sorted(range(len(lines)), key=lambda i: crops[i].shape[1] / max(1, crops[i].shape[0]))
        step = max(1, self.cfg.rec_batch)
        for k in range(0, len(order), step):
            if self.deadline is not None and time.monotonic() > self.deadline:
                break
            idx = order[k : k + step]
            batch = [crops[i] for i in idx]
            with _RUN_LOCK:
                if self.cfg.use_cls:
                    batch, cls_res, _ = self._ocr.text_cls(batch)
                else:
                    cls_res = [("0", 1.0)] * len(batch)
                res, _ = self._ocr.text_rec(batch, True)
            for i, crop, (label, score), r in zip(idx, batch, cls_res, res, strict=True):
                line = lines[i]
                line.read = True
                line.flipped = label == "180" and score > self._ocr.text_cls.cls_thresh
                line.text, line.conf = str(r[0]), float(r[1])
                line.cols = _char_columns(r, crop.shape[1])
        return [li for li in lines if li.read and li.text.strip() and li.conf >= self.cfg.min_score]

    def read(self, rgb: np.ndarray, min_conf: float = 0.5) -> list[OcrWord]:
        """The neural engine alone: every detected line recognised and split into plausible words."""
        from tools.ocr_layout import clean_text, plausible

        out = []
        for line in self.recognize(rgb, self.detect(rgb)):
            for w in line.words():
                w.text = clean_text(w.text, keep_hyphen=True)
                if plausible(w, min_conf):
                    out.append(w)
        return out


def rectify(img: np.ndarray, line: TextLine) -> np.ndarray:
    """The line's polygon warped to an upright rectangle in reading orientation (as the recogniser needs)."""
    import cv2

    q = line.quad.astype(np.float32)
    w = int(max(np.linalg.norm(q[0] - q[1]), np.linalg.norm(q[2] - q[3])))
    h = int(max(np.linalg.norm(q[0] - q[3]), np.linalg.norm(q[1] - q[2])))
    w, h = max(w, 2), max(h, 2)
    dst = np.array([[0, 0], [w, 0], [w, h], [0, h]], dtype=np.float32)
    m = cv2.getPerspectiveTransform(q, dst)
    crop = cv2.warpPerspective(img, m, (w, h), borderMode=cv2.BORDER_REPLICATE, flags=cv2.INTER_CUBIC)
    if line.vertical:
        crop = np.rot90(crop)
    return np.ascontiguousarray(crop)


def _char_columns(rec: tuple, crop_w: int) -> list[float] | None:
    """Where the recogniser placed each character of its text (CTC column of the character), as a
    fraction of the crop's width; None when it gave no positions for every character."""
    if len(rec) < 3 or not rec[2]:
        return None
    try:
        col_num, _words, word_cols = rec[2][0], rec[2][1], rec[2][2]
        cols = [c for group in word_cols for c in group]
    except (IndexError, TypeError):
        return None
    if len(cols) != len(rec[0]) or not col_num:
        return None
    return [(c + 0.5) / float(col_num) for c in cols]
