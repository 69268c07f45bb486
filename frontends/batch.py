"""Scripted Q&A: the questions of `launch.py batch` and where its answers go.

Questions come from JSONL or CSV (`id`, `image` relative to the images folder, `question`), or one set of
questions is asked of every image in the folder. The output is checked (`check_output`) before any
model loads. The answers are written by `assistant/answer_log.py`: one whole, fsynced JSON line per
question, so an interrupted run is resumed by running the same command again (every id already in the
output is skipped), and a bad row records a one-line error while the run goes on. Only a regular file
(or a new name) is accepted as the output, and one run at a time writes it (the log's lock). An `image` that leaves
the images folder (`../x.png`, an absolute path) is a row error unless the run allows it
(`--allow-outside-images`).
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

from assistant.answer_log import Job
from tools.errors import BadInputError

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".webp", ".bmp", ".gif", ".tif", ".tiff"}


# ---- reading questions ------------------------------------------------------------------------------


def read_questions(path: str | Path) -> list[Job]:
    """JSONL (one object per line) or CSV with a header; `id` defaults to the row number."""
    p = Path(path)
    if not p.is_file():
        raise BadInputError(f"questions file not found: {p}")
    jobs = _read_csv(p) if p.suffix.lower() == ".csv" else _read_jsonl(p)
    seen: dict[str, int] = {}
    for n, job in enumerate(jobs, 1):
        if job.id in seen:
            raise BadInputError(
                f"{p}: id {job.id!r} appears on rows {seen[job.id]} and {n}; ids must be unique"
            )
        seen[job.id] = n
    return jobs


def _job(row: dict, n: int) -> Job:
    rid = str(row.get("id") or "").strip() or f"row-{n}"
    question = str(row.get("question") or "").strip()
    image = str(row.get("image") or "").strip() or None
    return Job(rid, question, image, error=None if question else "row has no question")


def _read_jsonl(p: Path) -> list[Job]:
    jobs = []
    with p.open(encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
                if not isinstance(row, dict):
                    raise ValueError("not a JSON object")
            except ValueError as e:
                jobs.append(Job(f"row-{n}", "", None, error=f"line {n} is not a JSON object: {e}"))
                continue
            jobs.append(_job(row, n))
    return jobs


def _read_csv(p: Path) -> list[Job]:
    with p.open(encoding="utf-8", newline="") as f:
        reader = csv.DictReader(f)
        if not reader.fieldnames or "question" not in reader.fieldnames:
            raise BadInputError(
                f"{p}: a CSV of questions needs a header with at least `question` (and `id`, `image`)"
            )
        return [_job(row, n) for n, row in enumerate(reader, 1)]


def list_images(folder: str | Path) -> list[str]:
    """Image files under `folder` (recursively), as sorted paths relative to it."""
    root = Path(folder)
    if not root.is_dir():
        raise BadInputError(f"images folder not found: {root}")
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)


def every_image_jobs(folder: str | Path, questions: list[Job]) -> list[Job]:
    """The same questions for every image in the folder; ids are `IMAGE#QUESTION_ID`."""
    images = list_images(folder)
    if not images:
        raise BadInputError(f"no images ({', '.join(sorted(IMAGE_SUFFIXES))}) in {folder}")
    return [Job(f"{im}#{q.id}", q.question, im, q.error) for im in images for q in questions]


# ---- the output file ------------------------------------------------------------------------------------


def check_output(path: str | Path) -> Path:
    """Make sure answers can be written to `path` (creating its folder and the file if missing);
    a one-line BadInputError otherwise. Called before anything slow happens."""
    p = Path(path)
    if p.is_dir():
        raise BadInputError(f"--out {p} is a directory; give a file name such as {p / 'answers.jsonl'}")
    if p.exists() and not p.is_file():  # a device (/dev/zero, /dev/full), a FIFO, a socket: never opened
        raise BadInputError(
            f"--out {p} is not a regular file; give the name of a file (new or one of answers)"
        )
    for parent in [p.parent, *p.parent.parents]:
        if parent.exists():
            if not parent.is_dir():
                raise BadInputError(f"--out {p}: {parent} is a file, not a directory")
            break
    try:
        p.parent.mkdir(parents=True, exist_ok=True)
        with p.open("a", encoding="utf-8"):
            pass
    except OSError as e:
        raise BadInputError(f"cannot write answers to {p}: {e.strerror or e}") from None
    return p
