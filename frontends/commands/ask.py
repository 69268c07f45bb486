"""Ask one question about one or more images and print the grounded answer.

`python launch.py ask --image IMG [--image IMG2 ...] [--json] "QUESTION"` runs one turn: tools, model,
claim verification. It prints the answer (unsupported claims flagged, citations in brackets), or with
`--json` one JSON object with answer, citations, claims, abstained, trace, timings, model, evidence and
tool calls. What runs (the engine's description) goes to stderr. A missing or unreadable image exits
with status 2 and a one-line message, before any model is loaded.

Start-up is most of a one-shot question on a CPU, so the turn's first tool calls (the OCR of a reading
question) start as soon as the images are decoded, in a child process at a lower CPU priority, while
torch, transformers and the model load (with the garbage collector off: `runtime.loading_without_gc`);
the turn then finds them done or running. `launch.py` ends the process without tearing the interpreter
down (`ONE_SHOT`).
"""

from __future__ import annotations

import argparse

# launch.py ends this command's process without interpreter teardown: the trace is written and closed
# per turn and nothing else is left to flush, while unloading torch and transformers takes over a second.
ONE_SHOT = True


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from frontends.ask_search import add_search_args
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
    add_search_args(parser)  # --search QUERY: ask about the images a search finds
    add_assistant_args(parser)
    from frontends.ops import add_ops_args

    add_ops_args(parser, metrics_port=False)


def run(args: argparse.Namespace) -> int:
    import json
    import sys

    from assistant.factory import build_assistant, build_runner
    from assistant.session import prefetch_first_turn
    from frontends.ask_search import search_images
    from frontends.assistant_args import configs_from_args
    from frontends.ops import Operations
    from frontends.runtime import eprint, loading_without_gc
    from tools.errors import BadInputError
    from tools.images import ImageRef

    if not args.question.strip():
        raise BadInputError("the question is empty")
    images = []
    for path in args.image:
        ref = ImageRef.from_path(path)
        ref.size  # noqa: B018 - decode now: a corrupt file fails before the model loads
        images.append(ref)
    images += search_images(args)
    model_cfg, assistant_cfg = configs_from_args(args)
    runner = build_runner(assistant_cfg)
    # The OCR overlaps the model's loading, in a child process (the imports keep the GIL to themselves)
    # at a lower priority (the loading is the longer of the two).
    prefetch_first_turn(runner, assistant_cfg, args.question, images, low_priority=True, fork=True)
    with loading_without_gc():
        assistant = build_assistant(model_cfg, assistant_cfg, runner=runner)
    eprint(f"model: {assistant.description}")
    ops = Operations.from_args(args)  # --otel, --request-log: None when neither is asked for
    if ops is not None:
        ops.attach(assistant)
    conv = assistant.conversation()
    try:
        result = conv.ask(args.question, images)
    finally:
        if ops is not None:
            ops.close()  # spans out before the process ends without teardown
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
