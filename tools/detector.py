"""The object detector tool: boxes, class names and scores as evidence, from one of several back ends.

Weights, in order of what the user asked for (`weights`):
- a local `.pt` file: Ultralytics YOLO, used as is;
- a release name such as "yolo11n.pt" (the default, COCO-pretrained): taken from the project cache,
  downloaded there once when the machine is online;
- "ssd": Google's COCO SSD-MobileNet-v2 through LiteRT (`tools/detector_ssd.py`, installed by
  `scripts/setup.sh`);
- "shapes": the project's own detector, trained on its synthetic shapes (`launch.py detector prepare`).
Offline with the default weights not cached, the tool uses what is installed and says so (`note`): the
COCO SSD for photos and the shapes detector for flat renders (`render_stats` tells them apart), or
whichever one of the two there is; with neither it fails with one line that says what to do.

Every call ends with one `detector` record (no box): the classes the model knows, its training domain,
whether it applies to this image, its back end, and the score thresholds the assistant speaks by with
the precision and recall measured at them (`tools/detector_claims.py`). The shapes detector was trained
on flat renders: on a photo its boxes are left out, so no square on a coffee cup becomes evidence.
"""

from __future__ import annotations

import hashlib
import json
import logging
import threading
from pathlib import Path

from tools.base import Tool
from tools.detector_backends import (
    PHOTOS,
    SHAPES_DIR_PREFIX,
    SYNTHETIC,
    Backend,
    YoloModel,
    find_shapes_weights,
    yolo_backend,
)
from tools.detector_claims import SSD_CLAIMS, UNMEASURED, ClaimConfig
from tools.detector_ssd import FETCH_HINT, MAX_BOXES, SSD_DIR, SSD_FILE, SSD_SHA256, SSDModel, find_ssd
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
SSD = "ssd"
__all__ = ["DEFAULT_WEIGHTS", "PHOTOS", "SHAPES", "SHAPES_DIR_PREFIX", "SSD", "SYNTHETIC", "DetectorTool"]


def ssd_backend() -> Backend | None:
    """The installed COCO SSD, or None (`bash scripts/setup.sh` fetches it)."""
    found = find_ssd()
    return Backend("ssd", str(found), f"{SSD_DIR}/{SSD_FILE}:{SSD_SHA256[:12]}", PHOTOS) if found else None


def claims_of(backend: Backend) -> ClaimConfig:
    return SSD_CLAIMS if backend.kind == "ssd" else UNMEASURED


