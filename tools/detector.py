"""The object detector tool: Ultralytics YOLO boxes, class names and confidences as evidence.

Weights, in order of what the user asked for:
- a local `.pt` file: used as is;
- a release name such as "yolo11n.pt" (the default, COCO-pretrained): taken from the project cache,
  downloaded there once when the machine is online;
- "shapes": the project's own detector, trained on its synthetic shapes (`launch.py detector prepare`).
Offline with the default weights not cached, the tool falls back to the shapes detector if one is
trained and says so (`note`); otherwise it fails with one line that says what to do.

Every call ends with one `detector` record (no box): the classes the weights know, their training
domain, and whether the model applies to this image. The shapes detector was trained on flat renders:
on a photo (`render_stats`) its boxes are left out, so no square on a coffee cup becomes evidence.
"""

from __future__ import annotations

import logging
import threading
from pathlib import Path

from tools.base import Tool
from tools.errors import BadInputError, ModelLoadError
from tools.evidence import Finding, crop_to_original
from tools.images import ImageRef
from tools.paths import cache_dir
from tools.render_stats import (
    FLAT_FILL_MIN,
    RENDER_SCORE_MIN,
    ROW_SCORE_MIN,
    flat_fill,
    render_score,
    row_score,
)

log = logging.getLogger(__name__)

DEFAULT_WEIGHTS = "yolo11n.pt"  # COCO-pretrained, 80 classes, ~5.4 MB
SHAPES = "shapes"
SYNTHETIC = "synthetic shapes"  # the training domain of the offline detector
SHAPES_DIR_PREFIX = "shapes-"  # trained shapes detectors live in the cache under shapes-<settings hash>


def find_shapes_weights() -> Path | None:
    """The newest trained shapes detector in the cache, with any settings (the offline fallback)."""
    found = sorted(
        cache_dir("detectors").glob(f"{SHAPES_DIR_PREFIX}*/best.pt"), key=lambda p: p.stat().st_mtime
    )
    return found[-1] if found else None


