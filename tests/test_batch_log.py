"""Issue 21 on the batch output (`assistant/answer_log.py`): a damaged row in the middle is set aside
(side file, line number) and answered again while every other row stays; two runs on one file are
refused by a lock; a device or a FIFO is never read; and, fuzzed, random damage anywhere in the file
loses no finished row."""

from __future__ import annotations

import json
import os
import tempfile
import threading
from pathlib import Path

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from assistant.answer_log import AnswerLog, Job, run_batch
from frontends.batch import check_output
from tools.errors import BadInputError


def _row(i: int) -> dict:
    return {"id": f"q{i:02d}", "question": f"what is {i}?", "answer": f"It is {i}.", "error": None}


def _lines(path: Path) -> list[bytes]:
    return path.read_bytes().splitlines(keepends=True)


def _answer(job, image):
    return {"answer": f"again {job.id}"}


def test_a_damaged_middle_row_is_set_aside_and_answered_again(tmp_path):
    out = tmp_path / "answers.jsonl"
    lines = [json.dumps(_row(i)).encode() + b"\n" for i in range(14)]
    lines[4] = lines[4][:25] + b"\x00garbage" + lines[4][40:]  # damaged in the middle
    out.write_bytes(b"".join(lines))
    log = AnswerLog(out)
    assert log.set_aside == [5] and not log.dropped_torn_line
    assert len(log.rows) == 13 and "q04" not in log.rows
    assert _lines(out) == lines[:4] + lines[5:]  # every other row kept byte for byte
    side = [json.loads(x) for x in log.damaged_path.read_text().splitlines()]
    assert side[0]["line"] == 5 and "garbage" in side[0]["text"] and side[0]["file"] == "answers.jsonl"
    asked = []
    run_batch(
        [Job(f"q{i:02d}", "q") for i in range(14)], None, log, lambda j, im: asked.append(j.id) or {}, False
    )
    assert asked == ["q04"]
    ids = [json.loads(x)["id"] for x in _lines(out)]
    assert sorted(ids) == [f"q{i:02d}" for i in range(14)]


def test_rows_run_together_and_a_last_row_without_its_newline_are_kept(tmp_path):
    out = tmp_path / "answers.jsonl"
    a, b, c = (json.dumps(_row(i)).encode() for i in range(3))
    out.write_bytes(a + b + b"\n\n" + c)  # a lost newline, a blank line, no final newline
    log = AnswerLog(out)
    assert set(log.rows) == {"q00", "q01", "q02"} and not log.set_aside and not log.dropped_torn_line
    log.close()
    assert [json.loads(x) for x in out.read_bytes().split(b"\n") if x.strip()] == [_row(i) for i in range(3)]


def test_a_second_run_on_the_same_output_is_refused_in_one_line(tmp_path):
    out = tmp_path / "answers.jsonl"
    first = AnswerLog(out)
    with pytest.raises(BadInputError, match="being written by another run") as e:
        AnswerLog(out)
    assert "\n" not in str(e.value)
    first.append(_row(1))
    first.close()
    assert set(AnswerLog(out).rows) == {"q01"}  # free again once the first run ends


def test_a_rewrite_keeps_the_lock(tmp_path):
    out = tmp_path / "answers.jsonl"
    out.write_text(json.dumps({"id": "x", "error": "boom"}) + "\n" + json.dumps(_row(1)) + "\n")
    log = AnswerLog(out)
    assert log.drop_errors() == 1  # the file is replaced by a new one: the lock must move with it
    with pytest.raises(BadInputError, match="another run"):
        AnswerLog(out)
    log.close()


def _finishes(fn, seconds: float = 10.0):
    box = {}

    def call():
        try:
            box["value"] = fn()
        except Exception as e:
            box["error"] = e

    t = threading.Thread(target=call, daemon=True)
    t.start()
    t.join(seconds)
    assert not t.is_alive(), "it hangs"
    return box


@pytest.mark.parametrize("device", ["/dev/zero", "/dev/full"])
def test_a_device_is_refused_before_a_byte_is_read(device):
    if not Path(device).exists():
        pytest.skip(f"no {device} here")
    for fn in (lambda: check_output(device), lambda: AnswerLog(device)):
        box = _finishes(fn, 5)
        assert "not a regular file" in str(box.get("error")), box


def test_a_fifo_is_refused_without_hanging(tmp_path):
    fifo = tmp_path / "out.jsonl"
    os.mkfifo(fifo)
    for fn in (lambda: check_output(fifo), lambda: AnswerLog(fifo)):
        box = _finishes(fn, 5)
        assert "not a regular file" in str(box.get("error")), box


# ---- fuzzed: random damage anywhere ----------------------------------------------------------------

damage = st.lists(
    st.tuples(
        st.sampled_from(["flip", "insert", "delete", "truncate", "newline"]),
        st.floats(0, 1, exclude_max=True),
        st.binary(min_size=1, max_size=12),
    ),
    min_size=1,
    max_size=4,
)


def _damage(data: bytes, ops) -> bytes:
    for op, where, junk in ops:
        at = int(where * len(data)) if data else 0
        if op == "flip":
            data = data[:at] + junk + data[at + len(junk) :]
        elif op == "insert":
            data = data[:at] + junk + data[at:]
        elif op == "delete":
            data = data[:at] + data[at + len(junk) * 5 :]
        elif op == "truncate":
            data = data[:at]
        else:  # a newline removed, or one added
            nl = data.find(b"\n", at)
            data = data[:nl] + data[nl + 1 :] if nl >= 0 else data + b"\n"
    return data


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(n=st.integers(1, 12), ops=damage)
@example(n=1, ops=[("insert", 0.0, b"\x0b")])  # whitespace to Python, not to JSON: found by this test
def test_random_damage_anywhere_loses_no_finished_row(n, ops):
    lines = [json.dumps(_row(i)).encode() + b"\n" for i in range(n)]
    damaged = _damage(b"".join(lines), ops)
    intact = [x for x in lines if damaged.startswith(x) or b"\n" + x in damaged]
    with tempfile.TemporaryDirectory() as d:
        out = Path(d) / "answers.jsonl"
        out.write_bytes(damaged)
        log = AnswerLog(out)
        kept = out.read_bytes()
        for x in intact:  # every finished row still there, byte for byte
            assert kept.startswith(x) or b"\n" + x in kept, x
        run_batch([Job(f"q{i:02d}", "q") for i in range(n)], None, log, _answer, progress=False)
        rows = [json.loads(x) for x in out.read_bytes().splitlines() if x.strip()]
        ids = {str(r["id"]) for r in rows}
        assert {f"q{i:02d}" for i in range(n)} <= ids  # every question has its answer
        assert all(isinstance(r, dict) for r in rows)
        side = log.damaged_path
        if side.exists():
            assert all("line" in json.loads(x) for x in side.read_text().splitlines())
