"""How far the detector's boxes can be trusted: precision and recall on photos labelled by hand.

    python -m bench.detector_eval --evalsets DIR --out bench-results/detector.json

The labels (`bench/data/detector_labels.jsonl`) name each image by set and file name and list every
COCO-class object in it (class, box in original pixels), plus `ignore` regions (a blurred crowd, a
window box of flowers) where no detection is judged either way. They were made by running the SSD at a
low threshold, drawing its numbered boxes, judging each, and adding by hand every object it missed. The
images are never copied into the project: the bench finds them in folders given on the command line
(`--evalsets DIR` holds `real-dev/` and `real-dev-2/`; `--images SET=DIR` for any set) or in the
packages that ship them (ultralytics' assets, matplotlib's sample data, scikit-image's data when
installed). A set whose folder is missing is skipped and named.

A detection matches a labelled object of the same class at IoU >= 0.5 (>= 0.25 for a small object, whose
hand-drawn box is a few pixels off), best score first, each object once. Reported per class group
(person, vehicles, animals, other) and score threshold: precision and recall; per object size (share of
the image: small < 1%, large >= 10%): recall. Per photo: the classes it shows that a box found
(recall), and the classes a box claims that it shows (precision), on the boxes' scores and, for the SSD
with tiles, on the scores of its whole-image pass. The thresholds of `tools.detector_claims.SSD_CLAIMS` are
chosen from this table.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

from tools.detector import DetectorTool
from tools.detector_claims import GROUPS, OTHER, SIZES, SizeBands, group_of, presence_threshold
from tools.evidence import iou
from tools.images import ImageRef

LABELS = Path(__file__).parent / "data" / "detector_labels.jsonl"
THRESHOLDS = (0.2, 0.3, 0.4, 0.5, 0.6, 0.7)
# Image-level: does any box of a class present in the photo score this much, wherever it is? What an
# answer of "there is none" stands on (the scores come in steps: 0.16, 0.21, 0.27, ...).
TRACE_THRESHOLDS = (0.15, 0.2, 0.3)
# Image-level too: when a box of a class scores this much somewhere, does the photo show the class? What
# an answer of "yes, there is a dog" stands on (a wrong box in a photo that has a dog elsewhere is no
# wrong answer to that question).
PRESENCE_THRESHOLDS = (0.3, 0.4, 0.5, 0.6)
IOU_MIN = 0.5
IOU_MIN_SMALL = 0.25


def package_sets() -> dict[str, Path]:
    """Photos that ship inside installed packages, by set name."""
    out = {}
    try:
        import ultralytics

        out["ultralytics"] = Path(ultralytics.__file__).parent / "assets"
    except ImportError:
        pass
    try:
        import matplotlib

        out["matplotlib"] = Path(matplotlib.get_data_path()) / "sample_data"
    except ImportError:
        pass
    try:
        import skimage

        out["skimage"] = Path(skimage.__file__).parent / "data"
    except ImportError:
        pass
    return out


def match(objects: list[dict], found: list[tuple], ignore: list, sizes: SizeBands, w: int, h: int):
    """(per detection: matched object index or None or "ignored"), greedy by score."""
    used: set[int] = set()
    out = []
    for name, score, box in sorted(found, key=lambda d: -d[1]):
        best, best_iou = None, 0.0
        for i, o in enumerate(objects):
            if i in used or o["class"] != name:
                continue
            v = iou(box, o["box"])
            need = IOU_MIN_SMALL if sizes.of(o["box"], w, h) == "small" else IOU_MIN
            if v >= need and v > best_iou:
                best, best_iou = i, v
        if best is not None:
            used.add(best)
            out.append((name, score, best))
            continue
        out.append((name, score, "ignored" if _in(box, ignore) else None))
    return out


def _in(box, regions: list) -> bool:
    """Whether a box's centre lies in one of the regions."""
    cx, cy = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2
    return any(b[0] <= cx <= b[2] and b[1] <= cy <= b[3] for b in regions)


