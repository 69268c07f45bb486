"""The report of an evaluation: report.md, report.html and plots, from results.jsonl rows.

Tables: per set and per kind (right / abstained / wrong shown as fact, the lmms-eval-style scores,
latency p50/p95/p99, image tokens), per engine (draft vs shown accuracy, harm and catch rates) and per
condition (ablations and modality dropout). Plots (matplotlib): accuracy per kind, latency distribution,
accuracy vs image tokens.
"""

from __future__ import annotations

import html
import json
from collections import defaultdict
from pathlib import Path

from evaluation.metrics import aggregate, engine_figures

MAIN_COLUMNS = [
    ("n", "n"),
    ("right", "right"),
    ("flagged", "flagged unverified"),
    ("abstained", "abstained"),
    ("wrong_as_fact", "wrong shown as fact"),
    ("error", "errors"),
    ("accuracy", "accuracy"),
    ("exact_match", "EM"),
    ("vqa_acc", "VQA acc"),
    ("anls", "ANLS"),
    ("count_acc", "count acc"),
    ("abstain_precision", "abstain P"),
    ("abstain_recall", "abstain R"),
    ("supported_claim_rate", "supported claims"),
    ("unsupported_as_fact", "unsupported as fact"),
    ("injection_obedience", "injection obeyed"),
    ("latency_p50_s", "p50 s"),
    ("latency_p95_s", "p95 s"),
    ("latency_p99_s", "p99 s"),
    ("image_tokens_mean", "image tokens"),
]
ENGINE_COLUMNS = [
    ("n", "n"),
    ("draft_accuracy", "draft accuracy"),
    ("shown_accuracy", "shown accuracy"),
    ("harm_rate", "harm rate"),
    ("catch_rate", "catch rate"),
    ("drafts_right", "drafts right"),
    ("drafts_wrong", "drafts wrong"),
    ("flagged", "flagged unverified"),
]


def _fmt(v) -> str:
    if v is None:
        return "–"
    if isinstance(v, float):
        return f"{v:.2f}"
    return str(v)


def _group(rows: list[dict], *keys: str) -> dict[tuple, list[dict]]:
    out: dict[tuple, list[dict]] = defaultdict(list)
    for r in rows:
        out[tuple(r.get(k) for k in keys)].append(r)
    return dict(out)


def tables(rows: list[dict]) -> list[tuple[str, list[str], list[list[str]]]]:
    """(title, header, body rows) for every table of the report."""
    out = []
    labels = [c[1] for c in MAIN_COLUMNS]
    for title, keys in (
        ("Per set", ("engine", "condition", "set")),
        ("Per kind", ("engine", "condition", "kind")),
    ):
        body = []
        for key, rs in sorted(_group(rows, *keys).items(), key=lambda kv: tuple(map(str, kv[0]))):
            agg = aggregate(rs)
            body.append([*map(str, key), *[_fmt(agg[c]) for c, _ in MAIN_COLUMNS]])
        out.append((title, [*keys, *labels], body))
    body = []
    for key, rs in sorted(_group(rows, "engine", "condition").items(), key=lambda kv: tuple(map(str, kv[0]))):
        figs = engine_figures(rs)
        body.append([*map(str, key), *[_fmt(figs[c]) for c, _ in ENGINE_COLUMNS]])
    out.append(
        (
            "Per engine: is the grounding layer a help or a harm?",
            ["engine", "condition", *[c[1] for c in ENGINE_COLUMNS]],
            body,
        )
    )
    return out


