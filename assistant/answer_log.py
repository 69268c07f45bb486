"""The resumable answer log: whole rows, fsynced, skipped on rerun; and the loop that fills it.

Front ends (`launch.py batch`) and the evaluation runner both answer a list of jobs into a JSON-lines
file this way. Each answer is one JSON line, appended, flushed and fsynced before the next job starts, so
an interrupted run (Ctrl-C, kill, power loss) leaves only whole rows plus at most one torn last line,
which the next start drops. Running the same jobs again skips every id already in the log: nothing is
redone or duplicated. A bad row (missing or corrupt image, a tool or model failure) records a one-line
error and the run goes on; an `image` that leaves the images folder (`../x.png`, an absolute path) is a
row error unless the run allows it.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from tools.errors import BadInputError, UserError
from tools.images import ImageRef

# What an output row keeps from the assistant's TurnResult.to_dict(); the full record is in the trace.
RESULT_KEYS = (
    "answer",
    "citations",
    "claims",
    "abstained",
    "draft",
    "overruled_because",
    "status",
    "trace",
    "timings",
    "model",
    "budget",
)


@dataclass
class Job:
    """One question to ask: its id (the resume key), the image path relative to the folder, the text."""

    id: str
    question: str
    image: str | None = None
    error: str | None = None  # set when the input row itself was unusable (bad JSON, no question)


@dataclass
class BatchSummary:
    total: int = 0  # rows in the output file after this run
    answered: int = 0  # rows with an answer that is not an abstention
    abstained: int = 0
    errors: int = 0
    skipped: int = 0  # rows already done before this run started (resume)
    ran: int = 0  # rows answered by this run
    wall_s: float = 0.0  # this run's wall time
    rows_per_s: float = 0.0  # this run's throughput
    p50_s: float = 0.0  # per-row time, over all rows in the output
    p95_s: float = 0.0
    errors_by_id: dict[str, str] = field(default_factory=dict)

    def to_dict(self) -> dict:
        d = {k: (round(v, 4) if isinstance(v, float) else v) for k, v in self.__dict__.items()}
        d["errors_by_id"] = dict(list(self.errors_by_id.items())[:20])
        return d

    def lines(self) -> list[str]:
        return [
            f"rows: {self.total} ({self.ran} this run, {self.skipped} already done)",
            f"answered: {self.answered}  abstained: {self.abstained}  errors: {self.errors}",
            f"time per row: p50 {self.p50_s:.2f} s, p95 {self.p95_s:.2f} s;"
            f" this run {self.rows_per_s:.3f} rows/s over {self.wall_s:.1f} s",
        ]


# ---- the log ---------------------------------------------------------------------------------------


class AnswerLog:
    """The output JSONL: whole rows only, each appended with one write and fsynced."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.rows: dict[str, dict] = {}
        self.dropped_torn_line = False
        self._load()
        self._f = None

    def _load(self) -> None:
        if not self.path.exists():
            return
        data = self.path.read_bytes()
        good = 0  # byte offset just after the last complete, parseable line
        for line in data.splitlines(keepends=True):
            if not line.endswith(b"\n"):
                break
            try:
                row = json.loads(line)
            except ValueError:
                break
            if isinstance(row, dict) and "id" in row:
                self.rows[str(row["id"])] = row
            good += len(line)
        if good < len(data):
            # A run killed mid-write leaves a torn last line: cut it so the file is whole rows again.
            with self.path.open("r+b") as f:
                f.truncate(good)
                f.flush()
                os.fsync(f.fileno())
            self.dropped_torn_line = True

    def drop_errors(self) -> int:
        """Forget rows that ended in an error (so they run again); rewrites the file atomically."""
        bad = [k for k, r in self.rows.items() if r.get("error")]
        if bad:
            for k in bad:
                del self.rows[k]
            tmp = self.path.with_suffix(self.path.suffix + ".tmp")
            with tmp.open("w", encoding="utf-8") as f:
                for r in self.rows.values():
                    f.write(json.dumps(r, ensure_ascii=False) + "\n")
                f.flush()
                os.fsync(f.fileno())
            tmp.replace(self.path)
        return len(bad)

    def append(self, row: dict) -> None:
        if self._f is None:
            self._f = self.path.open("a", encoding="utf-8")
        self._f.write(json.dumps(row, ensure_ascii=False, default=str) + "\n")
        self._f.flush()
        os.fsync(self._f.fileno())
        self.rows[str(row["id"])] = row

    def close(self) -> None:
        if self._f is not None:
            self._f.close()
            self._f = None


# ---- running -----------------------------------------------------------------------------------------

