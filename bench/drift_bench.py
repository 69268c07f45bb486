"""`python launch.py bench drift`: does drift monitoring catch a shift, how soon, and how often does it
cry wolf on traffic that did not shift?

Real turns first: the offline assistant (its model, OCR and detector; `--max-new-tokens` short, the
answer is not the point) answers one question about each image of five pools, and an observer keeps
each turn's drift features exactly as `serve` computes them (`assistant/drift_features.py`):
- reference: photographed signs (rendered plates on busy backgrounds, camera blur and JPEG, tilted),
  with sign questions;
- unshifted: more of the same, other seeds (the same distribution, other images);
- blurred: such signs blurred (Gaussian, radius `--blur`); darkened: such signs at `--dark` of their
  brightness; scans: receipts (another domain) with receipt questions.
Then streams are drawn from the pools, seeded, `--trials` times: a reference of `reference_turns`
turns and `--unshifted` unshifted turns (every alarm there is false), both drawn from the reference and
unshifted pools together (one population: two pools of a dozen images differ by chance more than
traffic does), then each shifted stream for up to `--shifted` turns from where the unshifted one
ended. The detector's features need object questions, which these sign and receipt questions are not. It reports the turn each alarm first fired after
its shift began (median, 90th percentile, max), which features fired, the false-alarm rate on the
unshifted stream (per stream and per check), and the same for a sweep of thresholds: the measurement
behind `DriftConfig.threshold`. Pool features are saved (`--pool-cache`) so a rerun skips the turns.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import time
from dataclasses import replace
from pathlib import Path

from assistant.drift import DriftConfig, DriftMonitor
from assistant.drift_features import turn_features

SIGN_QUESTIONS = ("What does the sign say?", "What is written on the sign?", "Read the sign.",
                  "What does the text on the plate say?", "What words are on the sign?")  # fmt: skip
RECEIPT_QUESTIONS = ("What is the total?", "How much was paid in total?", "What is the name of the shop?",
                     "What is the date on the receipt?", "How much did the first item cost?")  # fmt: skip
POOLS = ("reference", "unshifted", "blurred", "darkened", "scans")
SHIFTS = POOLS[2:]
SWEEP = (0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 1.0, 1.2)


def add_arguments(p: argparse.ArgumentParser) -> None:
    d = DriftConfig()
    p.add_argument("--pool", type=int, default=30, help="distinct images per pool (default: 30)")
    p.add_argument("--trials", type=int, default=30, help="seeded streams drawn from the pools (default: 30)")
    p.add_argument("--unshifted", type=int, default=200, help="unshifted turns per stream (default: 200)")
    p.add_argument("--shifted", type=int, default=100, help="most shifted turns per stream (default: 100)")
    p.add_argument("--reference-turns", type=int, default=d.reference_turns, help="reference turns")
    p.add_argument("--window", type=int, default=d.window, help="drift window, observations")
    p.add_argument("--bins", type=int, default=d.bins, help="PSI bins")
    p.add_argument("--threshold", type=float, default=d.threshold, help="PSI alarm threshold")
    p.add_argument("--blur", type=float, default=2.5, help="Gaussian blur radius of the blurred pool")
    p.add_argument("--dark", type=float, default=0.35, help="brightness factor of the darkened pool")
    p.add_argument("--model", default="smollm2-llava", help="the model whose vision features are watched")
    p.add_argument("--max-new-tokens", type=int, default=2, help="tokens per answer (default: 2)")
    p.add_argument("--pool-cache", default="bench-results/drift-pools.json", help="pool features (reused)")
    p.add_argument("--json", default="bench-results/drift.json", help="where the figures go")


def run(args: argparse.Namespace) -> int:
    cfg = DriftConfig(
        reference_turns=args.reference_turns, window=args.window, bins=args.bins, threshold=args.threshold
    )
    cfg.min_reference = min(cfg.min_reference, cfg.reference_turns // 2)
    pools, per_turn_s = load_or_build_pools(args)
    t0 = time.perf_counter()
    series = [simulate(pools, cfg, args, trial) for trial in range(args.trials)]
    report = summarise(series, cfg, args) | {
        "pools": {k: len(v) for k, v in pools.items()},
        "turn_s_while_building_pools": per_turn_s,
        "simulation_s": round(time.perf_counter() - t0, 1),
    }
    for line in lines(report):
        print(line)
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(report, indent=1))
        print(f"wrote {args.json}")
    return 0


# ---- the pools: real turns ----------------------------------------------------------------------
def pool_images(kind: str, n: int, args) -> list[tuple[object, str]]:
    """(image, question) pairs of one pool, seeded."""
    from PIL import ImageEnhance, ImageFilter

    from synthetic.render import render_receipt, render_sign

    base = {"reference": 0, "unshifted": 10_000, "blurred": 20_000, "darkened": 30_000, "scans": 40_000}[kind]
    out = []
    for i in range(n):
        seed = base + i
        rng = random.Random(seed)
        if kind == "scans":
            out.append(
                (render_receipt(seed=seed, n_items=rng.randint(3, 7)).image, rng.choice(RECEIPT_QUESTIONS))
            )
            continue
        size = rng.choice([(480, 360), (512, 384), (400, 300), (560, 420)])
        im = render_sign(seed=seed, size=size, tilt=6.0, photo=True).image
        if kind == "blurred":
            im = im.filter(ImageFilter.GaussianBlur(args.blur))
        elif kind == "darkened":
            im = ImageEnhance.Brightness(im).enhance(args.dark)
        out.append((im, rng.choice(SIGN_QUESTIONS)))
    return out


def load_or_build_pools(args) -> tuple[dict[str, list], float | None]:
    cache = Path(args.pool_cache) if args.pool_cache else None
    key = {"pool": args.pool, "blur": args.blur, "dark": args.dark, "model": args.model}
    if cache is not None and cache.is_file():
        saved = json.loads(cache.read_text())
        if saved.get("key") == key:
            print(f"pool features from {cache} (delete it to run the turns again)")
            return refresh_image_features(saved["pools"], args), saved.get("turn_s")
    from assistant.core.config import ModelConfig
    from assistant.factory import build_assistant
    from assistant.session import AssistantConfig

    acfg = AssistantConfig(tools=["ocr", "detect"], max_new_tokens=args.max_new_tokens, write_traces=False)
    assistant = build_assistant(ModelConfig(model=args.model, device="cpu"), acfg)
    print(f"model: {assistant.description}")
    captured: list = []
    assistant.observers.append(lambda line: captured.append(turn_features(line)))
    pools, t0, turns = {}, time.perf_counter(), 0
    for kind in POOLS:
        pools[kind] = []
        for im, question in pool_images(kind, args.pool, args):
            conv = assistant.conversation()
            conv.ask(question, [im])
            conv.close()
            pools[kind].append([list(x) for x in captured.pop()])
            turns += 1
        print(f"  pool {kind}: {len(pools[kind])} turns ({time.perf_counter() - t0:.0f} s so far)")
    per_turn = round((time.perf_counter() - t0) / max(turns, 1), 2)
    if cache is not None:
        cache.parent.mkdir(parents=True, exist_ok=True)
        cache.write_text(json.dumps({"key": key, "turn_s": per_turn, "pools": pools}))
    return pools, per_turn


def refresh_image_features(pools: dict, args) -> dict:
    """The image features of cached turns measured again on the regenerated images (they are pure
    functions of the pixels, and cheap): a cache stays valid when they change."""
    from assistant.drift_features import image_features

    for kind, turns in pools.items():
        for turn, (im, _) in zip(turns, pool_images(kind, len(turns), args), strict=True):
            turn[:] = [x for x in turn if not x[0].startswith("image.")] + [
                list(x) for x in image_features(im)
            ]
    return pools


# ---- the streams: seeded draws from the pools ---------------------------------------------------
def simulate(pools: dict, cfg: DriftConfig, args, trial: int) -> dict:
    """One seeded stream: the highest PSI of a full window at each turn, unshifted and per shift."""
    rng = random.Random(trial)
    monitor = DriftMonitor(replace(cfg, reference=None))
    # The reference and the unshifted stream are both drawn from the unshifted images of both pools:
    # one population, fresh draws (two small pools told apart would measure the pools, not the monitor).
    base = pools["reference"] + pools["unshifted"]
    draw = lambda kind: [tuple(x) for x in rng.choice(base if kind == "base" else pools[kind])]  # noqa: E731
    for _ in range(cfg.reference_turns):
        monitor.add(draw("base"))
    out = {"unshifted": [feed(monitor, draw("base"), cfg) for _ in range(args.unshifted)]}
    for shift in SHIFTS:
        m = monitor.fork()
        out[shift] = [feed(m, draw(shift), cfg) for _ in range(args.shifted)]
    return out


def feed(monitor: DriftMonitor, values: list, cfg: DriftConfig) -> tuple[float, list[str]]:
    """Add one turn; (highest PSI among full windows, the features at or above the threshold)."""
    monitor.add(values)
    full = {k: s for k, s in monitor.scores().items() if s["current"] >= cfg.window}
    top = max((s["psi"] for s in full.values()), default=0.0)
    return top, sorted(k for k, s in full.items() if s["psi"] >= cfg.threshold)


def first_at(series: list, threshold: float) -> int | None:
    """1-based turn of the first alarm at `threshold`, or None."""
    return next((i + 1 for i, (psi, _) in enumerate(series) if psi >= threshold), None)


def summarise(series: list[dict], cfg: DriftConfig, args) -> dict:
    def at(threshold: float) -> dict:
        null = [s["unshifted"] for s in series]
        checks = [psi for s in null for psi, _ in s if psi > 0]
        res = {
            "false_alarm_streams": round(
                sum(first_at(s, threshold) is not None for s in null) / len(null), 3
            ),
            "false_alarm_checks": round(sum(p >= threshold for p in checks) / max(len(checks), 1), 4),
        }
        for shift in SHIFTS:
            delays = [first_at(s[shift], threshold) for s in series]
            caught = sorted(d for d in delays if d is not None)
            res[shift] = {
                "caught": round(len(caught) / len(delays), 3),
                "median_turns": statistics.median(caught) if caught else None,
                "p90_turns": caught[int(0.9 * (len(caught) - 1))] if caught else None,
                "max_turns": caught[-1] if caught else None,
            }
        return res

    main = at(cfg.threshold)
    for shift in SHIFTS:
        fired: dict[str, int] = {}
        for s in series:
            i = first_at(s[shift], cfg.threshold)
            for f in s[shift][i - 1][1] if i else []:
                fired[f] = fired.get(f, 0) + 1
        main[shift]["features_at_first_alarm"] = dict(sorted(fired.items(), key=lambda kv: -kv[1])[:6])
    null_max = [max(psi for psi, _ in s["unshifted"]) for s in series]
    return {
        "config": {
            "reference_turns": cfg.reference_turns,
            "window": cfg.window,
            "bins": cfg.bins,
            "threshold": cfg.threshold,
            "trials": args.trials,
            "unshifted": args.unshifted,
            "shifted": args.shifted,
            "blur": args.blur,
            "dark": args.dark,
        },  # fmt: skip
        "at_threshold": main,
        "unshifted_max_psi": {
            "median": round(statistics.median(null_max), 3),
            "max": round(max(null_max), 3),
        },
        "sweep": {str(t): at(t) for t in SWEEP},
    }


def lines(r: dict) -> list[str]:
    c, m = r["config"], r["at_threshold"]
    out = [
        f"drift bench: reference {c['reference_turns']} turns, window {c['window']}, {c['bins']} bins, "
        f"PSI threshold {c['threshold']}, {c['trials']} seeded streams from pools of {r['pools']['reference']} real turns",
        f"unshifted ({c['unshifted']} turns): false alarms in {m['false_alarm_streams']:.0%} of streams, "
        f"{m['false_alarm_checks']:.2%} of checks; highest PSI median {r['unshifted_max_psi']['median']}, "
        f"max {r['unshifted_max_psi']['max']}",
    ]
    for shift in SHIFTS:
        s = m[shift]
        out.append(
            f"{shift:>9}: caught in {s['caught']:.0%} of streams within {c['shifted']} turns; first alarm after "
            f"median {s['median_turns']}, p90 {s['p90_turns']}, max {s['max_turns']} turns; "
            f"by {', '.join(s['features_at_first_alarm']) or '-'}"
        )
    out.append("threshold sweep (false alarms per stream; median turns to catch blurred / darkened / scans):")
    for t, s in r["sweep"].items():
        delays = " / ".join(str(s[k]["median_turns"]) for k in SHIFTS)
        out.append(f"  PSI {t:>4}: {s['false_alarm_streams']:.0%}; {delays}")
    return out