class DetectorTool(Tool):
    name = "detect"
    description = (
        "Detect objects (YOLO): returns boxes with class names and confidences. "
        "Use to count things or to say where something is."
    )
    inputs = {
        "classes": {
            "type": "array",
            "description": "Only these class names (e.g. ['person', 'bus']); empty = all classes.",
            "default": None,
        },
        "conf": {
            "type": "number",
            "description": "Minimum confidence.",
            "default": 0.25,
            "minimum": 0,
            "maximum": 1,
        },
        "iou": {
            "type": "number",
            "description": "IoU threshold of non-maximum suppression.",
            "default": 0.45,
            "minimum": 0,
            "maximum": 1,
        },
        "max_det": {
            "type": "integer",
            "description": "At most this many boxes.",
            "default": 100,
            "minimum": 1,
        },
        "region": {"type": "box", "description": "Only look inside this box.", "default": None},
    }
    evidence_prefix = "det"
    timeout_s = 60.0  # the first call loads the model

    def __init__(self, weights: str | Path | None = None):
        super().__init__()
        self.requested = str(weights) if weights else DEFAULT_WEIGHTS
        self.note = ""  # what the tool is really using, when that differs from what was asked
        self._resolved: tuple[str, str] | None = None
        self._model = None
        self._predict_lock = threading.Lock()  # an ultralytics predictor is not thread-safe

    # ---- which weights -------------------------------------------------------------------------

    def resolve(self) -> tuple[str, str]:
        """(weights to load: a path or a release name to download, a label for versions and traces)."""
        if self._resolved is None:
            self._resolved = self._resolve()
        return self._resolved

    def _resolve(self) -> tuple[str, str]:
        from tools.yolo_env import offline

        req = self.requested
        if req == SHAPES:
            found = find_shapes_weights()
            if found is None:
                raise ModelLoadError(
                    "no shapes detector trained yet: run `python launch.py detector prepare`"
                )
            return str(found), _label(found)
        p = Path(req).expanduser()
        if p.is_file():
            return str(p), _label(p)
        if p.suffix != ".pt" or p.parent != Path("."):
            raise ModelLoadError(f"detector weights not found: {req}")
        cached = cache_dir("detectors") / p.name
        if cached.is_file():
            return str(cached), _label(cached)
        if offline():
            return self._fallback(f"{req} is not cached and the machine is offline (YOLO_OFFLINE=1)")
        return str(cached), p.name  # downloaded into the cache by setup()

    def _fallback(self, why: str) -> tuple[str, str]:
        found = find_shapes_weights()
        if found is None:
            raise ModelLoadError(
                f"detector weights unavailable: {why}; pass --detector-weights FILE.pt, "
                "or train the offline shapes detector with `python launch.py detector prepare`"
            )
        self.note = (
            f"{why}; using the project's shapes detector {found.parent.name} (circle, square, triangle)"
        )
        log.info("detector: %s", self.note)  # front ends show `note` themselves
        return str(found), _label(found)

    @property
    def version(self) -> str:  # the cache key must change with the weights
        return f"2:{self.resolve()[1]}"

    @property
    def domain(self) -> str:
        """What the weights were trained on: "synthetic shapes" (the offline detector) or "photos"."""
        path = Path(self.resolve()[0])
        return SYNTHETIC if self.requested == SHAPES or path.parent.name.startswith("shapes-") else "photos"

    @property
    def classes(self) -> list[str]:
        """The class names the loaded weights know (loads them on first use)."""
        if not self._ready:
            with self._setup_lock:
                if not self._ready:
                    self.setup()
                    self._ready = True
        return self.class_names

    # ---- work ----------------------------------------------------------------------------------

    def setup(self) -> None:
        from tools.yolo_env import import_ultralytics, restore_threads

        ul = import_ultralytics()
        path, _ = self.resolve()
        try:
            self._model = ul.YOLO(path)
        except Exception as e:
            if Path(path).is_file() or self.requested != DEFAULT_WEIGHTS:
                raise ModelLoadError(
                    f"cannot load detector weights {path}: {str(e).splitlines()[0]}"
                ) from None
            # The default weights could not be downloaded: fall back like an offline machine.
            self._resolved = self._fallback(f"{self.requested} could not be downloaded")
            self._model = ul.YOLO(self._resolved[0])
        restore_threads()

    @property
    def class_names(self) -> list[str]:
        return list(self._model.names.values()) if self._model is not None else []

    def forward(
        self, image: ImageRef, classes=None, conf=0.25, iou=0.45, max_det=100, region=None
    ) -> list[Finding]:
        from tools.yolo_env import restore_threads

        names = self._model.names  # {index: name}
        class_ids = None
        if classes:
            by_name = {n.lower(): i for i, n in names.items()}
            unknown = [c for c in classes if str(c).lower() not in by_name]
            if unknown:
                raise BadInputError(f"detector has no class {unknown}; it knows {sorted(by_name)}")
            class_ids = [by_name[str(c).lower()] for c in classes]
        im, origin = image.image, (0.0, 0.0)
        if region is not None:
            im, origin = im.crop(tuple(round(v) for v in region)), (round(region[0]), round(region[1]))
        with self._predict_lock:
            res = self._model.predict(
                im, conf=conf, iou=iou, classes=class_ids, max_det=max_det, verbose=False
            )[0]
        restore_threads()
        label = self.resolve()[1]
        out = []
        for xyxy, c, k in zip(
            res.boxes.xyxy.tolist(), res.boxes.conf.tolist(), res.boxes.cls.tolist(), strict=True
        ):
            box = crop_to_original(tuple(xyxy), origin)
            out.append(
                Finding("detection", names[int(k)], float(c), box, {"class_id": int(k), "model": label})
            )
        return self._in_domain(image.image, out, [names[i] for i in sorted(names)], label)

    def _in_domain(self, im, found: list[Finding], classes: list[str], label: str) -> list[Finding]:
        """Detections the model's training domain vouches for, then one `detector` record: the classes it
        knows, its domain and whether it applies to this image (absence is claimed only where it does)."""
        extra = {"classes": classes, "domain": self.domain, "model": label, "applies": True}
        if self.domain == SYNTHETIC:
            score = render_score(im)
            kept = [f for f in found if flat_fill(im, f.box) >= FLAT_FILL_MIN]
            rows = row_score(im) if score < RENDER_SCORE_MIN else None  # a gradient background
            extra.update(render_score=round(score, 3), dropped=len(found) - len(kept))
            extra["applies"] = score >= RENDER_SCORE_MIN or rows >= ROW_SCORE_MIN
            if rows is not None:
                extra["row_score"] = round(rows, 3)
            found = kept if extra["applies"] else []
        text = f"the detector knows {', '.join(classes[:20])} (trained on {self.domain})"
        if not extra["applies"]:
            text += "; this image is a photo, not such a render: its detections are not evidence"
        return [*found, Finding("detector", text, 1.0, None, extra)]


def _label(path: Path) -> str:
    """Weights identity for cache keys: file name, size and modification time (cheap, no hashing)."""
    st = path.stat()
    return f"{path.parent.name}/{path.name}:{st.st_size}:{int(st.st_mtime)}"
