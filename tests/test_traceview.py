"""Trace inspection over real traces: the assistant (SmolLM2, real OCR) answers about two signs, then
`trace show`, `trace render` and `trace diff` read what it wrote."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

from assistant.trace import load_trace
from frontends import traceview
from frontends.drawing import CITED
from tests.frontends_util import assistant, sign_png

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """One two-turn conversation; returns (trace path, image paths)."""
    d = tmp_path_factory.mktemp("traceview")
    a = assistant("smollm2", d / "traces", tools=("ocr", "color"))
    first, second = sign_png(d, "a.png", "OPEN DAILY", seed=1), sign_png(d, "b.png", "NO PARKING", seed=2)
    conv = a.conversation()
    r1 = conv.ask("What does the sign say?", [first])
    conv.ask("And this one?", [second])
    return Path(r1.trace), [first, second]


def _cli(*args) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "launch.py", "trace", *map(str, args)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_show_is_a_readable_timeline(run):
    path, _ = run
    r = _cli("show", path)
    assert r.returncode == 0, r.stderr
    out = r.stdout
    assert out.count("── turn") == 2
    assert '"What does the sign say?"' in out and '"And this one?"' in out
    assert "ocr(image 1," in out and "ocr(image 2," in out  # tool calls with their arguments and images
    assert "found:" in out and "evidence: ocr:" in out and " ms" in out  # results and durations
    assert "budget: image 1 ->" in out and "image tokens" in out
    assert "verified" in out and "citations: ocr:" in out
    assert "OPEN DAILY" in out.upper() and "NO PARKING" in out.upper()
    full = _cli("show", path, "--full", "--turn", "2").stdout
    assert "── turn 2" in full and "── turn 1" not in full and "[ocr:" in full and "<system>" in full


def test_render_draws_cited_boxes_on_the_turns_image(run, tmp_path):
    path, images = run
    out = tmp_path / "turn1.png"
    r = _cli("render", path, "--turn", 1, "--out", out)
    assert r.returncode == 0, r.stderr
    im = Image.open(out).convert("RGB")
    assert im.size == Image.open(images[0]).size
    turn = load_trace(path).turn(1)
    cited = [e for e in turn.evidence if e["id"] in turn.citations and e["box"]]
    assert cited
    x0, y0, x1, y1 = (round(v) for v in cited[0]["box"])
    edge = [im.getpixel((x, y0)) for x in range(x0 + 2, x1 - 2)]  # the top edge of the cited box
    assert sum(1 for p in edge if p == CITED) > len(edge) * 0.5


def test_render_without_the_image_draws_on_a_blank_canvas(run, tmp_path):
    path, images = run
    moved = tmp_path / "trace.jsonl"
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    for t in lines:
        for im in t["images"]:
            im["source"] = "/nowhere/" + Path(im["source"]).name
    moved.write_text("".join(json.dumps(t) + "\n" for t in lines))
    image, notes = traceview.render(load_trace(moved), 2)
    assert notes and "not found" in notes[0]
    found, notes = traceview.render(load_trace(moved), 2, [images[1].parent])  # found again by its hash
    assert not notes and found.getpixel((5, 5)) != (200, 200, 200)


def test_diff_reports_changed_answers_evidence_and_time(run, tmp_path):
    path, _ = run
    same = _cli("diff", path, path)
    assert same.returncode == 0 and same.stdout.startswith("2 same, 0 changed")
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    lines[1]["answer"] = "Something else."
    lines[1]["evidence"] = lines[1]["evidence"][:1]
    lines[1]["timings"]["total_s"] = lines[1]["timings"]["total_s"] * 3
    other = tmp_path / "b.jsonl"
    other.write_text("".join(json.dumps(t) + "\n" for t in lines))
    r = _cli("diff", path, other)
    assert r.returncode == 1
    assert r.stdout.startswith("1 same, 1 changed")
    assert "~ turn 2" in r.stdout and '-> "Something else."' in r.stdout
    assert "evidence:" in r.stdout and "lost" in r.stdout and "(3.0x)" in r.stdout


def test_diff_of_batch_answer_files_matches_rows_by_id(tmp_path):
    a, b = tmp_path / "a.jsonl", tmp_path / "b.jsonl"
    row = {"id": "1", "question": "q", "answer": "x", "abstained": False, "citations": [], "error": None}
    a.write_text(json.dumps(row) + "\n" + json.dumps({**row, "id": "2"}) + "\n")
    b.write_text(json.dumps({**row, "answer": "y"}) + "\n" + json.dumps({**row, "id": "3"}) + "\n")
    lines, counts = traceview.diff(traceview.load_run(a), traceview.load_run(b))
    assert counts == {"same": 0, "changed": 1, "only_a": 1, "only_b": 1, "slower": 0, "faster": 0}
    assert "- 2: only in A" in lines and "+ 3: only in B" in lines


def test_bad_files_are_one_line_errors(tmp_path):
    r = _cli("show", tmp_path / "nope.jsonl")
    assert (
        r.returncode == 2
        and r.stderr.strip().startswith("error: trace file not found")
        and "Traceback" not in r.stderr
    )
