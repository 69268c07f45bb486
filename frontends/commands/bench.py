"""Benchmarks that print figures and write them to JSON.

    python launch.py bench tools [--json OUT]   # per-tool latency p50/p95, cache-hit speedup
    python launch.py bench cache [...]          # embedding and KV cache savings in the model core
    python launch.py bench qa [...]             # reading / receipt / abstention / injection rates
    python launch.py bench budget [...]         # image tokens saved by crops at equal accuracy
    python launch.py bench gpu [--shape 0.5b|7b|tiny] [--quantization 4bit|none] [--json OUT]
    python launch.py bench load [...]           # concurrent API clients: latency, 503s, memory, no leaks
    python launch.py bench drift [...]          # when each drift alarm fires, false alarms when nothing moved
    python launch.py bench ops [...]            # metrics, drift, spans and logs: their cost per turn
    python launch.py bench search --evalsets DIR # image search per modality and fused, latency at scale

Each benchmark is a module in bench/ with `add_arguments(parser)` and `run(args)`, imported only
when its flags or its run are needed.
"""

from __future__ import annotations

import argparse
import importlib

# benchmark name -> (module, one-line help)
BENCHMARKS = {
    "tools": (
        "bench.tools_bench",
        "Per-tool latency p50/p95 on generated images, and the cache-hit speedup.",
    ),
    "cache": (
        "bench.cache_bench",
        "Embedding-cache and KV-cache savings across turns, against plain transformers.",
    ),
    "qa": (
        "bench.qa_eval",
        "Grounded-answer rates on generated signs, receipts, unanswerable and injection images.",
    ),
    "gpu": (
        "bench.gpu_bench",
        "The CUDA path on random-weight LLaVA-OneVision models of the real shapes (0.5b, 7b; tiny on CPU).",
    ),
    "budget": (
        "bench.budget_eval",
        "Image tokens the budget planner saves on reading questions (crop vs full) at equal accuracy.",
    ),
    "load": ("bench.load_bench", "Concurrent API clients: throughput, latency, 503s, memory, no cross-talk."),
    "drift": (
        "bench.drift_bench",
        "Drift alarms: unshifted then blurred, darkened and scanned streams; when each fired, false alarms.",
    ),
    "ops": ("bench.ops_bench", "What metrics, drift, OpenTelemetry spans and request logs cost per turn."),
    "search": (
        "bench.search_eval",
        "Image search: recall@1/@5 and MRR per modality and fused, index throughput, latency at scale.",
    ),
}


def _load(name: str):
    from tools.errors import UserError

    module = BENCHMARKS[name][0]
    try:
        return importlib.import_module(module)
    except ModuleNotFoundError as e:
        if e.name != module:
            raise
        raise UserError(
            f"benchmark {name!r} is not available: {module.replace('.', '/')}.py is missing"
        ) from None


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="bench_name", metavar="BENCHMARK", required=True)
    for name, (_, help_text) in BENCHMARKS.items():
        p = sub.add_parser(name, help=help_text, description=help_text)
        try:
            mod = _load(name)
        except Exception as e:  # the others stay usable; running this one says what is missing
            p.set_defaults(bench_missing=str(e))
            continue
        mod.add_arguments(p)


def run(args) -> int:
    from tools.errors import UserError

    if getattr(args, "bench_missing", None):
        raise UserError(args.bench_missing)
    return _load(args.bench_name).run(args)