def evaluate(labels: list[dict], folders: dict[str, Path], weights: str = "ssd", low: float = 0.15) -> dict:
    tool = DetectorTool(weights=weights)
    sizes = SizeBands()
    groups = [*GROUPS, OTHER]
    # threshold -> group -> counts; threshold -> group -> size -> [found, total]
    tp = {t: dict.fromkeys(groups, 0) for t in THRESHOLDS}
    fp = {t: dict.fromkeys(groups, 0) for t in THRESHOLDS}
    n_obj = dict.fromkeys(groups, 0)
    by_size = {t: {g: {s: [0, 0] for s in SIZES} for g in groups} for t in THRESHOLDS}
    # threshold -> group -> [photos where a box of the class scored that much, photos showing the class]
    seen = {t: {g: [0, 0] for g in groups} for t in TRACE_THRESHOLDS}
    # threshold -> group -> [classes claimed at that score that the photo shows, classes claimed]
    claimed = {t: {g: [0, 0] for g in groups} for t in PRESENCE_THRESHOLDS}
    claimed_whole = {t: {g: [0, 0] for g in groups} for t in PRESENCE_THRESHOLDS}  # whole-image scores
    seconds, skipped, images = [], set(), 0
    for rec in labels:
        folder = folders.get(rec["set"])
        path = folder / rec["image"] if folder else None
        if path is None or not path.is_file():
            skipped.add(rec["set"])
            continue
        ref = ImageRef.from_path(path)
        w, h = ref.size
        t0 = time.perf_counter()
        found = tool(ref, conf=low)
        seconds.append(time.perf_counter() - t0)
        images += 1
        dets = [(f.text, f.confidence, f.box) for f in found if f.kind == "detection"]
        # the SSD with tiles: what its whole-image pass scored each object (presence is measured on it)
        whole = [(f.text, f.extra["whole_score"], f.box) for f in found if "whole_score" in f.extra]
        objects = rec["objects"]
        for o in objects:
            n_obj[group_of(o["class"])] += 1
        for t in TRACE_THRESHOLDS:
            traced = {d[0] for d in dets if d[1] >= t}
            for cls in {o["class"] for o in objects}:
                cell = seen[t][group_of(cls)]
                cell[0] += cls in traced
                cell[1] += 1
        shown = {o["class"] for o in objects}
        for boxes, cells in ((dets, claimed), (whole, claimed_whole)):
            for t in PRESENCE_THRESHOLDS:
                for cls in {d[0] for d in boxes if d[1] >= t}:
                    unlabelled = [d for d in boxes if d[0] == cls and d[1] >= t and cls not in shown]
                    if unlabelled and all(_in(d[2], rec.get("ignore", [])) for d in unlabelled):
                        continue  # only boxes in a region left unjudged (a blurred crowd)
                    cell = cells[t][group_of(cls)]
                    cell[0] += cls in shown
                    cell[1] += 1
        for t in THRESHOLDS:
            judged = match(objects, [d for d in dets if d[1] >= t], rec.get("ignore", []), sizes, w, h)
            hit = set()
            for name, _, m in judged:
                if m == "ignored":
                    continue
                if m is None:
                    fp[t][group_of(name)] += 1
                else:
                    tp[t][group_of(name)] += 1
                    hit.add(m)
            for i, o in enumerate(objects):
                cell = by_size[t][group_of(o["class"])][sizes.of(o["box"], w, h)]
                cell[0] += i in hit
                cell[1] += 1
    table = {}
    for t in THRESHOLDS:
        row = {}
        for g in [*groups, "all"]:
            gs = groups if g == "all" else [g]
            t_p, f_p, n = sum(tp[t][x] for x in gs), sum(fp[t][x] for x in gs), sum(n_obj[x] for x in gs)
            sz = {s: [sum(by_size[t][x][s][k] for x in gs) for k in (0, 1)] for s in SIZES}
            row[g] = {
                "tp": t_p,
                "fp": f_p,
                "objects": n,
                "precision": round(t_p / (t_p + f_p), 3) if t_p + f_p else None,
                "recall": round(t_p / n, 3) if n else None,
                "recall_by_size": {s: [round(a / b, 3) if b else None, b] for s, (a, b) in sz.items()},
            }
        table[str(t)] = row
    return {
        "benchmark": "detector",
        "detector": tool.resolve()[1],
        "images": images,
        "objects": sum(n_obj.values()),
        "objects_by_group": n_obj,
        "sets_skipped": sorted(skipped),
        "match": {"iou": IOU_MIN, "iou_small": IOU_MIN_SMALL},
        "sizes": {"small_below": sizes.small, "large_from": sizes.large},
        "seconds_per_image": {
            "p50": round(statistics.median(seconds), 4) if seconds else None,
            "max": round(max(seconds), 4) if seconds else None,
        },
        "thresholds": table,
        "image_recall": {str(t): _rates(seen[t], "recall", "photos") for t in TRACE_THRESHOLDS},
        "image_precision": {str(t): _rates(claimed[t], "precision", "claims") for t in PRESENCE_THRESHOLDS},
        "image_precision_whole": {
            str(t): _rates(claimed_whole[t], "precision", "claims") for t in PRESENCE_THRESHOLDS
        },
    }