class DetectorTool(Tool):
    name = "detect"
    description = (
        "Detect objects (YOLO or a COCO SSD): returns boxes with class names and confidences. "
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
            "description": "Minimum confidence (default: the back end's measured 'maybe' threshold).",
            "default": None,
            "minimum": 0,
            "maximum": 1,
        },
        "iou": {
            "type": "number",
            "description": "IoU threshold of non-maximum suppression (YOLO; the SSD has its own).",
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
        self._plan: list[Backend] | None = None  # [the photo model, the render model if another]
        self._models: dict[Backend, object] = {}
        self._load_lock = threading.Lock()

    # ---- which weights -------------------------------------------------------------------------

    def backends(self) -> list[Backend]:
        """The models this tool runs: one, or the COCO SSD for photos and the shapes model for renders."""
        if self._plan is None:
            self._plan = self._resolve()
        return self._plan

    def resolve(self) -> tuple[str, str]:
        """(the main weights: a path or a release name to download, the identity of all the weights)."""
        plan = self.backends()
        return plan[0].path, "+".join(b.label for b in plan)

    def _resolve(self) -> list[Backend]:
        from tools.yolo_env import offline

        req = self.requested
        if req == SHAPES:
            found = find_shapes_weights()
            if found is None:
                raise ModelLoadError(
                    "no shapes detector trained yet: run `python launch.py detector prepare`"
                )
            return [yolo_backend(found)]
        if req == SSD:
            b = ssd_backend()
            if b is None:
                raise ModelLoadError(f"the COCO detector is not installed: {FETCH_HINT}")
            return [b]
        p = Path(req).expanduser()
        if p.is_file():
            return [yolo_backend(p)]
        if p.suffix != ".pt" or p.parent != Path("."):
            raise ModelLoadError(f"detector weights not found: {req}")
        cached = cache_dir("detectors") / p.name
        if cached.is_file():
            return [yolo_backend(cached)]
        if offline():
            return self._fallback(f"{req} is not cached and the machine is offline (YOLO_OFFLINE=1)")
        return [Backend("yolo", str(cached), p.name, PHOTOS)]  # downloaded into the cache by setup()

    def _fallback(self, why: str) -> list[Backend]:
        ssd, shapes = ssd_backend(), find_shapes_weights()
        if ssd is None and shapes is None:
            raise ModelLoadError(
                f"detector weights unavailable: {why}; {FETCH_HINT}, pass --detector-weights FILE.pt, "
                "or train the offline shapes detector with `python launch.py detector prepare`"
            )
        plan, using = [], []
        if ssd is not None:
            plan.append(ssd)
            using.append("the COCO SSD (SSD-MobileNet-v2, LiteRT) for photos")
        if shapes is not None:
            plan.append(yolo_backend(shapes))
            using.append(
                f"the project's shapes detector {shapes.parent.name} (circle, square, triangle)"
                + (" for renders" if ssd is not None else "")
            )
        self.note = f"{why}; using {' and '.join(using)}"
        log.info("detector: %s", self.note)  # front ends show `note` themselves
        return plan

    @property
    def version(self) -> str:
        """The cache key: changes with the back ends, their weights and the claims measured for them (a
        cached record carries its thresholds: one from older thresholds must not be reused)."""
        claims = json.dumps([claims_of(b).record() for b in self.backends()], sort_keys=True, default=str)
        digest = hashlib.sha256(claims.encode()).hexdigest()[:12]
        return f"8:{self.resolve()[1]}:{digest}"  # 8: the SSD runs on tiles too

    @property
    def domain(self) -> str:
        """What the main weights were trained on: "synthetic shapes" or "photos"."""
        return self.backends()[0].domain

    @property
    def classes(self) -> list[str]:
        """The class names the main weights know (loads them on first use)."""
        return self._model(self.backends()[0]).classes

    @property
    def class_names(self) -> list[str]:
        plan = self._plan or []
        return self._models[plan[0]].classes if plan and plan[0] in self._models else []

    # ---- work ----------------------------------------------------------------------------------

    def setup(self) -> None:
        plan = self.backends()
        try:
            self._model(plan[0])
        except ModelLoadError:
            b = plan[0]
            if b.kind != "yolo" or Path(b.path).is_file() or self.requested != DEFAULT_WEIGHTS:
                raise
            # The default weights could not be downloaded: fall back like an offline machine.
            self._plan = self._fallback(f"{self.requested} could not be downloaded")
            self._model(self._plan[0])

    def _model(self, b: Backend):
        with self._load_lock:
            if b not in self._models:
                self._models[b] = SSDModel(Path(b.path)) if b.kind == "ssd" else YoloModel(b.path)
            return self._models[b]

    def _choose(self, im) -> tuple[Backend, dict]:
        """The back end for this image, and the render statistics measured to choose it."""
        plan = self.backends()
        if len(plan) == 1 and plan[0].domain != SYNTHETIC:
            return plan[0], {}
        stats = render_stats(im)
        photo = next((b for b in plan if b.domain != SYNTHETIC), None)
        if stats["render"] and photo is not None and photo.kind == "ssd":
            # a flat-looking photo (snow, a white wall) is still a photo when the COCO detector finds a sure
            # object in it: a render of circles and squares has none of its classes
            sure = claims_of(photo).sure
            if any(x.score >= sure for x in self._model(photo).predict(im, conf=sure, tiles=False)):
                stats["render"], stats["photo_objects"] = False, True
        return next((b for b in plan if (b.domain == SYNTHETIC) == stats["render"]), plan[0]), stats

    def forward(
        self, image: ImageRef, classes=None, conf=None, iou=0.45, max_det=100, region=None
    ) -> list[Finding]:
        im = image.image
        b, stats = self._choose(im)
        model = self._model(b)
        claims = claims_of(b)
        conf = claims.maybe if conf is None else conf
        known = {n.lower(): i for i, n in enumerate(model.classes)}
        wanted = None
        if classes:
            wanted = {str(c).lower() for c in classes}
            every = {c.lower() for p in self.backends() for c in self._model(p).classes}
            unknown = sorted(wanted - every)
            if unknown:
                raise BadInputError(f"detector has no class {unknown}; it knows {sorted(known)}")
        crop, origin = im, (0.0, 0.0)
        if region is not None:
            crop, origin = im.crop(tuple(round(v) for v in region)), (round(region[0]), round(region[1]))
        low = min(conf, claims.trace) if claims.trace is not None else conf
        if b.kind == "ssd":
            boxes = model.predict(crop, conf=low)
        else:
            ids = sorted(known[c] for c in wanted if c in known) if wanted else None
            boxes = (
                [] if ids == [] else model.predict(crop, conf=low, iou=iou, max_det=max_det, class_ids=ids)
            )
        boxes = [x for x in boxes if not wanted or x.name.lower() in wanted]
        # boxes below `conf` are not shown: they only keep an absence from being stated (`faint`)
        faint: dict[str, list[float]] = {}  # class -> [best score, largest share of the image]
        area = max(1.0, float(crop.width * crop.height))
        for x in boxes:
            if x.score < conf:
                share = max(0.0, x.box[2] - x.box[0]) * max(0.0, x.box[3] - x.box[1]) / area
                best = faint.setdefault(x.name, [0.0, 0.0])
                best[0], best[1] = round(max(best[0], float(x.score)), 3), round(max(best[1], share), 4)
        boxes = [x for x in boxes if x.score >= conf][:max_det]
        found = [
            Finding(
                "detection",
                x.name,
                float(x.score),
                crop_to_original(tuple(x.box), origin),
                {"class_id": x.class_id, "model": b.label, "backend": b.kind}
                | ({} if x.whole_score is None else {"whole_score": round(x.whole_score, 4)}),
            )
            for x in boxes
        ]
        return self._in_domain(im, found, b, model.classes, stats, conf, faint)

    def _in_domain(
        self, im, found, b: Backend, classes, stats: dict, conf: float, faint: dict
    ) -> list[Finding]:
        """Detections the model's training domain vouches for, then one `detector` record: the classes it
        knows, its domain, whether it applies to this image (absence is claimed only where it does), its
        back end, what its claims were measured at, and each class seen only faintly (its best score and
        its largest box's share of the image)."""
        extra = {"classes": classes, "domain": b.domain, "model": b.label, "applies": True}
        extra.update(backend=b.kind, conf=conf, faint=faint, **claims_of(b).record())
        if b.kind == "ssd":
            extra["max_boxes"] = MAX_BOXES
        if b.domain == SYNTHETIC:
            kept = [f for f in found if flat_fill(im, f.box) >= FLAT_FILL_MIN]
            extra.update(render_score=stats["render_score"], dropped=len(found) - len(kept))
            if "row_score" in stats:
                extra["row_score"] = stats["row_score"]
            extra["applies"] = stats["render"]
            found = kept if extra["applies"] else []
        text = f"the detector knows {', '.join(classes[:20])} (trained on {b.domain})"
        if not extra["applies"]:
            text += "; this image is a photo, not such a render: its detections are not evidence"
        return [*found, Finding("detector", text, 1.0, None, extra)]


def render_stats(im) -> dict:
    """Whether an image is a flat render (the shapes detector's domain) and the statistics that say so."""
    score = render_score(im)
    stats = {"render_score": round(score, 3)}
    if score < RENDER_SCORE_MIN:  # a gradient background: rows of one colour each
        stats["row_score"] = round(row_score(im), 3)
    stats["render"] = score >= RENDER_SCORE_MIN or stats.get("row_score", 0.0) >= ROW_SCORE_MIN
    return stats
