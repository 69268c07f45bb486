"""Entry point: `python launch.py [SUBCOMMAND] ...`; with no subcommand it starts the Gradio UI.

Each subcommand lives in its own module under `frontends/commands/` and is registered explicitly in
COMMANDS below. Those modules import heavy packages inside their `run` functions, so `--help` is fast.
A `UserError` (bad input, missing model, tool failure) prints one line and exits non-zero.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from frontends import runtime

# (module, one-line help); each module defines add_arguments(parser) and run(args) -> int | None.
COMMANDS = {
    "ui": ("frontends.commands.ui", "Start the Gradio chat UI (the default)."),
    "ask": (
        "frontends.commands.ask",
        "Ask one question about one or more images and print the grounded answer.",
    ),
    "batch": ("frontends.commands.batch", "Answer a file of questions over a folder of images (resumable)."),
    "trace": (
        "frontends.commands.trace",
        "Inspect traces: show a timeline, render evidence boxes, diff two runs.",
    ),
    "serve": ("frontends.commands.serve", "Serve an OpenAI-compatible HTTP API (/v1/chat/completions)."),
    "tool": (
        "frontends.commands.tool",
        "Run one tool (ocr, detect, zoom, color, metadata) and print its evidence.",
    ),
    "detector": ("frontends.commands.detector", "Train or prepare the YOLO detector."),
    "models": ("frontends.commands.models", "Build, convert and list the local models."),
    "bench": ("frontends.commands.bench", "Benchmarks that print figures and write them to JSON."),
    "eval": (
        "frontends.commands.eval",
        "Evaluate answers on sets with known answers: scores, report, compare.",
    ),
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="launch.py",
        description="A vision-language assistant whose every claim is grounded in tool evidence. "
        "With no subcommand, starts the Gradio UI (same flags as `ui`).",
    )
    sub = parser.add_subparsers(dest="command", metavar="SUBCOMMAND")
    for name, (module, help_text) in COMMANDS.items():
        mod = importlib.import_module(module)
        p = sub.add_parser(
            name,
            help=help_text,
            description=(mod.__doc__ or help_text).strip(),
            formatter_class=argparse.RawDescriptionHelpFormatter,  # module docstrings keep their layout
        )
        mod.add_arguments(p)
        p.set_defaults(_module=mod)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    runtime.configure_environment()
    parser = build_parser()
    if not argv or (argv[0].startswith("-") and argv[0] not in ("-h", "--help")):
        argv = ["ui", *argv]
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    return runtime.run_command(args._module.run, args)


if __name__ == "__main__":
    sys.exit(main())
