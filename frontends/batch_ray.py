"""`launch.py batch ... --ray [ADDRESS]`: the same batch, answered by a pool of assistants on Ray.

Each Ray actor builds the assistant the flags describe (model, tools, budget) once and answers jobs;
the driver appends each row to the answer log as it finishes (`assistant/distributed.py`), so the output
is the one `batch` writes, resumed the same way after any interruption. `--workers N` sets the pool
size (default: one actor per 2 CPUs of the cluster).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys


def add_ray_args(p: argparse.ArgumentParser, verb: str = "answer") -> None:
    """--ray [ADDRESS] and --workers, for `batch` (verb "answer") and `index` (verb "run")."""
    p.add_argument(
        "--ray",
        nargs="?",
        const="local",
        default=None,
        metavar="ADDRESS",
        help=f"{verb} on Ray Data with an actor pool (no ADDRESS: start a local cluster; 'auto': the running one)",
    )
    p.add_argument(
        "--workers", type=int, default=None, help="Ray actors (default: one per 2 CPUs of the cluster)"
    )


def run_on_ray(args: argparse.Namespace, jobs, log, trace_dir: str) -> int:
    from assistant.distributed import run_batch_on_ray
    from frontends.assistant_args import configs_from_args
    from frontends.runtime import eprint

    model_cfg, assistant_cfg = configs_from_args(args)
    assistant_cfg = dataclasses.replace(assistant_cfg, trace_dir=trace_dir)
    eprint(f"ray: {'a local cluster' if args.ray == 'local' else args.ray}")
    summary = run_batch_on_ray(
        jobs,
        args.images,
        log,
        model_cfg,
        assistant_cfg,
        address=args.ray,
        workers=args.workers,
        progress=not args.no_progress,
        allow_outside=args.allow_outside_images,
    )
    return report(summary, args)


def report(summary, args: argparse.Namespace) -> int:
    """A batch's summary on stderr (its first errors named), and as JSON on stdout with --json."""
    from frontends.runtime import eprint

    for line in summary.lines():
        eprint(line)
    for rid, err in list(summary.errors_by_id.items())[:5]:
        eprint(f"  error in {rid}: {err}")
    if args.json:
        json.dump(summary.to_dict(), sys.stdout)
        print()
    return 0
