"""The Gradio UI end to end: a real server on 127.0.0.1 (random free port) running the offline VLM
(smollm2-llava) with real OCR, driven with `gradio_client`, and looked at with headless Chromium.

The screenshot is kept as artifacts/ui_screenshot.png."""

from __future__ import annotations

import json
import shutil
import subprocess
import tempfile
from pathlib import Path

import numpy as np
import pytest
from gradio_client import Client, handle_file
from PIL import Image, ImageStat

from frontends.ui import AssistantPool, UIConfig, build_ui, close_ui, launch_ui
from tests.frontends_util import assistant, free_port, sign_png

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
# Outputs of the /chat endpoint, in order.
CHAT, BOX, EVIDENCE, CLAIMS, FIGURES, DOWNLOAD, CID = range(7)


@pytest.fixture(scope="module")
def ui_app(tmp_path_factory):
    traces = tmp_path_factory.mktemp("ui-traces")
    pool = AssistantPool(lambda name: assistant(name, traces, tools=("ocr", "color")), "smollm2-llava")
    cfg = UIConfig(port=free_port())
    demo = build_ui(pool, cfg)
    launch_ui(demo, cfg, block=False)
    yield f"http://127.0.0.1:{cfg.port}", demo
    close_ui(demo)


@pytest.fixture(scope="module")
def ui(ui_app):
    return ui_app[0]


@pytest.fixture(scope="module")
def images(tmp_path_factory) -> list[Path]:
    d = tmp_path_factory.mktemp("ui-img")
    return [
        sign_png(d, "open.png", "OPEN DAILY", 1),
        sign_png(d, "bread.png", "FRESH BREAD", 2),
        sign_png(d, "exit.png", "EXIT", 3),
    ]


@pytest.fixture(scope="module")
def first_turn(ui_app, images):
    """One browser-like session: the first question with an image, streamed; returns (client, updates)."""
    url, demo = ui_app
    old_style = set(Path(tempfile.gettempdir()).glob("trace-*"))  # where each update used to copy the trace
    client = Client(url, verbose=False)
    job = client.submit(
        {"text": "What does the sign say?", "files": [handle_file(images[0])]}, api_name="/chat"
    )
    updates = list(job)
    assert len(updates) > 3
    copies = [p for p in demo.trace_copies.root.rglob("*") if p.is_file()]
    assert len(copies) == 1, f"one trace copy per conversation, not per update: {copies}"
    assert set(Path(tempfile.gettempdir()).glob("trace-*")) == old_style
    return client, updates


def _reds(im) -> int:
    """Pixels of the highlight colour for cited evidence (allowing for lossy image encoding)."""
    a = np.asarray(im.convert("RGB")).astype(int)
    return int(((a[..., 0] > 200) & (a[..., 1] < 60) & (a[..., 2] < 100)).sum())


def _texts(messages: list[dict]) -> list[str]:
    return [p["text"] for m in messages for p in m["content"] if p.get("type") == "text"]


def _thoughts(messages: list[dict]) -> list[dict]:
    return [m for m in messages if m.get("metadata") and m["metadata"].get("title")]


def test_answer_streams_with_nested_tool_calls(first_turn):
    _, updates = first_turn
    final = updates[-1][CHAT]
    assert final[0]["role"] == "user" and final[0]["content"][0]["type"] == "file"
    assert _texts(final)[0] == "What does the sign say?"
    thoughts = _thoughts(final)
    parent = next(m for m in thoughts if m["metadata"]["id"] == "tools-1")
    calls = [m for m in thoughts if m["metadata"].get("parent_id") == "tools-1"]
    assert parent["metadata"]["status"] == "done" and calls
    assert calls[0]["metadata"]["title"].startswith("ocr · image 1")
    assert calls[0]["metadata"]["status"] == "done" and calls[0]["metadata"]["duration"] > 0
    assert (
        "**arguments:**" in calls[0]["content"][0]["text"]
        and "**evidence:** ocr:" in calls[0]["content"][0]["text"]
    )
    assert any(m["metadata"]["title"].startswith("Image budget") for m in thoughts)
    answer = final[-1]
    assert answer["role"] == "assistant" and not (answer.get("metadata") or {}).get("title")
    assert "OPEN DAILY" in answer["content"][0]["text"].upper()
    # streamed: the page saw the tool running (pending) before it finished, and more than one redraw
    assert len(updates) >= 3
    assert any(m["metadata"].get("status") == "pending" for u in updates[:-1] for m in _thoughts(u[CHAT]))