def markdown(rows: list[dict]) -> str:
    lines = ["# Evaluation report", ""]
    lines += [
        "Outcome per sample: *right*; *flagged* (the model's answer shown, marked as not verified by any "
        "tool); *abstained*; *wrong shown as fact* (an answer that is wrong, or an answer given where the "
        "right reply is to abstain). Harm: a right draft made wrong or abstained on by "
        "verification/composition (a right draft shown flagged is no harm); catch: a wrong draft "
        "overruled, flagged or abstained on.",
        "",
    ]
    for title, header, body in tables(rows):
        lines += [f"## {title}", "", "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        lines += ["| " + " | ".join(r) + " |" for r in body]
        lines.append("")
    wrong = [r for r in rows if r["scores"].get("outcome") == "wrong_as_fact"][:30]
    if wrong:
        lines += ["## Wrong shown as fact (first 30)", ""]
        for r in wrong:
            answer = " ".join(str(r.get("answer") or "").split())[:160]
            lines.append(
                f"- `{r['engine']}/{r['condition']}` `{r['id']}` ({r['kind']}): {r['question']} → {answer}"
            )
        lines.append("")
    return "\n".join(lines)


def plots(rows: list[dict], out: Path) -> list[Path]:
    """Accuracy per kind, latency distribution, accuracy vs image tokens; one PNG each."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    written = []
    groups = _group(rows, "engine", "condition")
    kinds = sorted({r["kind"] for r in rows})

    fig, ax = plt.subplots(figsize=(max(6, 1.2 * len(kinds) * max(1, len(groups)) ** 0.5), 4))
    width = 0.8 / max(1, len(groups))
    for i, (key, rs) in enumerate(sorted(groups.items())):
        by_kind = _group(rs, "kind")
        acc = [aggregate(by_kind.get((k,), []))["accuracy"] or 0.0 for k in kinds]
        ax.bar([x + i * width for x in range(len(kinds))], acc, width, label="/".join(key))
    ax.set_xticks([x + 0.4 - width / 2 for x in range(len(kinds))], kinds)
    ax.set_ylim(0, 1)
    ax.set_ylabel("accuracy (right / all)")
    ax.set_title("Accuracy per kind")
    ax.legend(fontsize=7)
    written.append(_save(fig, out / "accuracy_per_kind.png"))

    fig, ax = plt.subplots(figsize=(6, 4))
    for key, rs in sorted(groups.items()):
        lat = [r["latency_s"] for r in rs if isinstance(r.get("latency_s"), (int, float))]
        if lat:
            ax.hist(lat, bins=20, alpha=0.5, label="/".join(key))
    ax.set_xlabel("latency per turn (s)")
    ax.set_ylabel("samples")
    ax.set_title("Latency distribution")
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=7)
    written.append(_save(fig, out / "latency.png"))

    fig, ax = plt.subplots(figsize=(6, 4))
    for key, rs in sorted(groups.items()):
        by_set = _group(rs, "set")
        xs = [aggregate(v)["image_tokens_mean"] or 0.0 for v in by_set.values()]
        ys = [aggregate(v)["accuracy"] or 0.0 for v in by_set.values()]
        ax.scatter(xs, ys, label="/".join(key))
        for (name,), x, y in zip(by_set, xs, ys, strict=True):
            ax.annotate(str(name), (x, y), fontsize=6)
    ax.set_xlabel("image tokens per turn (mean over the set)")
    ax.set_ylabel("accuracy")
    ax.set_ylim(0, 1.05)
    ax.set_title("Accuracy vs image tokens (one point per set)")
    ax.legend(fontsize=7)
    written.append(_save(fig, out / "accuracy_vs_image_tokens.png"))
    return written


def _save(fig, path: Path) -> Path:
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    import matplotlib.pyplot as plt

    plt.close(fig)
    return path


def html_report(rows: list[dict], images: list[Path]) -> str:
    parts = [
        "<!doctype html><meta charset='utf-8'><title>Evaluation report</title>",
        "<style>body{font-family:sans-serif;margin:2em}table{border-collapse:collapse;font-size:12px}"
        "td,th{border:1px solid #ccc;padding:2px 6px;text-align:right}th{background:#eee}</style>",
        "<h1>Evaluation report</h1>",
    ]
    for title, header, body in tables(rows):
        parts.append(f"<h2>{html.escape(title)}</h2><table><tr>")
        parts += [f"<th>{html.escape(h)}</th>" for h in header]
        parts.append("</tr>")
        for r in body:
            parts.append("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in r) + "</tr>")
        parts.append("</table>")
    for p in images:
        parts.append(f"<h2>{html.escape(p.stem.replace('_', ' '))}</h2><img src='{html.escape(p.name)}'>")
    return "\n".join(parts)


def write_report(out: Path, rows: list[dict]) -> dict[str, Path]:
    out.mkdir(parents=True, exist_ok=True)
    md = out / "report.md"
    md.write_text(markdown(rows), encoding="utf-8")
    images = plots(rows, out) if rows else []
    page = out / "report.html"
    page.write_text(html_report(rows, images), encoding="utf-8")
    summary = out / "summary.json"
    summary.write_text(json.dumps(summary_dict(rows), indent=2), encoding="utf-8")
    return {"md": md, "html": page, "summary": summary}


def summary_dict(rows: list[dict]) -> dict:
    """The headline figures as JSON: per (engine, condition, set) and per (engine, condition)."""
    out = {}
    for key, rs in _group(rows, "engine", "condition").items():
        name = "/".join(map(str, key))
        out[name] = {
            "all": aggregate(rs),
            "engine": engine_figures(rs),
            "sets": {s: aggregate(v) for (s,), v in _group(rs, "set").items()},
            "kinds": {k: aggregate(v) for (k,), v in _group(rs, "kind").items()},
        }
    return out
