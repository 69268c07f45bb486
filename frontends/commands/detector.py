"""Train a YOLO detector, or prepare the project's own offline shapes detector.

    python launch.py detector train DATA.yaml [--epochs 60 --imgsz 640 --model yolov8n.yaml --out DIR]
    python launch.py detector prepare          # generate synthetic shapes, train, cache, evaluate

`prepare` trains once per generator/settings version into the project cache; the detector tool
falls back to that model when the default COCO weights cannot be downloaded.
"""

from __future__ import annotations

import argparse
import json

from frontends.cliargs import add_dataclass_args, dataclass_from_args
from tools.detector_train import TrainConfig


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="detector_command", metavar="ACTION", required=True)
    t = sub.add_parser("train", help="Train on a YOLO-format data set (data.yaml).")
    t.add_argument(
        "data", metavar="DATA.yaml", help="YOLO data set description (train/val image folders, names)."
    )
    t.add_argument(
        "--out", default=None, help="Folder for best.pt (default: the project cache, by data set name)."
    )
    add_dataclass_args(t, TrainConfig)
    p = sub.add_parser("prepare", help="Generate the synthetic shapes data and train the offline detector.")
    add_dataclass_args(p, TrainConfig)
    p.add_argument(
        "--eval-images", type=int, default=30, help="Held-out images to evaluate on (default: 30)."
    )


def run(args) -> int:
    from pathlib import Path

    from tools.detector_train import prepare_shapes, shapes_hit_rate, train
    from tools.paths import cache_dir

    cfg = dataclass_from_args(TrainConfig, args)
    if args.detector_command == "train":
        data = Path(args.data)
        out = Path(args.out) if args.out else cache_dir("detectors", f"custom-{data.resolve().parent.name}")
        res = train(data, cfg, out)
        print(json.dumps({"weights": str(res.weights), "seconds": round(res.seconds, 1), **res.metrics}))
        return 0
    res = prepare_shapes(train_cfg=cfg)
    report = {"weights": str(res.weights), "train_seconds": round(res.seconds, 1), **res.metrics}
    if args.eval_images:
        report["held_out"] = shapes_hit_rate(res.weights, n=args.eval_images)
    print(json.dumps(report, indent=1))
    return 0