def test_the_draft_streams_collapsed_and_marked_never_in_the_answer_bubble(first_turn):
    """Issue 21, item 8: until the turn is checked, no untitled assistant message (the answer's bubble)
    exists; the model's tokens stream into a collapsed message titled as not verified."""
    _, updates = first_turn
    for u in updates[:-1]:
        bubbles = [
            m for m in u[CHAT] if m["role"] == "assistant" and not (m.get("metadata") or {}).get("title")
        ]
        assert not bubbles, bubbles
    streaming = [m for u in updates[:-1] for m in _thoughts(u[CHAT]) if m["metadata"]["id"] == "draft-1"]
    assert streaming and streaming[0]["metadata"]["title"] == "Model's draft (not verified yet)"


def test_evidence_claims_figures_and_trace(first_turn, images):
    _, updates = first_turn
    final = updates[-1]
    evidence = Image.open(final[EVIDENCE]).convert("RGB")
    assert evidence.size == Image.open(images[0]).size
    reds = _reds(evidence)
    assert reds > 100  # the cited OCR box is drawn in red
    assert "✓ verified" in final[CLAIMS] and "`ocr:" in final[CLAIMS]
    for label in ("image tokens", "time to first token", "tool cache hits", "total"):
        assert label in final[FIGURES]
    trace = [json.loads(line) for line in Path(final[DOWNLOAD]).read_text().splitlines()]
    assert [t["turn"] for t in trace] == [1] and trace[0]["question"] == "What does the sign say?"
    assert trace[0]["images"][0]["source"] == "open.png"  # the upload's name, not Gradio's temp path
    assert trace[0]["conversation_id"] in final[CID]


def test_conversation_continues_with_several_images_per_message(first_turn, images):
    client, _ = first_turn
    out = client.predict(
        {"text": "What do these two signs say?", "files": [handle_file(images[1]), handle_file(images[2])]},
        api_name="/chat",
    )
    messages = out[CHAT]
    assert (
        sum(1 for m in messages if m["content"][0].get("type") == "file") == 3
    )  # images across the conversation
    titles = [
        m["metadata"]["title"] for m in _thoughts(messages) if m["metadata"].get("parent_id") == "tools-2"
    ]
    assert any("image 2" in t for t in titles) and any("image 3" in t for t in titles)
    trace = [json.loads(line) for line in Path(out[DOWNLOAD]).read_text().splitlines()]
    assert [t["turn"] for t in trace] == [1, 2] and len({t["conversation_id"] for t in trace}) == 1


def test_sessions_are_separate_and_tools_can_be_turned_off(ui, images, first_turn):
    other = Client(ui, verbose=False)
    out = other.predict(
        {"text": "What does the sign say?", "files": [handle_file(images[0])]},
        "smollm2-llava",
        [],
        0,
        api_name="/chat",
    )
    assert not [m for m in _thoughts(out[CHAT]) if m["metadata"].get("parent_id")]  # no tool calls
    assert len([m for m in out[CHAT] if m["role"] == "user"]) == 2  # only this session's messages
    assert out[CID] != first_turn[1][-1][CID]


def test_new_conversation_switches_model_and_says_which(ui):
    client = Client(ui, verbose=False)
    chat, evidence, claims, figures, download, cid, banner = client.predict(
        "smollm2", ["ocr"], 0, api_name="/new_conversation"
    )
    assert chat == [] and evidence is None and download is None
    assert "Offline stand-in model" in banner and "smollm2 (text" in banner
    assert cid.startswith("conversation `")


