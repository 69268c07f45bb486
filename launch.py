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
    "index": ("frontends.commands.index", "Index a folder of images for search (resumable, incremental)."),
    "search": (
        "frontends.commands.search",
        "Find indexed images by what they show (text, objects, colour, money, date).",
    ),
    "eval": (
        "frontends.commands.eval",
        "Evaluate answers on sets with known answers: scores, report, compare.",
    ),
}


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    """The parser of every subcommand, or with `only` of that one's flags alone (the others are listed,
    not imported: a command's module may import heavy packages at its top, as `tool` does the OCR)."""
    parser = argparse.ArgumentParser(
        prog="launch.py",
        description="A vision-language assistant whose every claim is grounded in tool evidence. "
        "With no subcommand, starts the Gradio UI (same flags as `ui`).",
    )
    sub = parser.add_subparsers(dest="command", metavar="SUBCOMMAND")
    for name, (module, help_text) in COMMANDS.items():
        if only is not None and name != only:
            sub.add_parser(name, help=help_text)
            continue
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


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    """The parsed command line; `command` is None when none was given."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or (argv[0].startswith("-") and argv[0] not in ("-h", "--help")):
        argv = ["ui", *argv]
    parser = build_parser(only=argv[0] if argv[0] in COMMANDS else None)
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
    return args


def main(argv: list[str] | None = None, from_shell: bool = False) -> int:
    """Run the command line's subcommand and return its exit status. `from_shell` (`python launch.py`):
    a one-shot command's process ends as soon as it is done (`ONE_SHOT`, `runtime.exit_now`)."""
    runtime.configure_environment()
    args = parse(argv)
    if args.command is None:
        return 2
    rc = runtime.run_command(args._module.run, args)
    if from_shell and getattr(args._module, "ONE_SHOT", False):
        runtime.exit_now(rc)
    return rc


if __name__ == "__main__":
    sys.exit(main(from_shell=True))