def _rates(cells: dict, rate: str, count: str) -> dict:
    """Per group and for all groups: [hits, trials] as {rate: hits / trials, count: trials}."""
    cells = {**cells, "all": [sum(v[0] for v in cells.values()), sum(v[1] for v in cells.values())]}
    return {g: {rate: round(a / b, 3) if b else None, count: b} for g, (a, b) in cells.items()}


def _rate(v: float | None) -> str:
    return "-" if v is None else f"{v:.2f}"


def _print(res: dict) -> None:
    print(
        f"{res['detector']}: {res['images']} images, {res['objects']} labelled objects {res['objects_by_group']}"
    )
    if res["sets_skipped"]:
        print(f"skipped (folder not given or not installed): {', '.join(res['sets_skipped'])}")
    print(
        f"{'thr':>4}  {'group':9} {'P':>6} {'R':>6}  {'tp':>4} {'fp':>4} {'n':>4}  recall small/medium/large"
    )
    for t, row in res["thresholds"].items():
        for g, m in row.items():
            sz = "  ".join(
                f"{(v if v is not None else float('nan')):.2f} ({n})" for v, n in m["recall_by_size"].values()
            )
            p = "-" if m["precision"] is None else f"{m['precision']:.3f}"
            r = "-" if m["recall"] is None else f"{m['recall']:.3f}"
            print(f"{t:>4}  {g:9} {p:>6} {r:>6}  {m['tp']:4d} {m['fp']:4d} {m['objects']:4d}  {sz}")
    print("photos showing a class in which a box of it scored at least thr, anywhere (image-level recall):")
    for t, row in res["image_recall"].items():
        cells = "  ".join(f"{g} {_rate(m['recall'])} ({m['photos']})" for g, m in row.items())
        print(f"{t:>4}  {cells}")
    for key, what in (("image_precision", "a box"), ("image_precision_whole", "a whole-image pass's box")):
        if not any(m["claims"] for row in res[key].values() for m in row.values()):
            continue  # no whole-image scores: a back end without tiles
        print(f"classes with {what} scoring at least thr that the photo shows (image-level precision):")
        for t, row in res[key].items():
            cells = "  ".join(f"{g} {_rate(m['precision'])} ({m['claims']})" for g, m in row.items())
            print(f"{t:>4}  {cells}")
        chosen = {
            g: presence_threshold({t: (row[g]["precision"], row[g]["claims"]) for t, row in res[key].items()})
            for g in [*GROUPS, OTHER]
        }
        print(f"presence stated from {what} scoring under sure (tools.detector_claims.presence_threshold):")
        print(
            "  "
            + "  ".join(
                f"{g} {'-' if c is None else f'from {c[0]} ({c[1]:.2f} of {c[2]})'}"
                for g, c in chosen.items()
            )
        )
    print(f"per image: p50 {res['seconds_per_image']['p50']} s, max {res['seconds_per_image']['max']} s")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--evalsets", type=Path, help="folder holding real-dev/ and real-dev-2/")
    ap.add_argument("--images", action="append", default=[], metavar="SET=DIR", help="a set's folder")
    ap.add_argument("--labels", type=Path, default=LABELS, help="labels JSONL (default: the shipped one)")
    ap.add_argument("--weights", default="ssd", help="detector weights (default: the COCO SSD)")
    ap.add_argument("--out", type=Path, help="write the figures to this JSON file")
    args = ap.parse_args(argv)
    folders = package_sets()
    if args.evalsets:
        for name in ("real-dev", "real-dev-2"):
            folders[name] = args.evalsets / name
    for spec in args.images:
        name, _, d = spec.partition("=")
        folders[name] = Path(d)
    labels = [json.loads(line) for line in args.labels.read_text().splitlines() if line.strip()]
    res = evaluate(labels, folders, weights=args.weights)
    _print(res)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(res, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