def _chromium(url: str, out: Path, *extra: str) -> subprocess.CompletedProcess:
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]
    flags += ["--disable-component-update", "--disable-sync", "--no-first-run", "--virtual-time-budget=15000"]
    with tempfile.TemporaryDirectory() as profile:
        cmd = [
            CHROMIUM,
            *flags,
            f"--user-data-dir={profile}",
            f"--screenshot={out}",
            "--window-size=1280,1600",
            *extra,
            url,
        ]
        return subprocess.run(cmd, capture_output=True, text=True, timeout=180)


@pytest.mark.skipif(
    not Path(CHROMIUM).exists(),
    reason="chromium is not installed (`bash scripts/setup.sh --test` installs it)",
)
def test_screenshot_of_a_conversation_with_an_image(ui, first_turn, tmp_path):
    cid = first_turn[1][-1][CID].split("`")[1]
    shot = ROOT / "artifacts" / "ui_screenshot.png"
    shot.parent.mkdir(exist_ok=True)
    netlog = tmp_path / "net.json"
    r = _chromium(f"{ui}/?c={cid}", shot, f"--log-net-log={netlog}")
    assert r.returncode == 0 and shot.exists(), r.stderr[-2000:]
    im = Image.open(shot).convert("RGB")
    assert im.size == (1280, 1600)
    assert max(ImageStat.Stat(im.convert("L")).var[0], 0) > 500  # not blank: text, boxes and the photo
    reds = _reds(im)
    assert reds > 50  # the evidence view with the cited box made it onto the page
    # Nothing the page asked for came from anywhere but this server (no CDN, no web fonts).
    log = json.loads(netlog.read_text())
    start = log["constants"]["logEventTypes"]["URL_REQUEST_START_JOB"]
    starts = [e.get("params", {}) for e in log["events"] if e["type"] == start]
    page = [p["url"] for p in starts if p.get("initiator") == ui]
    assert page and all(u.startswith(ui + "/") for u in page), [u for u in page if not u.startswith(ui)]


def test_launch_py_with_no_subcommand_starts_the_ui_on_loopback(tmp_path):
    import os
    import sys
    import time

    import httpx

    port = free_port()
    cmd = [
        sys.executable,
        "launch.py",
        "--port",
        str(port),
        "--model",
        "smollm2",
        "--device",
        "cpu",
        "--tools",
        "ocr",
    ]
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "GROUNDED_VLM_HOME": os.environ.get("GROUNDED_VLM_HOME", ""),
    }
    env = {k: v for k, v in env.items() if v}
    log = tmp_path / "ui.log"
    with open(log, "w") as out:
        proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
    try:
        deadline = time.time() + 300
        while True:
            assert proc.poll() is None, log.read_text()[-2000:]
            assert time.time() < deadline, log.read_text()[-2000:]
            try:
                page = httpx.get(f"http://127.0.0.1:{port}/", timeout=2)
                if page.status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.5)
        assert (
            httpx.get(f"http://127.0.0.1:{port}/config", timeout=10).json()["title"]
            == "Grounded VLM assistant"
        )
        text = log.read_text()
        assert "model: smollm2" in text and f"UI on http://127.0.0.1:{port}" in text
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def test_closing_the_app_removes_uploads_pictures_and_trace_copies(tmp_path, images):
    pool = AssistantPool(lambda name: assistant(name, tmp_path / "traces", tools=("ocr",)), "smollm2-llava")
    cfg = UIConfig(port=free_port())
    demo = build_ui(pool, cfg)
    launch_ui(demo, cfg, block=False)
    try:
        client = Client(f"http://127.0.0.1:{cfg.port}", verbose=False)
        out = client.predict(
            {"text": "What does it say?", "files": [handle_file(images[2])]}, api_name="/chat"
        )
        assert out[DOWNLOAD]
        made = [Path(f) for fs in demo.temp_file_sets for f in fs]
        assert any(p.name == "exit.png" for p in made)  # the upload, kept by Gradio while the app runs
        assert any(p.suffix == ".jsonl" for p in made) and all(p.exists() for p in made)
    finally:
        close_ui(demo)
    assert not [p for p in made if p.exists()], "Gradio temp files left after shutdown"
    assert not demo.trace_copies.root.exists()
