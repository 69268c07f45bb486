"""`bench tools`: latency of each tool on a generated image set, and what the result cache saves.

The set mixes what the tools meet in use: rendered signs on busy backgrounds, a receipt, small text
(synthetic/render.py) and synthetic shape scenes (synthetic/shapes.py). Every tool runs once on a warm-up image
first (model loading is reported apart, as `first_call_s`), then on every image through a
`ToolRunner` with an empty `ToolCache` (misses: the real work), then again (hits). Figures per tool:
p50/p95 of the misses and of the hits, and the speedup of a hit; and, per image, all tools one after another against all tools at once
(the runner's concurrency). Written to JSON.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time
from pathlib import Path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--json", dest="json_out", default="bench-results/tools.json", help="Where to write JSON."
    )
    parser.add_argument("--images", type=int, default=8, help="Images in the generated set (default: 8).")
    parser.add_argument("--tools", nargs="+", default=None, help="Only these tools (default: all).")
    parser.add_argument(
        "--detector-weights", default=None, help="Detector weights (default: COCO yolo11n.pt, else shapes)."
    )


def image_set(n: int) -> list[tuple[str, object, tuple]]:
    """(kind, PIL image, a box worth zooming into) for n generated images."""
    from synthetic import render as synth
    from synthetic.shapes import ShapesConfig, held_out

    def union(boxes):
        return tuple(f(b[i] for b in boxes) for i, f in ((0, min), (1, min), (2, max), (3, max)))

    out = []
    makers = [
        lambda i: ("sign", synth.render_sign(100 + i)),
        lambda i: ("receipt", synth.render_receipt(i)),
        lambda i: ("small_text", synth.render_small_text(i, size=9)),
        lambda i: ("shapes", None),
    ]
    shapes = held_out(n, ShapesConfig(size=320, min_side=40, max_side=120))
    for i in range(n):
        kind, s = makers[i % len(makers)](i)
        if s is None:
            im, truth = shapes[i]
            out.append((kind, im, truth[0].box))
        else:
            out.append((kind, s.image, s.region or union([w.box for w in s.words])))
    return out


def _pct(xs: list[float], q: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, round(q * (len(xs) - 1)))]


def _stats(xs: list[float]) -> dict:
    return {
        "p50_ms": round(1000 * statistics.median(xs), 3),
        "p95_ms": round(1000 * _pct(xs, 0.95), 3),
        "n": len(xs),
    }


def run(args) -> int:
    from tools.cache import ToolCache
    from tools.images import ImageRef
    from tools.registry import default_registry
    from tools.runner import ToolCall, ToolRunner

    registry = default_registry(enabled=args.tools, detector_weights=args.detector_weights)
    images = [
        (kind, ImageRef.from_pil(im, source=f"gen:{kind}:{i}"), box)
        for i, (kind, im, box) in enumerate(image_set(args.images))
    ]

    def call(name, ref, box):
        return ToolCall(name, ref, {"box": box} if name == "zoom" else {})

    # Warm-up on an image outside the set: loads models, so misses below measure work, not loading.
    warm = ImageRef.from_pil(image_set(args.images + 1)[-1][1], source="gen:warmup")
    first = {}
    for name in registry.names():
        t0 = time.perf_counter()
        r = ToolRunner(registry, ToolCache()).run([call(name, warm, (0, 0, 64, 64))], timeout_s=300)[0]
        first[name] = round(time.perf_counter() - t0, 3)
        if not r.ok:
            print(f"warning: {name} failed on the warm-up image: {r.error}")

    cache = ToolCache()
    runner = ToolRunner(registry, cache, max_workers=1)  # one call at a time: latency, not throughput
    results: dict[str, dict] = {}
    sequential: dict[str, float] = {}  # image id -> sum of its tools' durations, one after another
    for name in registry.names():
        miss, hit, errors = [], [], []
        for _kind, ref, box in images:
            r = runner.run([call(name, ref, box)], timeout_s=300)[0]
            (miss if r.ok else errors).append(r.duration_s if r.ok else r.error)
            sequential[ref.id] = sequential.get(ref.id, 0.0) + r.duration_s
        for _kind, ref, box in images:
            r = runner.run([call(name, ref, box)], timeout_s=300)[0]
            if r.cache_hit:
                hit.append(r.duration_s)
        entry = {"first_call_s": first[name], "miss": _stats(miss) if miss else None, "errors": errors}
        if hit and miss:
            entry["hit"] = _stats(hit)
            entry["cache_speedup"] = round(statistics.median(miss) / max(statistics.median(hit), 1e-9), 1)
        results[name] = entry
    # All tools on one image in one runner call (fresh cache): the wall time a turn waits for evidence.
    together = []
    for _kind, ref, box in images:
        t0 = time.perf_counter()
        ToolRunner(registry, ToolCache(), max_workers=len(registry.names())).run(
            [call(n, ref, box) for n in registry.names()], timeout_s=300
        )
        together.append(time.perf_counter() - t0)
    per_image = [sequential[ref.id] for _, ref, _ in images]
    concurrent = {
        "sequential_p50_ms": round(1000 * statistics.median(per_image), 1),
        "concurrent_p50_ms": round(1000 * statistics.median(together), 1),
        "speedup_p50": round(
            statistics.median(s / max(t, 1e-9) for s, t in zip(per_image, together, strict=True)), 2
        ),
    }
    note = getattr(registry.get("detect"), "note", "") if "detect" in registry else ""
    out = {
        "benchmark": "tools",
        "images": [k for k, _, _ in images],
        "machine": {"platform": platform.platform(), "python": platform.python_version()},
        "detector": note or (registry.get("detect").resolve()[1] if "detect" in registry else None),
        "tools": results,
        "cache": {"hits": cache.hits, "misses": cache.misses},
        "all_tools_per_image": concurrent,
    }
    _print(out)
    if args.json_out:
        path = Path(args.json_out)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(out, indent=2))
        print(f"wrote {path}")
    return 0


def _print(out: dict) -> None:
    print(f"{len(out['images'])} generated images: {', '.join(sorted(set(out['images'])))}")
    if out["detector"]:
        print(f"detector: {out['detector']}")
    print(
        f"{'tool':<9} {'first call':>10} {'p50 ms':>9} {'p95 ms':>9} {'hit p50 ms':>11} {'speedup':>8}  errors"
    )
    for name, e in out["tools"].items():
        m, h = e.get("miss") or {}, e.get("hit") or {}
        speed = f"{e['cache_speedup']:.0f}x" if "cache_speedup" in e else "-"
        print(
            f"{name:<9} {e['first_call_s']:>9.2f}s {m.get('p50_ms', float('nan')):>9.1f} "
            f"{m.get('p95_ms', float('nan')):>9.1f} {h.get('p50_ms', float('nan')):>11.3f} {speed:>8}  {len(e['errors'])}"
        )
    c = out["all_tools_per_image"]
    print(
        f"all tools on one image: {c['sequential_p50_ms']:.0f} ms one after another, "
        f"{c['concurrent_p50_ms']:.0f} ms concurrently (p50 speedup {c['speedup_p50']:.2f}x)"
    )
