"""Answer a file of questions over a folder of images; resumable.

  launch.py batch QUESTIONS --images DIR --out ANSWERS.jsonl
  launch.py batch --every-image QUESTIONS --images DIR --out ANSWERS.jsonl   # each question of every image
  launch.py batch --images DIR -q "What does the sign say?" --out ANSWERS.jsonl

QUESTIONS is JSONL or CSV with `id`, `image` (relative to DIR) and `question`. Each output row keeps
`id` and has `answer`, `citations`, `claims`, `abstained`, `error` (null or one line), `timings` and
`trace` (the conversation's trace file, under ANSWERS_traces/ unless --trace-dir says otherwise).
Interrupted (Ctrl-C, kill)? Run the same command again: finished rows are kept, the rest are answered.
"""

from __future__ import annotations

import argparse

from frontends.assistant_args import add_assistant_args
from frontends.batch_ray import add_ray_args, report, run_on_ray
from frontends.ops import add_ops_args


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.formatter_class = argparse.RawDescriptionHelpFormatter  # keep the docstring's layout
    p.add_argument("questions", nargs="?", help="JSONL or CSV of questions (id, image, question)")
    p.add_argument("--images", required=True, help="folder the `image` column is relative to")
    p.add_argument("--out", required=True, help="output JSONL, one row per question; appended to on resume")
    p.add_argument(
        "--every-image",
        action="store_true",
        help="ask every question of every image in --images (the `image` column is ignored)",
    )
    p.add_argument(
        "-q", "--question", action="append", default=[], help="a question to ask of every image (repeatable)"
    )
    p.add_argument("--retry-errors", action="store_true", help="answer again the rows that ended in an error")
    p.add_argument(
        "--allow-outside-images",
        action="store_true",
        help="let an `image` value name a file outside --images (`../x.png`, an absolute path); refused by default",
    )
    p.add_argument("--limit", type=int, default=None, help="stop after this many new rows (for a quick look)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--json", action="store_true", help="print the summary as one JSON object on stdout")
    add_assistant_args(p)
    add_ray_args(p)
    add_ops_args(p)


def run(args: argparse.Namespace) -> int:
    from assistant.answer_log import AnswerLog, Job, run_batch
    from frontends.assistant_args import build_assistant_from_args
    from frontends.batch import check_output, every_image_jobs, read_questions
    from frontends.ops import Operations
    from frontends.runtime import eprint
    from tools.errors import BadInputError

    out = check_output(args.out)  # before questions, images or a model: an unwritable --out fails now
    if args.question:
        asked = [Job(f"q{i}", q) for i, q in enumerate(args.question, 1)]
        jobs = every_image_jobs(args.images, asked)
    elif args.questions is None:
        raise BadInputError("give a QUESTIONS file or at least one -q QUESTION")
    elif args.every_image:
        jobs = every_image_jobs(args.images, read_questions(args.questions))
    else:
        jobs = read_questions(args.questions)
    if not jobs:
        raise BadInputError("no questions to ask")

    log = AnswerLog(out)
    if log.dropped_torn_line:
        eprint(f"{out}: dropped a half-written last row from an interrupted run")
    if log.set_aside:
        lines = ", ".join(map(str, log.set_aside[:10])) + (" ..." if len(log.set_aside) > 10 else "")
        eprint(
            f"{out}: set aside {len(log.set_aside)} damaged row(s) (line {lines}) in {log.damaged_path}; "
            "their questions will be answered again"
        )
    if args.retry_errors:
        eprint(f"{out}: {log.drop_errors()} row(s) with errors will be answered again")
    todo = [j for j in jobs if j.id not in log.rows]
    if args.limit is not None:
        todo = todo[: args.limit]
        jobs = [j for j in jobs if j.id in log.rows] + todo
    if not todo:
        eprint(f"{out}: all {len(jobs)} rows are already answered")
    trace_dir = args.trace_dir or str(out.with_name(out.stem + "_traces"))
    if args.ray is not None and todo:
        return run_on_ray(args, jobs, log, trace_dir)
    assistant = build_assistant_from_args(args, trace_dir=trace_dir) if todo else None
    ops = Operations.from_args(args) if assistant is not None else None
    if assistant is not None:
        eprint(f"model: {assistant.description}")
    if ops is not None:
        ops.attach(assistant)
        url = ops.start_metrics_server()
        if url:
            eprint(f"metrics on {url}")

    def answer(job, image):
        conv = assistant.conversation()
        try:
            return conv.ask(job.question, [image] if image is not None else []).to_dict()
        finally:
            conv.close()

    try:
        summary = run_batch(
            jobs,
            args.images,
            log,
            answer,
            progress=not args.no_progress,
            allow_outside=args.allow_outside_images,
        )
    finally:
        if ops is not None:
            ops.close()
    return report(summary, args)
