"""Calibrating the threshold of showing: how often an extraction at each score is the right answer.

The ranking step (`assistant/ranking.py`) shows an extraction as fact only when its score clears
`RankingConfig.show`. This module measures what that threshold buys: for every reading question of an
evaluation run (and every question whose right answer is to abstain), it recomputes the extraction from
the evidence the run's trace recorded, with the code as it is now, and scores it with the evaluation's
own rule (`metrics.outcome`). Precision at a threshold is the share of extractions scoring at least
that much that are right; coverage is the share of reading questions answered at all. Per set, so a
threshold that only one development set likes shows up as such, and per basis (how the candidate was
found), so a basis that is never right is visible.

    python -m evaluation.calibration RUN_DIR [RUN_DIR ...] --out calibration.json

A RUN_DIR is the folder of `launch.py eval` (results.jsonl and traces/); any engine's run serves, since
the extraction depends only on the evidence.
"""

from __future__ import annotations

import argparse
import json
from collections import defaultdict
from pathlib import Path

from assistant import extract, policy, ranking
from assistant.trace import load_trace
from evaluation import metrics
from tools.evidence import Evidence

THRESHOLDS = (0.5, 0.55, 0.6, 0.65, 0.7, 0.75, 0.8, 0.85, 0.9)


def samples(run: Path) -> list[dict]:
    """(set, kind, score, basis, right) of every reading or abstain sample of one run, recomputed."""
    out, seen = [], set()
    for line in (run / "results.jsonl").read_text().splitlines():
        row = json.loads(line)
        if row["kind"] not in ("read", "abstain") or row["id"] in seen or not row.get("trace"):
            continue
        seen.add(row["id"])
        turn = next(
            (t for t in load_trace(run / "traces" / row["trace"]).turns if t.question == row["question"]),
            None,
        )
        if turn is None:
            continue
        intent = policy.classify(turn.question)
        if intent.name not in policy.READING_INTENTS:
            continue
        evidence = [Evidence.from_dict(d) for d in turn.evidence]
        sizes = {k: tuple(v) for k, v in turn.image_sizes.items()}
        ex = extract.extract(intent, turn.question, evidence, sizes)
        if ex is None or not ex.text:
            out.append({"set": row["set"], "kind": row["kind"], "score": 0.0, "basis": "", "right": False})
            continue
        case = {"kind": row["kind"], "expect_any": row["expected"], "forbid": row.get("forbid")}
        right = metrics.outcome(case, ex.text, False) == "right"
        out.append(
            {"set": row["set"], "kind": row["kind"], "score": ex.score, "basis": ex.basis, "right": right}
        )
    return out


def table(rows: list[dict]) -> dict:
    """Precision and coverage at each threshold, and precision per basis at the configured threshold."""
    reading = [r for r in rows if r["kind"] == "read"]
    out = {"n_read": len(reading), "n_abstain": len(rows) - len(reading), "at": {}}
    for t in THRESHOLDS:
        shown = [r for r in rows if r["score"] >= t and r["basis"]]
        right = sum(r["right"] for r in shown)
        out["at"][str(t)] = {
            "shown": len(shown),
            "right": right,
            "precision": round(right / len(shown), 3) if shown else None,
            "reading_right": round(sum(r["right"] for r in reading if r["score"] >= t) / len(reading), 3)
            if reading
            else None,
        }
    by_basis: dict[str, list[bool]] = defaultdict(list)
    for r in rows:
        if r["basis"] and r["score"] >= ranking.CONFIG.show:
            by_basis[r["basis"]].append(r["right"])
    out["basis"] = {b: {"shown": len(v), "right": sum(v)} for b, v in sorted(by_basis.items())}
    return out


def calibrate(runs: list[Path]) -> dict:
    rows = [r for run in runs for r in samples(run)]
    sets = sorted({r["set"] for r in rows})
    return {
        "show": ranking.CONFIG.show,
        "all": table(rows),
        "sets": {s: table([r for r in rows if r["set"] == s]) for s in sets},
    }


def markdown(result: dict) -> str:
    lines = [
        "| threshold | "
        + " | ".join(f"{s}: shown / right / precision / reading right" for s in result["sets"])
        + " |"
    ]
    lines.append("|---|" + "---|" * len(result["sets"]))
    for t in THRESHOLDS:
        cells = []
        for s in result["sets"].values():
            a = s["at"][str(t)]
            p = "-" if a["precision"] is None else f"{a['precision']:.2f}"
            cells.append(f"{a['shown']} / {a['right']} / {p} / {a['reading_right']:.2f}")
        mark = " (configured)" if abs(t - result["show"]) < 1e-9 else ""
        lines.append(f"| {t}{mark} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("runs", nargs="+", help="folders of `launch.py eval` runs (results.jsonl + traces/)")
    p.add_argument("--out", help="also write the figures to this JSON file")
    args = p.parse_args(argv)
    result = calibrate([Path(r) for r in args.runs])
    print(markdown(result))
    print("per basis at the configured threshold:", json.dumps(result["all"]["basis"]))
    if args.out:
        Path(args.out).write_text(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
