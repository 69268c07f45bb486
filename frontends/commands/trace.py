"""Inspect traces.

launch.py trace show FILE [--full]               a readable timeline: turns, tool calls with arguments,
                                                 results, durations, budget decisions, verification
launch.py trace render FILE --turn N --out PNG   the turn's image(s) with evidence boxes, cited ones highlighted
launch.py trace diff A B                         two runs over the same questions (traces or batch answer
                                                 files): what changed in answers, evidence and timings
"""

from __future__ import annotations

import argparse


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.formatter_class = argparse.RawDescriptionHelpFormatter  # keep the docstring's layout
    sub = p.add_subparsers(dest="trace_command", metavar="ACTION", required=True)
    s = sub.add_parser("show", help="print a conversation's timeline")
    s.add_argument("file", help="a trace (JSONL) written by the assistant")
    s.add_argument(
        "--full", action="store_true", help="also every evidence record and the messages sent to the model"
    )
    s.add_argument("--turn", type=int, default=None, help="only this turn")
    r = sub.add_parser("render", help="draw a turn's evidence boxes on its images")
    r.add_argument("file", help="a trace (JSONL)")
    r.add_argument("--turn", type=int, default=None, help="turn number (default: the last)")
    r.add_argument("--out", required=True, help="PNG to write")
    r.add_argument(
        "--image",
        action="append",
        default=[],
        help="image file or folder to find the turn's images in (by hash), "
        "when they are no longer at the path the trace recorded (repeatable)",
    )
    d = sub.add_parser("diff", help="compare two runs over the same questions")
    d.add_argument("a", help="run A: a trace or a batch answers JSONL")
    d.add_argument("b", help="run B: the same kind of file")
    d.add_argument(
        "--timing-ratio", type=float, default=1.5, help="report a time that changed by more than this factor"
    )


def run(args: argparse.Namespace) -> int:
    from assistant.trace import load_trace
    from frontends import traceview
    from frontends.runtime import eprint

    if args.trace_command == "show":
        trace = load_trace(args.file)
        if args.turn is not None:
            print("\n".join(traceview.show_turn(trace.turn(args.turn), args.full)))
        else:
            print(traceview.show(trace, full=args.full))
        return 0
    if args.trace_command == "render":
        trace = load_trace(args.file)
        turn = args.turn if args.turn is not None else trace.turns[-1].turn
        image, notes = traceview.render(trace, turn, args.image)
        image.save(args.out)
        for n in notes:
            eprint(f"note: {n}")
        eprint(f"wrote {args.out} ({image.width}x{image.height}, turn {turn})")
        return 0
    lines, counts = traceview.diff(traceview.load_run(args.a), traceview.load_run(args.b), args.timing_ratio)
    print("\n".join(lines))
    return 1 if counts["changed"] or counts["only_a"] or counts["only_b"] else 0
