"""Batch and index on Ray: a local cluster on 2 CPUs, started once for the module; `batch --ray` killed with
SIGKILL resumes with every row exactly once and gives the answers `batch` gives; `index --ray` makes the
index a one-machine run makes."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from assistant.search.indexer import IndexConfig, index_folder
from assistant.search.ray_index import ray_rows
from assistant.search.store import IndexStore
from tests.frontends_util import sign_png

ray = pytest.importorskip("ray")
ROOT = Path(__file__).resolve().parents[1]
COMPARED = ("id", "answer", "citations", "abstained", "status", "error")


@pytest.fixture(scope="module")
def cluster():
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, logging_level="error")
    yield ray.get_runtime_context().gcs_address
    ray.shutdown()


def _rows(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def test_batch_on_ray_killed_resumes_once_each_and_answers_as_batch(tmp_path, cluster):
    images = tmp_path / "imgs"
    images.mkdir()
    texts = ["FRESH BREAD", "NO PARKING"]
    for i, t in enumerate(texts):
        sign_png(images, f"s{i}.png", text=t, seed=i)
    asked = ["What does the sign say?", "What is written on it?"]
    qs = [
        {"id": f"q{i}{k}", "image": f"s{i}.png", "question": q} for i in range(2) for k, q in enumerate(asked)
    ]
    qs.append({"id": "missing", "image": "nope.png", "question": "What does the sign say?"})
    (tmp_path / "q.jsonl").write_text("".join(json.dumps(q) + "\n" for q in qs))
    common = [str(tmp_path / "q.jsonl"), "--images", str(images), "--model", "smollm2", "--device", "cpu"]
    common += ["--tools", "ocr", "--max-new-tokens", "8", "--no-progress", "--json"]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    launch = [sys.executable, "launch.py", "batch"]

    out = tmp_path / "ray.jsonl"
    on_ray = [*launch, *common, "--out", str(out), "--workers", "1", "--ray", cluster]
    proc = subprocess.Popen(on_ray, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    plain = subprocess.run(
        [*launch, *common, "--out", str(tmp_path / "plain.jsonl")],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
    )
    assert plain.returncode == 0, plain.stderr[-2000:]
    deadline = time.time() + 300
    while not (out.exists() and out.read_text().count("\n") >= 1):
        assert proc.poll() is None, proc.stderr.read().decode()[-3000:]
        assert time.time() < deadline, "no row written in time"
        time.sleep(0.1)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    done = out.read_bytes().count(b"\n")
    assert 1 <= done < len(qs)

    again = subprocess.run(on_ray, cwd=ROOT, env=env, capture_output=True, text=True, timeout=400)
    assert again.returncode == 0, again.stderr[-3000:]
    summary = json.loads(again.stdout)
    assert summary["skipped"] == done and summary["ran"] == len(qs) - done and summary["total"] == len(qs)
    rows = _rows(out)
    assert sorted(r["id"] for r in rows) == sorted(q["id"] for q in qs)  # each once, none lost
    by_id = {r["id"]: {k: r.get(k) for k in COMPARED} for r in rows}
    plain_rows = {r["id"]: {k: r.get(k) for k in COMPARED} for r in _rows(tmp_path / "plain.jsonl")}
    assert by_id == plain_rows
    assert "FRESH BREAD" in by_id["q00"]["answer"].upper() and "image not found" in by_id["missing"]["error"]


def test_index_on_ray_makes_the_index_one_machine_makes(tmp_path, cluster):
    images = tmp_path / "imgs"
    images.mkdir()
    for i, t in enumerate(["HOTEL", "TAXI RANK"]):
        sign_png(images, f"s{i}.png", text=t, seed=20 + i)
    cfg = IndexConfig(tools=["ocr", "color", "metadata"])
    local = IndexStore(tmp_path / "local.sqlite")
    index_folder(images, local, cfg, progress=False)
    on_ray = IndexStore(tmp_path / "ray.sqlite")
    summary = index_folder(
        images, on_ray, cfg, progress=False, rows=lambda work, keys: ray_rows(work, cfg, cluster, workers=1)
    )
    assert summary.indexed == 2 and summary.images == 2 and not summary.errors
    for sha in local.tools_of():
        a, b = local.doc(sha), on_ray.doc(sha)
        assert [(e.id, e.text, e.box) for e in a.evidence] == [(e.id, e.text, e.box) for e in b.evidence]
        assert a.tools == b.tools
    assert (
        index_folder(images, on_ray, cfg, progress=False, rows=lambda w, k: ray_rows(w, cfg, cluster)).indexed
        == 0
    )
    local.close()
    on_ray.close()
