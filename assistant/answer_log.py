"""The resumable answer log: whole rows, fsynced, skipped on rerun; and the loop that fills it.

Front ends (`launch.py batch`) and the evaluation runner both answer a list of jobs into a JSON-lines
file this way. Each answer is one JSON line, appended, flushed and fsynced before the next job starts, so
an interrupted run (Ctrl-C, kill, power loss) leaves only whole rows plus at most one torn last line,
which the next start drops. A row damaged anywhere else is set aside in a side file with its line number
and answered again; no other row is touched. Running the same jobs again skips every id already in the
log: nothing is redone or duplicated; a second run on the same file while one runs is refused (an
exclusive lock), and only a regular file is read. A bad row (missing or corrupt image, a tool or model failure) records a one-line
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

# The longest row read back (a row holds an answer, its claims and timings: kilobytes); a longer line is
# damage, set aside like any other, and never held in memory whole.
MAX_LINE_BYTES = 16 * 1024 * 1024


class AnswerLog:
    """The output JSONL: whole rows only, each appended with one write and fsynced.

    Opening it takes an exclusive lock on the file (held until `close`): a second run on the same file is
    refused in one line instead of answering every id again beside the first. Only a regular file (or
    a path that does not exist yet) is accepted: a device or a FIFO is refused before a byte is read.
    The file is read as a stream, line by line, each line at most `MAX_LINE_BYTES`:
    - a torn last line (a run killed mid-write) is dropped; a last row missing only its newline is kept;
    - a damaged row anywhere else (not JSON, not an object with an id, too long) is set aside: written
      to the side file `NAME.damaged.jsonl` with its line number and text, and taken out of the output,
      so its question is answered again; two rows run together on one line are both kept;
    - every other line is kept as it was, byte for byte.
    """

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.rows: dict[str, dict] = {}
        self.dropped_torn_line = False
        self.set_aside: list[int] = []  # line numbers of damaged rows moved to `damaged_path`
        self._f = _open_locked(self.path)
        self._load()

    @property
    def damaged_path(self) -> Path:
        return self.path.with_name(self.path.stem + ".damaged" + (self.path.suffix or ".jsonl"))

    def _load(self) -> None:
        keep: list[tuple[int, int, bytes | None]] = []  # (start, end, replacement) spans kept of the file
        damaged: list[dict] = []
        offset, torn = 0, False
        for lineno, (line, length, newline) in enumerate(_lines(self._f), 1):
            start, offset = offset, offset + length
            last = not newline
            rows = None if line is None else _rows_in(line)
            if line is not None and not line.strip():
                keep.append((start, offset, None if newline else b"\n"))  # a blank line: not a row
            elif rows is not None:
                for row in rows:
                    self.rows[str(row["id"])] = row
                # kept byte for byte only when nothing but JSON's own whitespace surrounds it: a stray
                # "\x0b" before a row is whitespace to Python and an error to every JSON reader
                whole = len(rows) == 1 and not last and line.strip(b" \t\r\n") == line.strip()
                keep.append((start, offset, None if whole else b"".join(_dumps(r) for r in rows)))
            elif last:
                torn = True  # a run killed mid-write: the one line that may be dropped
            else:
                damaged.append(_damage_record(lineno, line, length, self.path.name))
        self.dropped_torn_line = torn
        self.set_aside = [d["line"] for d in damaged]
        if torn or damaged or any(rep is not None for *_, rep in keep):
            if damaged:
                with self.damaged_path.open("a", encoding="utf-8") as f:
                    f.writelines(json.dumps(d, ensure_ascii=False) + "\n" for d in damaged)
                    f.flush()
                    os.fsync(f.fileno())
            self._rewrite(lambda out: _copy_spans(self._f, keep, out))

    def _rewrite(self, write: Callable) -> None:
        """Replace the file by what `write(file)` writes, atomically, the lock moving with it: the new
        file is locked before it takes the name, so no other run slips in between."""
        tmp = self.path.with_name(self.path.name + ".tmp")
        new = _open_locked(tmp, create_new=True)
        try:
            new.truncate(0)
            write(new)
            new.flush()
            os.fsync(new.fileno())
            tmp.replace(self.path)
        except BaseException:
            new.close()
            raise
        self._f.close()
        self._f = new

    def drop_errors(self) -> int:
        """Forget rows that ended in an error (so they run again); rewrites the file atomically."""
        bad = [k for k, r in self.rows.items() if r.get("error")]
        if bad:
            for k in bad:
                del self.rows[k]
            self._rewrite(lambda out: out.writelines(_dumps(r) for r in self.rows.values()))
        return len(bad)

    def append(self, row: dict) -> None:
        self._f.seek(0, os.SEEK_END)
        self._f.write(_dumps(row))
        self._f.flush()
        os.fsync(self._f.fileno())
        self.rows[str(row["id"])] = row

    def close(self) -> None:
        if not self._f.closed:
            self._f.close()  # and the lock with it


def _dumps(row: dict) -> bytes:
    return (json.dumps(row, ensure_ascii=False, default=str) + "\n").encode("utf-8")


def _open_locked(path: Path, create_new: bool = False):
    """The file, opened for reading and appending and locked for this run alone; a one-line
    BadInputError for what is not a regular file or is locked by another run."""
    import fcntl

    flags = os.O_RDWR | os.O_CREAT | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0)
    try:
        fd = os.open(path, flags, 0o644)  # O_NONBLOCK: a FIFO opens without waiting for a writer
    except OSError as e:
        raise BadInputError(f"cannot open answers file {path}: {e.strerror or e}") from None
    kind = _not_regular(os.fstat(fd).st_mode)
    if kind:
        os.close(fd)
        raise BadInputError(f"answers file {path} is {kind}, not a regular file; give a file name for --out")
    f = os.fdopen(fd, "r+b")
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        f.close()
        if create_new:  # a leftover .tmp another run is writing: that run owns the log
            raise BadInputError(f"answers file {path} is being rewritten by another run") from None
        raise BadInputError(
            f"answers file {path} is being written by another run; wait for it to finish or give another --out"
        ) from None
    return f


def _not_regular(mode: int) -> str:
    import stat

    kinds = [
        (stat.S_ISCHR, "a character device"),
        (stat.S_ISBLK, "a block device"),
        (stat.S_ISFIFO, "a FIFO"),
        (stat.S_ISSOCK, "a socket"),
        (stat.S_ISDIR, "a directory"),
    ]
    return next((name for test, name in kinds if test(mode)), "" if stat.S_ISREG(mode) else "not a file")


def _lines(f):
    """(line, length, ends with a newline) from the start of `f`, streamed; `line` is None for a line
    longer than MAX_LINE_BYTES, which is counted but never held whole."""
    f.seek(0)
    while True:
        line = f.readline(MAX_LINE_BYTES + 1)
        if not line:
            return
        if len(line) <= MAX_LINE_BYTES or line.endswith(b"\n"):
            yield line, len(line), line.endswith(b"\n")
            continue
        length = len(line)
        while not line.endswith(b"\n"):
            line = f.readline(1 << 20)
            if not line:
                break
            length += len(line)
        yield None, length, line.endswith(b"\n")


def _rows_in(line: bytes) -> list[dict] | None:
    """The rows a line holds: one, or several run together (a lost newline); None when any part of it
    is not a row (an object with an id)."""
    try:
        text = line.decode("utf-8")
    except UnicodeDecodeError:
        return None
    decoder, rows, i, text = json.JSONDecoder(), [], 0, text.strip()
    while i < len(text):
        try:
            row, i = decoder.raw_decode(text, i)
        except (ValueError, RecursionError):
            return None
        if not isinstance(row, dict) or "id" not in row:
            return None
        rows.append(row)
        while i < len(text) and text[i].isspace():
            i += 1
    return rows or None


def _damage_record(lineno: int, line: bytes | None, length: int, name: str) -> dict:
    return {
        "line": lineno,
        "file": name,
        "set_aside_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "bytes": length,
        "text": None if line is None else line.rstrip(b"\n").decode("utf-8", errors="backslashreplace"),
        "why": f"longer than {MAX_LINE_BYTES} bytes" if line is None else "not a whole JSON row with an id",
    }


def _copy_spans(src, spans: list[tuple[int, int, bytes | None]], out) -> None:
    """Write the kept spans of `src` to `out`: verbatim, or as their replacement."""
    for start, end, replacement in spans:
        if replacement is not None:
            out.write(replacement)
            continue
        src.seek(start)
        left = end - start
        while left:
            chunk = src.read(min(left, 1 << 20))
            if not chunk:
                break
            out.write(chunk)
            left -= len(chunk)


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
    todo = [j for j in jobs if j.id not in log.rows]
    summary = BatchSummary(skipped=len(jobs) - len(todo))
    rows = (answer_row(job, images_dir, answer, keys, allow_outside) for job in todo)
    return write_rows(log, rows, summary, len(jobs), progress, on_row)


def write_rows(
    log: AnswerLog,
    rows: Iterable[dict],
    summary: BatchSummary,
    total: int,
    progress: bool = True,
    on_row: Callable[[dict], None] | None = None,
) -> BatchSummary:
    """Append rows to `log` as they come (a row whose id is already there is never written twice,
    whatever a retried worker sends back), with a progress bar; closes the log; the summary over the
    whole log. Shared by one machine's batch and Ray's (`assistant.distributed`)."""
    from tqdm import tqdm

    t_start = time.perf_counter()
    bar = tqdm(total=total, initial=summary.skipped, disable=not progress, unit="q", dynamic_ncols=True)
    try:
        for row in rows:
            if row["id"] in log.rows:
                continue
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
    tally(summary, log.rows.values())
    return summary


def answer_row(
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


def tally(summary: BatchSummary, rows: Iterable[dict]) -> None:
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
