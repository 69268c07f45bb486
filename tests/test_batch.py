"""Scripted Q&A: reading questions, whole-row output, bad rows, and resuming after a kill.

The machinery tests answer with a plain function (what is under test is the runner, not the model);
the end-to-end test runs `launch.py batch` with the real offline model and OCR, kills it mid-run and
runs the same command again."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from assistant.answer_log import AnswerLog, Job, percentile, run_batch
from frontends.batch import every_image_jobs, read_questions
from tests.frontends_util import sign_png
from tools.errors import BadInputError

ROOT = Path(__file__).resolve().parents[1]


def _rows(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_reads_jsonl_and_csv(tmp_path):
    (tmp_path / "q.jsonl").write_text(
        '{"id": "a", "image": "x.png", "question": "What?"}\n\n{"image": "y.png", "question": "Why?"}\nnot json\n'
    )
    jobs = read_questions(tmp_path / "q.jsonl")
    assert [(j.id, j.image, j.question) for j in jobs[:2]] == [
        ("a", "x.png", "What?"),
        ("row-3", "y.png", "Why?"),
    ]
    assert jobs[2].id == "row-4" and "not a JSON object" in jobs[2].error  # recorded as that row's error
    (tmp_path / "q.csv").write_text('id,image,question\n1,x.png,"What, exactly?"\n2,y.png,\n')
    jobs = read_questions(tmp_path / "q.csv")
    assert jobs[0].question == "What, exactly?" and jobs[1].error == "row has no question"
    (tmp_path / "dup.jsonl").write_text('{"id": "a", "question": "q"}\n{"id": "a", "question": "r"}\n')
    with pytest.raises(BadInputError, match="rows 1 and 2"):
        read_questions(tmp_path / "dup.jsonl")


def test_every_image_mode_asks_each_question_of_each_image(tmp_path):
    for name in ("b.png", "sub/a.jpg", "notes.txt"):
        (tmp_path / name).parent.mkdir(exist_ok=True)
        (tmp_path / name).write_bytes(b"x")
    jobs = every_image_jobs(tmp_path, [Job("q1", "one?"), Job("q2", "two?")])
    assert [j.id for j in jobs] == ["b.png#q1", "b.png#q2", "sub/a.jpg#q1", "sub/a.jpg#q2"]


def test_bad_rows_record_one_line_errors_and_the_run_goes_on(tmp_path):
    sign_png(tmp_path, "ok.png")
    (tmp_path / "corrupt.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"garbage" * 10)
    jobs = [
        Job("1", "q", "ok.png"),
        Job("2", "q", "missing.png"),
        Job("3", "q", "corrupt.png"),
        Job("4", "q", "ok.png"),
    ]

    def answer(job, image):
        if job.id == "4":
            raise RuntimeError("tool crashed\nwith a traceback-like second line")
        return {
            "answer": f"{image.size[0]} wide",
            "citations": ["ocr:1"],
            "abstained": False,
            "timings": {"total_s": 0.5},
        }

    log = AnswerLog(tmp_path / "out.jsonl")
    summary = run_batch(jobs, tmp_path, log, answer, progress=False)
    rows = {r["id"]: r for r in _rows(tmp_path / "out.jsonl")}
    assert (
        rows["1"]["answer"] == "640 wide"
        and rows["1"]["error"] is None
        and rows["1"]["citations"] == ["ocr:1"]
    )
    assert "image not found" in rows["2"]["error"]
    assert "not an image" in rows["3"]["error"] or "corrupt" in rows["3"]["error"]
    assert rows["4"]["error"] == "RuntimeError: tool crashed with a traceback-like second line"
    assert all("\n" not in (r["error"] or "") for r in rows.values())
    assert (summary.answered, summary.abstained, summary.errors, summary.total) == (1, 0, 3, 4)
    assert all("row_s" in r["timings"] for r in rows.values())


def test_resume_drops_a_torn_line_and_skips_finished_rows(tmp_path):
    out = tmp_path / "out.jsonl"
    out.write_text(json.dumps({"id": "1", "answer": "kept", "error": None}) + "\n" + '{"id": "2", "answ')
    log = AnswerLog(out)
    assert log.dropped_torn_line and set(log.rows) == {"1"}
    asked = []

    def answer(job, image):
        asked.append(job.id)
        return {"answer": "new"}

    run_batch([Job("1", "q"), Job("2", "q"), Job("3", "q")], None, log, answer, progress=False)
    rows = _rows(out)
    assert asked == ["2", "3"] and [r["id"] for r in rows] == ["1", "2", "3"] and rows[0]["answer"] == "kept"
    # --retry-errors: rows that failed run again, the others stay
    out.write_text(out.read_text() + json.dumps({"id": "4", "error": "boom"}) + "\n")
    log = AnswerLog(out)
    assert log.drop_errors() == 1 and [r["id"] for r in _rows(out)] == ["1", "2", "3"]


def test_percentiles():
    assert percentile([1.0], 95) == 1.0
    assert percentile([1, 2, 3, 4], 50) == 2.5
    assert percentile(list(range(1, 101)), 95) == pytest.approx(95.05)


def test_cli_resumes_after_kill_without_redoing_or_duplicating(tmp_path):
    images = tmp_path / "imgs"
    images.mkdir()
    texts = ["OPEN DAILY", "FRESH BREAD", "NO PARKING", "EXIT"]
    for i, t in enumerate(texts):
        sign_png(images, f"s{i}.png", text=t, seed=i)
    qs = [
        {"id": f"q{i}", "image": f"s{i}.png", "question": "What does the sign say?"}
        for i in range(len(texts))
    ]
    qs.append({"id": "missing", "image": "nope.png", "question": "What does the sign say?"})
    (tmp_path / "q.jsonl").write_text("".join(json.dumps(q) + "\n" for q in qs))
    out = tmp_path / "answers.jsonl"
    cmd = [
        sys.executable,
        "launch.py",
        "batch",
        str(tmp_path / "q.jsonl"),
        "--images",
        str(images),
        "--out",
        str(out),
        "--model",
        "smollm2",
        "--device",
        "cpu",
        "--tools",
        "ocr",
        "--max-new-tokens",
        "8",
        "--no-progress",
        "--json",
    ]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}

    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.time() + 300
    while not (out.exists() and out.read_text().count("\n") >= 1):
        assert proc.poll() is None, proc.stderr.read().decode()[-2000:]
        assert time.time() < deadline, "no row written in time"
        time.sleep(0.2)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    before = out.read_bytes()
    whole = before[: before.rfind(b"\n") + 1]  # the kill may itself have torn the last line
    done_before = whole.count(b"\n")
    assert 1 <= done_before < len(qs)
    with out.open("ab") as f:  # what a kill in the middle of a write leaves behind
        f.write(b'{"id": "q3", "answer": "half')

    r = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-2000:]
    assert "dropped a half-written last row" in r.stderr
    rows = _rows(out)
    assert sorted(row["id"] for row in rows) == sorted(q["id"] for q in qs)  # each once, none lost
    assert out.read_bytes().startswith(whole)  # finished rows untouched
    summary = json.loads(r.stdout)
    assert summary["skipped"] == done_before and summary["ran"] == len(qs) - done_before
    assert summary["errors"] == 1 and summary["answered"] + summary["abstained"] == len(texts)
    by_id = {row["id"]: row for row in rows}
    assert "image not found" in by_id["missing"]["error"]
    assert "FRESH BREAD" in by_id["q1"]["answer"].upper() and by_id["q1"]["citations"]
    assert Path(by_id["q1"]["trace"]).is_file() and by_id["q1"]["timings"]["row_s"] > 0

    again = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert again.returncode == 0 and "already answered" in again.stderr
    assert _rows(out) == rows


@pytest.mark.parametrize("case", ["parent-is-file", "out-is-dir", "parent-missing-under-file"])
def test_an_unwritable_output_fails_in_one_line_before_any_model_loads(tmp_path, monkeypatch, capsys, case):
    import launch
    from frontends import assistant_args

    def no_model(*a, **k):
        raise AssertionError("a model was loaded before the output was checked")

    monkeypatch.setattr(assistant_args, "build_assistant_from_args", no_model)
    (tmp_path / "q.jsonl").write_text('{"id": "a", "image": "sign.png", "question": "What?"}\n')
    sign_png(tmp_path)
    (tmp_path / "afile").write_text("x")
    out = {
        "parent-is-file": tmp_path / "afile" / "answers.jsonl",
        "out-is-dir": tmp_path,
        "parent-missing-under-file": tmp_path / "afile" / "deeper" / "answers.jsonl",
    }[case]
    argv = ["batch", str(tmp_path / "q.jsonl"), "--images", str(tmp_path), "--out", str(out), "--no-progress"]
    assert launch.main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "\n" not in err and str(out) in err


def test_a_read_only_output_folder_fails_in_one_line(tmp_path):
    from frontends.batch import check_output

    if os.geteuid() == 0:  # root writes to any folder's mode bits; nobody may create files in sysfs
        assert os.path.isdir("/sys"), "a Linux machine has /sys"
        with pytest.raises(BadInputError, match="cannot write answers"):
            check_output("/sys/answers.jsonl")
        return
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o500)
    try:
        with pytest.raises(BadInputError, match="cannot write answers"):
            check_output(ro / "answers.jsonl")
    finally:
        ro.chmod(0o700)


def test_images_outside_the_folder_are_refused_unless_allowed(tmp_path):
    images = tmp_path / "images"
    images.mkdir()
    sign_png(tmp_path, "outside.png")
    sign_png(images, "inside.png")
    jobs = [
        Job("in", "What?", "inside.png"),
        Job("up", "What?", "../outside.png"),
        Job("abs", "What?", str(tmp_path / "outside.png")),
        Job("sneaky", "What?", "sub/../../outside.png"),
    ]

    def answer(job, image):
        return {"answer": f"{image.size[0]}x{image.size[1]}"}

    log = AnswerLog(tmp_path / "a.jsonl")
    run_batch(jobs, images, log, answer, progress=False)
    rows = {r["id"]: r for r in _rows(tmp_path / "a.jsonl")}
    assert rows["in"]["error"] is None and rows["in"]["answer"]
    for rid in ("up", "abs", "sneaky"):
        assert "outside the images folder" in rows[rid]["error"] and rows[rid]["answer"] is None
    log = AnswerLog(tmp_path / "b.jsonl")
    run_batch(jobs, images, log, answer, progress=False, allow_outside=True)
    assert all(r["error"] is None for r in _rows(tmp_path / "b.jsonl"))
