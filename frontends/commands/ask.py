"""Ask one question about one or more images and print the grounded answer.

`python launch.py ask --image IMG [--image IMG2 ...] [--json] "QUESTION"` runs one turn: tools, model,
claim verification. It prints the answer (unsupported claims flagged, citations in brackets), or with
`--json` one JSON object with answer, citations, claims, abstained, trace, timings, model, evidence and
tool calls. What runs (the engine's description) goes to stderr. A missing or unreadable image exits
with status 2 and a one-line message, before any model is loaded.
"""

from __future__ import annotations

import argparse


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from frontends.assistant_args import add_assistant_args

    parser.add_argument("question", help="the question, in quotes")
    parser.add_argument(
        "--image",
        action="append",
        default=[],
        metavar="IMG",
        help="an image file (repeat for several images)",
    )
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of the answer")
    add_assistant_args(parser)


def run(args: argparse.Namespace) -> int:
    import json
    import sys

    from frontends.assistant_args import build_assistant_from_args
    from frontends.runtime import eprint
    from tools.errors import BadInputError
    from tools.images import ImageRef

    if not args.question.strip():
        raise BadInputError("the question is empty")
    images = []
    for path in args.image:
        ref = ImageRef.from_path(path)
        ref.size  # noqa: B018 - decode now: a corrupt file fails before the model loads
        images.append(ref)
    assistant = build_assistant_from_args(args)
    eprint(f"model: {assistant.description}")
    conv = assistant.conversation()
    result = conv.ask(args.question, images)
    if args.json:
        out = result.to_dict()
        out["description"] = assistant.description
        print(json.dumps(out, ensure_ascii=False, default=str))
    else:
        print(result.answer)
        if result.trace:
            eprint(f"trace: {result.trace}")
    sys.stdout.flush()
    return 0
