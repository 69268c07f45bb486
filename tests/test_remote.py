"""RemoteEngine: the assistant with a remote back end. The server is this project's own `serve --raw`
(a real subprocess on loopback, serving SmolLM2 the way vLLM would serve a model); tools, budget and
verification run locally."""

from __future__ import annotations

import base64
import io
import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from PIL import Image

from assistant.core import load_engine
from assistant.core.config import ModelConfig
from assistant.core.remote import RemoteEngine, normalize_base_url, to_openai_messages
from assistant.core.types import GenerationConfig, ImageInput
from tests.frontends_util import assistant, free_port, sign_png
from tools.errors import BackendError, BadInputError
from tools.images import ImageRef

ROOT = Path(__file__).resolve().parents[1]


def test_base_url_gets_v1_only_when_it_names_no_path():
    assert normalize_base_url("http://h:8000") == "http://h:8000/v1"
    assert normalize_base_url("http://h:8000/") == "http://h:8000/v1"
    assert normalize_base_url("https://h/openai/v1/") == "https://h/openai/v1"
    with pytest.raises(BadInputError):
        normalize_base_url("ftp://h")


def test_image_parts_become_data_urls_cropped_and_downscaled():
    ref = ImageRef.from_pil(Image.new("RGB", (400, 200), "blue"))
    images = [ImageInput(ref, crop=(100, 50, 300, 150)), ImageInput(ref, max_side=100)]
    msgs = [
        {"role": "system", "content": "sys"},
        {"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "a"}, {"type": "image"}]},
        {"role": "assistant", "content": [{"type": "text", "text": "only text"}]},
    ]
    out = to_openai_messages(msgs, images)
    assert out[0] == {"role": "system", "content": "sys"}
    assert out[2] == {"role": "assistant", "content": "only text"}
    parts = out[1]["content"]
    assert [p["type"] for p in parts] == ["image_url", "text", "image_url"]
    sizes = []
    for p in (parts[0], parts[2]):
        head, b64 = p["image_url"]["url"].split(",", 1)
        assert head == "data:image/png;base64"
        sizes.append(Image.open(io.BytesIO(base64.b64decode(b64))).size)
    assert sizes == [(200, 100), (100, 50)]
    with pytest.raises(BadInputError, match="images: 1"):
        to_openai_messages(msgs, images[:1])


def test_unreachable_server_is_a_clear_backend_error():
    eng = RemoteEngine(f"http://127.0.0.1:{free_port()}", model="m", timeout_s=5)
    with pytest.raises(BackendError, match="cannot reach"):
        list(eng.stream([{"role": "user", "content": "hi"}], [], GenerationConfig(max_new_tokens=2)))


@pytest.fixture(scope="module")
def raw_server(tmp_path_factory):
    """`launch.py serve --raw --model smollm2` as a real process on a free loopback port."""
    port = free_port()
    log = tmp_path_factory.mktemp("serve") / "serve.log"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    cmd = [
        sys.executable,
        "launch.py",
        "serve",
        "--raw",
        "--model",
        "smollm2",
        "--device",
        "cpu",
        "--port",
        str(port),
    ]
    with open(log, "w") as out:
        proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.time() + 300
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"serve exited with {proc.returncode}: {log.read_text()[-2000:]}")
            try:
                if httpx.get(url + "/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.time() > deadline:
                raise RuntimeError(f"serve did not start: {log.read_text()[-2000:]}")
            time.sleep(0.5)
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def test_engine_streams_from_the_server_with_stats(raw_server):
    eng = load_engine(
        ModelConfig(model=raw_server)
    )  # a URL model -> RemoteEngine; the model name is discovered
    assert isinstance(eng, RemoteEngine) and eng.model_id == "smollm2"
    assert "remote model smollm2" in eng.description
    stream = eng.stream(
        [{"role": "user", "content": "What is the capital of France?"}],
        [],
        GenerationConfig(max_new_tokens=10),
    )
    chunks = list(stream)
    assert len(chunks) > 1 and "".join(chunks) == stream.text
    assert "paris" in stream.text.lower()
    s = stream.stats
    assert s.tokens_in > 5 and 0 < s.tokens_out <= 10 and 0 < s.ttft_s <= s.total_s


def test_assistant_with_remote_backend_grounds_answers_locally(raw_server, tmp_path):
    remote = load_engine(ModelConfig(model=raw_server + "/v1#smollm2"))
    a = assistant("remote", tmp_path / "traces", tools=("ocr",), engine_obj=remote)
    sign = sign_png(tmp_path, text="FRESH BREAD")
    r = a.conversation().ask("What does the sign say?", [sign])
    assert "FRESH BREAD" in r.answer.upper()
    assert r.citations and all(c.startswith("ocr:") for c in r.citations)  # OCR ran here, not on the server
    assert [c.tool for c in r.tool_calls] == ["ocr"]
    assert r.tokens["tokens_out"] > 0  # the model's words came from the server
    assert not remote.supports_images  # the server said so: the image enters as its evidence text
    assert [b.choice for b in r.budget] == ["text"]
    turn = [line for line in Path(r.trace).read_text().splitlines() if line][-1]
    assert '"family": "remote"' in turn


def test_images_reach_the_remote_model_exactly_as_a_local_model_sees_them(tmp_path):
    """Through the server, the VLM gets the same pixels: same prompt size, same greedy answer as in-process."""
    from frontends.api import EngineBackend, ModelHub, create_app
    from tests.frontends_util import ServerThread, engine

    local = engine("smollm2-llava")
    hub = ModelHub()
    hub.add("vlm", lambda: EngineBackend(local, "vlm"))
    image = ImageInput(ImageRef.from_path(sign_png(tmp_path, text="EXIT")), crop=(0, 0, 320, 240))
    messages = [
        {"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "What is in the picture?"}]}
    ]
    gen = GenerationConfig(max_new_tokens=8)
    with ServerThread(create_app(hub)) as srv:
        remote = RemoteEngine(srv.url)
        via_server = remote.stream(messages, [image], gen)
        remote_text = "".join(via_server)
    in_process = local.stream(messages, [image], gen)
    local_text = "".join(in_process)
    assert remote_text == local_text and remote_text
    assert via_server.stats.tokens_in == in_process.stats.tokens_in > local.image_token_count(image)
