"""Two evaluation runs side by side, sample by sample: what got better, what got worse.

A run is a folder holding results.jsonl (or the file itself). Samples are matched by (engine,
condition, id); when the two runs share no such key but each has one engine/condition (e.g. the
default model against the oracle), by id alone. Outcomes rank right > flagged > abstained > wrong shown as fact
(an abstention is better than a wrong answer shown as fact); errors rank below all.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

from tools.errors import BadInputError

RANK = {"right": 3, "flagged": 2.5, "abstained": 2, "wrong_as_fact": 1, "error": 0}


def load_results(path: Path) -> list[dict]:
    p = path / "results.jsonl" if path.is_dir() else path
    if not p.is_file():
        raise BadInputError(f"{path}: no results.jsonl (run `launch.py eval` into it first)")
    rows = []
    for n, line in enumerate(p.read_text(encoding="utf-8").splitlines(), 1):
        if line.strip():
            try:
                rows.append(json.loads(line))
            except ValueError:
                raise BadInputError(f"{p}:{n}: not JSON") from None
    return rows


def pair(a_rows: list[dict], b_rows: list[dict]) -> list[tuple[dict, dict]]:
    key = lambda r: (r.get("engine"), r.get("condition"), r["id"])  # noqa: E731
    a, b = {key(r): r for r in a_rows}, {key(r): r for r in b_rows}
    common = [k for k in a if k in b]
    if not common:
        a_id, b_id = {r["id"]: r for r in a_rows}, {r["id"]: r for r in b_rows}
        if len(a_id) == len(a_rows) and len(b_id) == len(b_rows):
            return [(a_id[i], b_id[i]) for i in a_id if i in b_id]
    return [(a[k], b[k]) for k in common]


def diff(a_rows: list[dict], b_rows: list[dict]) -> dict:
    """{"better": [...], "worse": [...], "same": n, "changed_answer": n, "pairs": n, "by_set": {...}}."""
    better, worse, same, changed = [], [], 0, 0
    by_set: dict[str, Counter] = {}
    for a, b in pair(a_rows, b_rows):
        oa, ob = a["scores"].get("outcome", "error"), b["scores"].get("outcome", "error")
        c = by_set.setdefault(a.get("set", "?"), Counter())
        if RANK[ob] > RANK[oa]:
            better.append((a, b))
            c["better"] += 1
        elif RANK[ob] < RANK[oa]:
            worse.append((a, b))
            c["worse"] += 1
        else:
            same += 1
            c["same"] += 1
        changed += (a.get("answer") or "") != (b.get("answer") or "")
    return {
        "better": better,
        "worse": worse,
        "same": same,
        "changed_answer": changed,
        "pairs": len(better) + len(worse) + same,
        "by_set": by_set,
    }


def _line(a: dict, b: dict) -> str:
    short = lambda r: " ".join(str(r.get("answer") or r.get("error") or "").split())[:90]  # noqa: E731
    return (
        f"  {a['id']} ({a.get('kind')}): {a['scores'].get('outcome')} -> {b['scores'].get('outcome')}\n"
        f"      A: {short(a)}\n      B: {short(b)}"
    )


def compare_runs(a: Path, b: Path, out: Path | None = None) -> list[str]:
    """Lines to print; with `out`, also compare.json and compare.png there."""
    d = diff(load_results(a), load_results(b))
    if not d["pairs"]:
        raise BadInputError(f"{a} and {b} have no sample in common")
    lines = [
        f"A: {a}",
        f"B: {b}",
        f"{d['pairs']} samples in both: {len(d['better'])} better in B, {len(d['worse'])} worse, "
        f"{d['same']} same outcome ({d['changed_answer']} answers differ in wording or content)",
    ]
    if d["better"]:
        lines.append("better in B:")
        lines += [_line(x, y) for x, y in d["better"]]
    if d["worse"]:
        lines.append("worse in B:")
        lines += [_line(x, y) for x, y in d["worse"]]
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
        (out / "compare.json").write_text(
            json.dumps(
                {
                    "a": str(a),
                    "b": str(b),
                    "pairs": d["pairs"],
                    "same": d["same"],
                    "better": [x["id"] for x, _ in d["better"]],
                    "worse": [x["id"] for x, _ in d["worse"]],
                    "by_set": {k: dict(v) for k, v in d["by_set"].items()},
                },
                indent=2,
            ),
            encoding="utf-8",
        )
        _plot(d, out / "compare.png")
        lines.append(f"written: {out / 'compare.json'}, {out / 'compare.png'}")
    return lines


def _plot(d: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    sets = sorted(d["by_set"])
    fig, ax = plt.subplots(figsize=(max(5, 1.1 * len(sets)), 3.5))
    xs = range(len(sets))
    ax.bar([x - 0.2 for x in xs], [d["by_set"][s]["better"] for s in sets], 0.4, label="better in B")
    ax.bar([x + 0.2 for x in xs], [-d["by_set"][s]["worse"] for s in sets], 0.4, label="worse in B")
    ax.axhline(0, color="black", linewidth=0.5)
    ax.set_xticks(list(xs), sets, fontsize=7)
    ax.set_ylabel("samples")
    ax.set_title("B against A, sample by sample")
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
