"""Process-wide set-up shared by every entry point: offline-friendly environment, one-line errors."""

from __future__ import annotations

import contextlib
import gc
import os
import sys


def configure_environment() -> None:
    """Keep libraries quiet on the network and off telemetry; never overrides what the user set."""
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    os.environ.setdefault("YOLO_AUTOINSTALL", "0")
    # No process-wide OMP_THREAD_LIMIT: it would pin torch to one thread (and hangs ultralytics training
    # when torch asks for two); the OCR tool gives Tesseract its one-thread limit per subprocess.
    os.environ.setdefault("TRANSFORMERS_NO_ADVISORY_WARNINGS", "1")


def run_command(fn, args) -> int:
    """Run a subcommand; a UserError becomes one line on stderr and exit code 2."""
    from tools.errors import UserError

    try:
        rc = fn(args)
    except UserError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    return int(rc or 0)


def eprint(*parts) -> None:
    print(*parts, file=sys.stderr, flush=True)


def exit_now(rc: int) -> None:
    """End a one-shot command's process now: flush stdout and stderr, skip interpreter teardown.

    Tearing down a process that loaded torch and transformers (thousands of modules, their shared
    libraries' destructors) takes over a second on a CPU; a command that has written and closed all it
    writes loses nothing by skipping it. Worker threads still running (a tool past its time limit) end
    with the process instead of holding it open."""
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):  # a closed pipe or stream: nothing more can reach it
            pass
    os._exit(rc)


@contextlib.contextmanager
def loading_without_gc(collect: bool = False):
    """Run start-up (imports, model loading) with the cyclic garbage collector off, then freeze it.

    Loading torch, transformers and a model makes ~750k objects that live as long as the process, and
    meanwhile the collector scans them again and again: a fifth of the import time on a CPU. Afterwards
    they are moved out of its sight (`gc.freeze`) and it runs as before on what the process makes next.
    The little cyclic garbage start-up leaves stays until exit, unless `collect` (one full collection,
    a few tenths of a second: for a process that runs on, not for a one-shot command)."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if collect:
            gc.collect()
        gc.freeze()
        if enabled:
            gc.enable()
