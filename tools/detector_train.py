"""Training YOLO detectors: on any YOLO-format data set, and the project's own shapes detector.

`train()` wraps ultralytics' trainer with settings that work offline on a small CPU machine (no
plots that fetch fonts, no AMP check that downloads weights, every core used). `prepare_shapes()`
generates the synthetic shapes data (synthetic/shapes.py) and trains on it once: the result lives in
`tools.paths.cache_dir("detectors", "shapes-<key>")`, where the key hashes the generator's source and
the training settings, so changing either retrains and nothing else does.
"""

from __future__ import annotations

import hashlib
import inspect
import json
import shutil
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from tools.detector import SHAPES_DIR_PREFIX
from tools.errors import BadInputError
from tools.paths import cache_dir


@dataclass
class TrainConfig:
    """How to train a detector."""

    # architecture (.yaml: from scratch) or weights (.pt: fine-tune)
    model: str = field(
        default="yolov8n.yaml", metadata={"help": "Architecture .yaml or weights .pt to start from."}
    )
    # passes over the training set
    epochs: int = field(default=60, metadata={"help": "Training epochs."})
    # training image side in pixels
    imgsz: int = field(default=128, metadata={"help": "Training image size in pixels."})
    # images per optimisation step; small batches give a small data set more steps per epoch
    batch: int = field(default=8, metadata={"help": "Images per batch."})
    # ultralytics' seed: same data + same seed trains the same model
    seed: int = field(default=0, metadata={"help": "Random seed."})
    # "cpu", or "0" for the first GPU
    device: str = field(default="cpu", metadata={"help": "cpu, or a CUDA device index such as 0."})


@dataclass
class TrainResult:
    weights: Path  # the trained .pt
    seconds: float  # wall time of training
    metrics: dict  # mAP50, mAP50-95 on the data set's val split


def train(data_yaml: str | Path, cfg: TrainConfig, out: str | Path) -> TrainResult:
    """Train on a YOLO-format data.yaml; the final weights are copied to `out/best.pt`."""
    from tools.yolo_env import import_ultralytics, restore_threads

    data_yaml = Path(data_yaml)
    if not data_yaml.is_file():
        raise BadInputError(f"data set description not found: {data_yaml}")
    ul = import_ultralytics()
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="yolo-train-") as runs:
        model = ul.YOLO(cfg.model)
        model.train(
            data=str(data_yaml),
            epochs=cfg.epochs,
            imgsz=cfg.imgsz,
            batch=cfg.batch,
            seed=cfg.seed,
            deterministic=True,
            device=cfg.device,
            workers=0,  # dataloader workers would fight the trainer for two cores
            project=runs,
            name="run",
            exist_ok=True,
            plots=False,
            amp=False,  # the AMP check downloads yolo weights
            val=False,  # validate once at the end instead of every epoch
            verbose=False,
        )
        restore_threads()
        weights_dir = Path(runs) / "run" / "weights"
        src = weights_dir / "best.pt" if (weights_dir / "best.pt").exists() else weights_dir / "last.pt"
        dst = out / "best.pt"
        shutil.copyfile(src, dst)
        seconds = time.perf_counter() - t0
        metrics = evaluate(dst, data_yaml, cfg, runs)
    result = TrainResult(dst, seconds, metrics)
    (out / "train.json").write_text(
        json.dumps({"config": asdict(cfg), "seconds": round(seconds, 1), "metrics": metrics}, indent=2)
    )
    return result


def evaluate(weights: Path, data_yaml: Path, cfg: TrainConfig, runs: str) -> dict:
    """mAP on the val split, through ultralytics' own validator."""
    from tools.yolo_env import import_ultralytics, restore_threads

    ul = import_ultralytics()
    m = ul.YOLO(str(weights)).val(
        data=str(data_yaml),
        imgsz=cfg.imgsz,
        batch=cfg.batch,
        device=cfg.device,
        workers=0,
        plots=False,
        project=runs,
        name="val",
        verbose=False,
    )
    restore_threads()
    return {"mAP50": round(float(m.box.map50), 4), "mAP50-95": round(float(m.box.map), 4)}


# ---- the project's own shapes detector -----------------------------------------------------------


def shapes_key(shapes_cfg, train_cfg: TrainConfig) -> str:
    """Hash of what determines the trained model: generator source, data settings, training settings."""
    from synthetic import shapes

    h = hashlib.sha256(inspect.getsource(shapes).encode())
    h.update(json.dumps([asdict(shapes_cfg), asdict(train_cfg)], sort_keys=True).encode())
    return h.hexdigest()[:12]


def shapes_weights(shapes_cfg=None, train_cfg: TrainConfig | None = None) -> Path:
    """Where the shapes detector for these settings lives (whether or not it is trained yet)."""
    from synthetic.shapes import ShapesConfig

    key = shapes_key(shapes_cfg or ShapesConfig(), train_cfg or TrainConfig())
    return cache_dir("detectors") / f"{SHAPES_DIR_PREFIX}{key}" / "best.pt"


def prepare_shapes(shapes_cfg=None, train_cfg: TrainConfig | None = None, log=print) -> TrainResult:
    """Generate the shapes data and train on it, unless this exact model is already cached."""
    from synthetic.shapes import ShapesConfig, write_dataset

    shapes_cfg = shapes_cfg or ShapesConfig()
    train_cfg = train_cfg or TrainConfig()
    weights = shapes_weights(shapes_cfg, train_cfg)
    info = weights.parent / "train.json"
    if weights.exists() and info.exists():
        d = json.loads(info.read_text())
        log(f"shapes detector already trained: {weights}")
        return TrainResult(weights, d["seconds"], d["metrics"])
    log(f"generating {shapes_cfg.train_images}+{shapes_cfg.val_images} shape images and training {train_cfg}")
    # Train into a scratch dir and move it in place, so a killed run never leaves a half-written model.
    tmp = weights.parent.with_name(weights.parent.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    data = write_dataset(tmp / "data", shapes_cfg)
    result = train(data, train_cfg, tmp)
    shutil.rmtree(weights.parent, ignore_errors=True)
    tmp.rename(weights.parent)
    (weights.parent / "data" / "data.yaml").write_text(
        (weights.parent / "data" / "data.yaml")
        .read_text()
        .replace(str(tmp.resolve()), str(weights.parent.resolve()))
    )
    return TrainResult(weights, result.seconds, result.metrics)


def shapes_hit_rate(weights: str | Path, n: int = 30, conf: float = 0.4, shapes_cfg=None) -> dict:
    """Recall and precision at IoU >= 0.5 with the right class, on n held-out generated images."""
    from synthetic.shapes import held_out
    from tools.detector import DetectorTool
    from tools.evidence import iou
    from tools.images import ImageRef

    tool = DetectorTool(weights=weights)
    truth_n = found_n = hits = 0
    for im, truth in held_out(n, shapes_cfg):
        found = tool(ImageRef.from_pil(im), conf=conf)
        truth_n, found_n = truth_n + len(truth), found_n + len(found)
        used: set[int] = set()
        for s in truth:
            scored = [
                (iou(s.box, f.box), i) for i, f in enumerate(found) if i not in used and f.text == s.name
            ]
            best = max(scored, default=(0.0, -1))
            if best[0] >= 0.5:
                hits += 1
                used.add(best[1])
    return {
        "images": n,
        "objects": truth_n,
        "recall": round(hits / max(truth_n, 1), 4),
        "precision": round(hits / max(found_n, 1), 4),
    }
