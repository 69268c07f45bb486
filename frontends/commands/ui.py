"""Start the Gradio chat UI (what `python launch.py` runs with no subcommand).

Chat with one or more images per message; watch each tool call (arguments, result, duration); see the
evidence boxes on the image, with those the answer cites highlighted, and which claims were verified or
flagged; per-turn figures (image tokens and budget, cache hits, time to first token); download the
conversation's trace. Binds to 127.0.0.1 unless --host says otherwise.
"""

from __future__ import annotations

import argparse

from frontends.assistant_args import add_assistant_args
from frontends.ops import add_ops_args


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.formatter_class = argparse.RawDescriptionHelpFormatter  # keep the docstring's layout
    p.add_argument(
        "--host", default="127.0.0.1", help="address to bind (default: 127.0.0.1, this machine only)"
    )
    p.add_argument("--port", type=int, default=7860, help="port to listen on (default: 7860)")
    p.add_argument(
        "--concurrency",
        type=int,
        default=1,
        help="turns answered at once; others wait in the queue (default: 1)",
    )
    p.add_argument(
        "--extra-model",
        action="append",
        default=[],
        help="another model to offer in the settings (repeatable)",
    )
    add_assistant_args(p)
    add_ops_args(p)


def run(args: argparse.Namespace) -> int:
    import dataclasses

    from assistant.factory import build_assistant
    from frontends.assistant_args import configs_from_args
    from frontends.ops import Operations
    from frontends.runtime import eprint
    from frontends.ui import AssistantPool, UIConfig, build_ui, launch_ui

    model_cfg, assistant_cfg = configs_from_args(args)
    ops = Operations.from_args(args)  # --metrics-port, --otel, --request-log; None when none is given

    def build(model: str):
        assistant = build_assistant(dataclasses.replace(model_cfg, model=model), assistant_cfg)
        if ops is not None:
            ops.attach(assistant)  # every model offered: one set of metrics, labelled by nothing of theirs
        return assistant

    pool = AssistantPool(build, model_cfg.model)
    eprint(f"model: {pool.base(model_cfg.model).description}")  # load before serving: errors show here
    cfg = UIConfig(
        host=args.host, port=args.port, concurrency=args.concurrency, model_choices=args.extra_model
    )
    if args.host not in ("127.0.0.1", "localhost", "::1"):
        eprint("warning: the UI is reachable beyond this machine; anyone who reaches it can use the model")
    eprint(f"UI on http://{args.host}:{args.port}")
    url = ops.start_metrics_server() if ops is not None else None
    if url:
        eprint(f"metrics on {url}")
    try:
        launch_ui(build_ui(pool, cfg), cfg)
    finally:
        if ops is not None:
            ops.close()
    return 0
