"""`launch.py ask`: the JSON contract with the offline default model, and one-line errors for bad input."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from synthetic import render as synth

ROOT = Path(__file__).resolve().parents[1]


def ask(*args, timeout=600):
    return subprocess.run(
        [sys.executable, "launch.py", "ask", *args], cwd=ROOT, capture_output=True, text=True, timeout=timeout
    )


def test_json_answer_with_citations_claims_and_trace(tmp_path):
    sign = synth.render_sign(3)  # "NO PARKING"
    path = tmp_path / "sign.png"
    sign.image.save(path)
    p = ask("--image", str(path), "--json", "--model", "smollm2-llava", "--device", "cpu",
            "--trace-dir", str(tmp_path / "traces"), "What does the sign say?")  # fmt: skip
    assert p.returncode == 0, p.stderr
    out = json.loads(p.stdout)  # stdout is exactly one JSON object
    assert "NO PARKING" in out["answer"].upper()
    assert out["citations"] and not out["abstained"]
    assert all({"text", "supported", "evidence"} <= set(c) for c in out["claims"])
    assert any(c["supported"] for c in out["claims"])
    assert Path(out["trace"]).is_file() and Path(out["trace"]).parent == tmp_path / "traces"
    assert out["timings"]["total_s"] > 0 and out["model"] == "smollm2-llava"
    assert "smollm2-llava" in p.stderr  # the engine's description goes to stderr


@pytest.mark.parametrize(
    "make, message", [(None, "image not found"), (b"this is not an image", "not an image")]
)
def test_bad_image_is_one_line_and_nonzero(tmp_path, make, message):
    path = tmp_path / "x.png"
    if make is not None:
        path.write_bytes(make)
    p = ask("--image", str(path), "What is this?", timeout=120)
    assert p.returncode != 0 and p.stdout == ""
    lines = p.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0] and "Traceback" not in p.stderr
