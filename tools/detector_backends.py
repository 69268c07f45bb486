"""The detector tool's back ends: what each model is, where its weights are, and running a YOLO model.

A `Backend` names one model the detector tool may run (kind, weights, identity, training domain); its
model has `classes` and `predict(image, ...) -> [Box]`. Two kinds:
- "yolo": Ultralytics YOLO weights (COCO-pretrained `yolo11n.pt`, the user's own, or the project's
  shapes detector trained on flat renders);
- "ssd": Google's COCO SSD-MobileNet-v2 through LiteRT (`tools/detector_ssd.py`).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from pathlib import Path

from tools.errors import ModelLoadError
from tools.paths import cache_dir

PHOTOS = "photos"
SYNTHETIC = "synthetic shapes"  # the training domain of the project's offline shapes detector
SHAPES_DIR_PREFIX = "shapes-"  # trained shapes detectors live in the cache under shapes-<settings hash>


@dataclass(frozen=True)
class Backend:
    """One model the detector tool may run."""

    kind: str  # "yolo" | "ssd"
    path: str  # the weights file (or a YOLO release name, downloaded into the cache on first load)
    label: str  # identity for cache keys and traces (changes when the weights do)
    domain: str  # what it was trained on: PHOTOS or SYNTHETIC


@dataclass
class Box:
    """One detection, in pixels of the image the model was given."""

    box: tuple[float, float, float, float]
    name: str
    score: float
    class_id: int
    # the SSD with tiles: the score its whole-image pass gave this object (None: only a tile saw it)
    whole_score: float | None = None


def find_shapes_weights() -> Path | None:
    """The newest trained shapes detector in the cache, with any settings (the offline fallback)."""
    found = sorted(
        cache_dir("detectors").glob(f"{SHAPES_DIR_PREFIX}*/best.pt"), key=lambda p: p.stat().st_mtime
    )
    return found[-1] if found else None


def file_label(path: Path) -> str:
    """Weights identity for cache keys: file name, size and modification time (cheap, no hashing)."""
    st = path.stat()
    return f"{path.parent.name}/{path.name}:{st.st_size}:{int(st.st_mtime)}"


def yolo_backend(path: Path, label: str | None = None) -> Backend:
    domain = SYNTHETIC if path.parent.name.startswith(SHAPES_DIR_PREFIX) else PHOTOS
    return Backend("yolo", str(path), label or file_label(path), domain)


class YoloModel:
    """An Ultralytics YOLO model; one predict at a time (an ultralytics predictor is not thread-safe)."""

    def __init__(self, path: str):
        from tools.yolo_env import import_ultralytics, restore_threads

        ul = import_ultralytics()
        try:
            self._model = ul.YOLO(path)
        except Exception as e:
            raise ModelLoadError(f"cannot load detector weights {path}: {str(e).splitlines()[0]}") from None
        restore_threads()
        self._lock = threading.Lock()

    @property
    def classes(self) -> list[str]:
        names = self._model.names  # {index: name}
        return [names[i] for i in sorted(names)]

    def predict(self, im, conf=0.25, iou=0.45, max_det=100, class_ids=None) -> list[Box]:
        from tools.yolo_env import restore_threads

        with self._lock:
            res = self._model.predict(
                im, conf=conf, iou=iou, classes=class_ids, max_det=max_det, verbose=False
            )[0]
        restore_threads()
        names = self._model.names
        return [
            Box(tuple(xyxy), names[int(k)], float(c), int(k))
            for xyxy, c, k in zip(
                res.boxes.xyxy.tolist(), res.boxes.conf.tolist(), res.boxes.cls.tolist(), strict=True
            )
        ]