# answer(job, image or None) -> the assistant's TurnResult.to_dict() (or anything with RESULT_KEYS)
AnswerFn = Callable[[Job, ImageRef | None], dict]


def one_line(e: BaseException) -> str:
    msg = str(e) if isinstance(e, UserError) else f"{type(e).__name__}: {e}"
    return " ".join(msg.split())[:500] or type(e).__name__


def run_batch(
    jobs: list[Job],
    images_dir: str | Path | None,
    log: AnswerLog,
    answer: AnswerFn,
    progress: bool = True,
    on_row: Callable[[dict], None] | None = None,
    keys: tuple[str, ...] = RESULT_KEYS,
    allow_outside: bool = False,
) -> BatchSummary:
    """Answer every job not yet in `log`; returns the summary over the whole log.

    `keys`: what a row keeps of the answer's dict (evaluation keeps more than RESULT_KEYS).
    `allow_outside`: let an `image` name a file outside `images_dir` (refused by default)."""
    from tqdm import tqdm

    todo = [j for j in jobs if j.id not in log.rows]
    summary = BatchSummary(skipped=len(jobs) - len(todo))
    t_start = time.perf_counter()
    bar = tqdm(total=len(jobs), initial=summary.skipped, disable=not progress, unit="q", dynamic_ncols=True)
    try:
        for job in todo:
            row = _answer_row(job, images_dir, answer, keys, allow_outside)
            log.append(row)
            summary.ran += 1
            bar.update(1)
            if on_row is not None:
                on_row(row)
    finally:
        bar.close()
        log.close()
    summary.wall_s = time.perf_counter() - t_start
    summary.rows_per_s = summary.ran / summary.wall_s if summary.wall_s > 0 else 0.0
    _tally(summary, log.rows.values())
    return summary


def _answer_row(
    job: Job, images_dir: str | Path | None, answer: AnswerFn, keys=RESULT_KEYS, allow_outside: bool = False
) -> dict:
    row = {"id": job.id, "image": job.image, "question": job.question}
    row.update({k: None for k in keys})
    row.update(citations=[], claims=[], abstained=False, error=None)
    t0 = time.perf_counter()
    try:
        if job.error:
            raise BadInputError(job.error)
        image = None
        if job.image is not None:
            image = ImageRef.from_path(image_path(job.image, images_dir, allow_outside))
            image.image  # noqa: B018 - decode now: a corrupt file is this row's error, before the model runs
        result = answer(job, image)
        row.update({k: result.get(k) for k in keys if k in result})
        row["abstained"] = bool(row.get("abstained"))
    except Exception as e:  # a bad row is recorded and the run goes on (KeyboardInterrupt is not caught)
        row["error"] = one_line(e)
    elapsed = time.perf_counter() - t0
    timings = row.get("timings") if isinstance(row.get("timings"), dict) else {}
    row["timings"] = {**timings, "row_s": round(elapsed, 4)}
    return row


def image_path(name: str, images_dir: str | Path | None, allow_outside: bool = False) -> Path:
    """Where a row's `image` is: inside `images_dir` (lexically: no `..` out of it, no absolute path)
    unless `allow_outside`. Symlinks the user put inside the folder are followed as usual."""
    if images_dir is None:
        return Path(name)
    root = os.path.normpath(os.path.abspath(images_dir))
    path = os.path.normpath(os.path.join(root, name))
    if not allow_outside and os.path.commonpath([root, path]) != root:
        raise BadInputError(
            f"image {name!r} is outside the images folder {images_dir}; pass --allow-outside-images to allow it"
        )
    return Path(path)


def _tally(summary: BatchSummary, rows: Iterable[dict]) -> None:
    times = []
    for r in rows:
        summary.total += 1
        if r.get("error"):
            summary.errors += 1
            summary.errors_by_id[str(r["id"])] = r["error"]
        elif r.get("abstained"):
            summary.abstained += 1
        else:
            summary.answered += 1
        t = (r.get("timings") or {}).get("row_s")
        if isinstance(t, (int, float)):
            times.append(float(t))
    if times:
        summary.p50_s = percentile(times, 50)
        summary.p95_s = percentile(times, 95)


def percentile(values: list[float], q: float) -> float:
    """Linear-interpolated percentile (numpy's default method), without needing numpy."""
    xs = sorted(values)
    if len(xs) == 1:
        return xs[0]
    pos = (len(xs) - 1) * q / 100.0
    lo = int(pos)
    hi = min(lo + 1, len(xs) - 1)
    return xs[lo] + (xs[hi] - xs[lo]) * (pos - lo)
