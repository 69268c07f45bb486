"""Evaluate the assistant on sets of questions with known answers; resumable.

  launch.py eval SET [SET ...] [--engine default oracle hallucinating] [--limit N] [--out DIR]
  launch.py eval SET ... --conditions both tools-only vision-only ocr-fails   # ablations, dropout
  launch.py eval SET ... --from-batch ANSWERS.jsonl --out DIR                  # score answers made elsewhere
  launch.py eval --compare RUN_A RUN_B [--out DIR]                             # sample by sample

SET is a builtin (synth-signs, synth-receipts, synth-abstain, synth-inject, synth-shapes, shipped) or a
folder with cases.jsonl (`id`, `image` relative to the folder or a list of them, `question`,
`expect_any`, `kind`: read|count|detect|color|where|abstain|inject, optional `forbid`).
DIR gets answers-ENGINE-CONDITION.jsonl (resumable: run the same command again to go on),
results.jsonl (every sample scored), report.md, report.html, summary.json and plots.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from frontends.assistant_args import add_assistant_args

ENGINE_CHOICES = ("default", "oracle", "hallucinating")


def add_arguments(p: argparse.ArgumentParser) -> None:
    from evaluation.ablations import CONDITIONS

    p.formatter_class = argparse.RawDescriptionHelpFormatter
    p.add_argument("sets", nargs="*", help="builtin set names or set folders")
    p.add_argument("--out", default="eval-results", help="output folder (default: eval-results)")
    p.add_argument(
        "--engine",
        nargs="+",
        default=["default"],
        choices=ENGINE_CHOICES,
        help="who drafts the answer: the model (default), an oracle, a hallucinating engine; several run in turn",
    )
    p.add_argument(
        "--conditions",
        nargs="+",
        default=["both"],
        choices=CONDITIONS,
        help="ablations (tools-only, vision-only) and modality dropout (no-image, corrupt-image, ocr-fails, "
        "detector-fails, tools-slow); default: both (the assistant as shipped)",
    )
    p.add_argument("--limit", type=int, default=None, help="only the first N cases of each set")
    p.add_argument(
        "--from-batch", default=None, metavar="ANSWERS", help="score this answers JSONL instead of running"
    )
    p.add_argument("--compare", nargs=2, default=None, metavar=("A", "B"), help="compare two result folders")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    add_assistant_args(p)


def run(args: argparse.Namespace) -> int:
    from evaluation.runner import EvalConfig, run_eval, score_batch
    from frontends.runtime import eprint
    from tools.errors import BadInputError

    out = Path(args.out)
    if args.compare:
        from evaluation.compare import compare_runs

        for line in compare_runs(Path(args.compare[0]), Path(args.compare[1]), out):
            print(line)
        return 0
    if not args.sets:
        raise BadInputError("give at least one SET (a builtin name or a folder with cases.jsonl)")
    if args.limit is not None and args.limit < 1:
        raise BadInputError(f"--limit must be at least 1, got {args.limit}")
    if args.from_batch:
        rows = score_batch(args.from_batch, args.sets, out, args.limit)
    else:
        cfg = EvalConfig(args.sets, out, args.engine, args.conditions, args.limit, not args.no_progress)
        rows = run_eval(cfg, _builder(args), log=eprint)
    _print_headline(rows)
    eprint(f"report: {out / 'report.md'} (and report.html, results.jsonl)")
    return 0


def _builder(args):
    """(engine name, condition) -> Assistant; the model loads once and serves every condition."""
    import dataclasses

    from evaluation.ablations import SHARED_TOOLS, assistant_for
    from evaluation.engines import ENGINES
    from frontends.assistant_args import configs_from_args

    model_cfg, assistant_cfg = configs_from_args(args)
    trace_dir = args.trace_dir or str(Path(args.out) / "traces")
    assistant_cfg = dataclasses.replace(assistant_cfg, trace_dir=trace_dir)
    loaded, shared = {}, {}

    def build(engine: str, condition: str):
        if engine not in loaded:
            if engine == "default":
                from assistant.core import load_engine

                loaded[engine] = load_engine(model_cfg)
            else:
                loaded[engine] = ENGINES[engine]()
        assistant = assistant_for(condition, loaded[engine], assistant_cfg, shared.get("runner"))
        if condition in SHARED_TOOLS and assistant.tools is not None:
            shared.setdefault("runner", assistant.tools)  # one tool cache for every engine
        return assistant

    return build


def _print_headline(rows: list[dict]) -> None:
    from evaluation.metrics import aggregate, engine_figures
    from evaluation.report import _group

    for (engine, condition, name), rs in sorted(_group(rows, "engine", "condition", "set").items()):
        a = aggregate(rs)
        print(
            f"{engine:13s} {condition:14s} {name:20s} n={a['n']:3d} right={a['right']:3d} "
            f"abstained={a['abstained']:3d} wrong-as-fact={a['wrong_as_fact']:3d} errors={a['error']}"
        )
    for (engine, condition), rs in sorted(_group(rows, "engine", "condition").items()):
        f = engine_figures(rs)
        fmt = lambda v: "–" if v is None else f"{v:.2f}"  # noqa: E731
        print(
            f"{engine:13s} {condition:14s} draft {fmt(f['draft_accuracy'])} shown {fmt(f['shown_accuracy'])} "
            f"harm {fmt(f['harm_rate'])} catch {fmt(f['catch_rate'])}"
        )
