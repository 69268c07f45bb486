"""Issue 12 against the API: a client that leaves mid-stream frees the model, SIGTERM stops the server,
bodies and JSON that used to give 500s get clean 4xx lines, conversation ids cannot name files
outside the trace folder, the event loop stays free while a request decodes, and a full queue
answers 503 with Retry-After.

The first test runs `launch.py serve` for real as a subprocess on a loopback port (offline SmolLM2
LLaVA); the others use an in-process uvicorn with backends that need no model."""

from __future__ import annotations

import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest

from assistant.core.engine import Cancel, cancel_scope
from assistant.trace import TraceWriter
from frontends import api
from frontends.api import ModelHub, Outcome, ServeConfig, create_app
from frontends.openai_format import RequestLimits, parse_request
from tests.frontends_util import ServerThread, assistant, engine, free_port
from tools.errors import BadInputError

ROOT = Path(__file__).resolve().parents[1]


def _wait_health(url: str, proc: subprocess.Popen, timeout_s: float = 240) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"serve exited early:\n{proc.stderr.read().decode()[-3000:]}")
        try:
            if httpx.get(url + "/health", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise AssertionError("serve did not come up")


def _running(url: str) -> int:
    return sum(m["running"] for m in httpx.get(url + "/health", timeout=10).json()["models"].values())


LONG = {
    "model": "default",
    "stream": True,
    "messages": [{"role": "user", "content": "Write a long story about a dragon."}],
}


def test_disconnect_mid_stream_frees_the_model_and_sigterm_stops_the_server(tmp_path, local_model_dirs):
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    cmd = [sys.executable, "launch.py", "serve", "--model", "smollm2-llava", "--device", "cpu"]
    cmd += ["--port", str(port), "--tools", "ocr", "--max-new-tokens", "400", "--trace-dir", str(tmp_path)]
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        _wait_health(url, proc)
        # 1. Stream, read one token, leave.
        with httpx.Client(timeout=120) as c, c.stream("POST", url + "/v1/chat/completions", json=LONG) as r:
            assert r.status_code == 200
            for line in r.iter_lines():
                assert "[DONE]" not in line, "the answer ended before the client could leave mid-generation"
                if '"draft": "' in line and _running(url) == 1:  # the draft's tokens (issue 21)
                    break  # tokens arrive and the model is still generating: leave now
        left = time.monotonic()
        while _running(url) and time.monotonic() - left < 30:
            time.sleep(0.05)
        freed_s = time.monotonic() - left
        assert _running(url) == 0, "the model is still held after the client left"
        print(f"engine freed {freed_s:.2f} s after the client left")
        # 2. The next request is answered.
        short = {"model": "default", "messages": [{"role": "user", "content": "Say hi."}]}
        r = httpx.post(url + "/v1/chat/completions", json=short, timeout=180)
        assert r.status_code == 200 and r.json()["choices"][0]["message"]["content"]
        # 3. SIGTERM during a stream ends the process within a few seconds.
        with httpx.Client(timeout=120) as c, c.stream("POST", url + "/v1/chat/completions", json=LONG) as r:
            for line in r.iter_lines():
                if '"draft": "' in line:
                    break
            t0 = time.monotonic()
            proc.send_signal(signal.SIGTERM)
            proc.wait(timeout=30)
            stopped_s = time.monotonic() - t0
        print(f"SIGTERM -> exit in {stopped_s:.2f} s")
        assert stopped_s < 10
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


# ---- in-process server, no model -------------------------------------------------------------------


class Echo:
    """A backend that needs no model: answers with the question; waits on `gate` when given one."""

    def __init__(self, gate: threading.Event | None = None):
        self.gate = gate
        self.entered = threading.Event()

    def run(self, req, emit):
        self.entered.set()
        if self.gate is not None:
            self.gate.wait(30)
        emit(req.question.text)
        return Outcome(req.question.text)


@pytest.fixture
def echo_server():
    def make(cfg: ServeConfig | None = None, backend=None):
        hub = ModelHub()
        hub.add("echo", lambda: backend or Echo())
        return ServerThread(create_app(hub, cfg or ServeConfig()))

    return make


def test_chunked_body_over_the_limit_gets_413_not_500(echo_server):
    cfg = ServeConfig()
    cfg.limits.max_request_bytes = 1_000_000

    def body():  # no Content-Length: chunked transfer
        for _ in range(50):
            yield b"x" * 1_000_000

    with echo_server(cfg) as srv:
        r = httpx.post(
            srv.url + "/v1/chat/completions",
            content=body(),
            headers={"Content-Type": "application/json"},
            timeout=30,
        )
        assert r.status_code == 413 and "limit of 1000000 bytes" in r.json()["error"]["message"]
        ok = {"messages": [{"role": "user", "content": "still here"}]}
        r = httpx.post(srv.url + "/v1/chat/completions", json=ok, timeout=30)
        assert r.json()["choices"][0]["message"]["content"] == "still here"


def test_deeply_nested_json_gets_a_one_line_400(echo_server):
    with echo_server() as srv:
        for body in (b"[" * 100_000, b'{"messages": ' + b"[" * 100_000):
            r = httpx.post(
                srv.url + "/v1/chat/completions",
                content=body,
                headers={"Content-Type": "application/json"},
                timeout=30,
            )
            msg = r.json()["error"]["message"]
            assert r.status_code == 400 and "\n" not in msg and "deep" in msg


def test_conversation_id_cannot_leave_the_trace_folder(tmp_path):
    for bad in ("/tmp/x/name", "../../../../tmp/name", "a/b", ".hidden", "x" * 129, ""):
        body = {"messages": [{"role": "user", "content": "hi"}], "conversation_id": bad}
        with pytest.raises(BadInputError, match="conversation_id"):
            parse_request(body, RequestLimits())
        with pytest.raises(BadInputError, match="conversation id"):
            TraceWriter(tmp_path, bad)
    ok = parse_request(
        {"messages": [{"role": "user", "content": "hi"}], "conversation_id": "chat-2024.01_a"},
        RequestLimits(),
    )
    assert TraceWriter(tmp_path, ok.conversation_id).path.parent == tmp_path


def test_unknown_part_type_names_the_part_and_the_accepted_types():
    body = {
        "messages": [{"role": "user", "content": [{"type": "text", "text": "a"}, {"type": "input_audio"}]}]
    }
    with pytest.raises(BadInputError) as e:
        parse_request(body, RequestLimits())
    assert str(e.value).startswith("messages.0.content.1: part type 'input_audio'")
    assert "text, image_url" in str(e.value)


def test_health_answers_while_a_request_is_being_parsed(echo_server, monkeypatch):
    parsing, release = threading.Event(), threading.Event()
    real = api.fmt.parse_request
    threads = []

    def slow_parse(body, limits):
        threads.append(threading.current_thread().name)
        parsing.set()
        release.wait(30)  # stands for decoding big images
        return real(body, limits)

    monkeypatch.setattr(api.fmt, "parse_request", slow_parse)
    with echo_server() as srv:
        body = {"messages": [{"role": "user", "content": "hi"}]}
        done = []
        t = threading.Thread(
            target=lambda: done.append(httpx.post(srv.url + "/v1/chat/completions", json=body, timeout=60))
        )
        t.start()
        assert parsing.wait(30)
        t0 = time.monotonic()
        r = httpx.get(srv.url + "/health", timeout=10)  # would time out if parsing blocked the loop
        health_s = time.monotonic() - t0
        release.set()
        t.join(60)
    assert r.status_code == 200 and health_s < 5
    assert threads and threads[0].startswith("api-parse")
    assert done and done[0].json()["choices"][0]["message"]["content"] == "hi"


def test_a_full_queue_answers_503_with_retry_after_and_health_shows_it(echo_server):
    gate = threading.Event()
    backend = Echo(gate)
    cfg = ServeConfig(max_waiting=1, queue_timeout_s=60)
    with echo_server(cfg, backend) as srv:
        body = {"messages": [{"role": "user", "content": "one"}]}
        results = []

        def post():
            results.append(httpx.post(srv.url + "/v1/chat/completions", json=body, timeout=60))

        first = threading.Thread(target=post)
        first.start()
        assert backend.entered.wait(30)
        second = threading.Thread(target=post)
        second.start()
        deadline = time.monotonic() + 30
        while httpx.get(srv.url + "/health").json()["models"]["echo"]["waiting"] < 1:
            assert time.monotonic() < deadline
            time.sleep(0.02)
        health = httpx.get(srv.url + "/health").json()["models"]["echo"]
        assert health == {"running": 1, "waiting": 1, "max_waiting": 1}
        r = httpx.post(srv.url + "/v1/chat/completions", json=body, timeout=30)
        assert r.status_code == 503 and int(r.headers["retry-after"]) >= 1
        assert "busy" in r.json()["error"]["message"]
        gate.set()
        first.join(60)
        second.join(60)
    assert [x.status_code for x in results] == [200, 200]


def test_a_request_that_cannot_start_in_time_gets_503(echo_server):
    gate = threading.Event()
    backend = Echo(gate)
    with echo_server(ServeConfig(queue_timeout_s=0.5), backend) as srv:
        body = {"messages": [{"role": "user", "content": "one"}]}
        t = threading.Thread(
            target=lambda: httpx.post(srv.url + "/v1/chat/completions", json=body, timeout=60)
        )
        t.start()
        assert backend.entered.wait(30)
        r = httpx.post(srv.url + "/v1/chat/completions", json=body, timeout=30)
        gate.set()
        t.join(60)
    assert r.status_code == 503 and "could not start within 0.5 s" in r.json()["error"]["message"]
    assert r.headers.get("retry-after")


def test_api_key_from_env_or_file(tmp_path, monkeypatch):
    from frontends.commands.serve import API_KEY_ENV, api_key

    ns = type("A", (), {"api_key": "from-argv", "api_key_file": None})
    monkeypatch.delenv(API_KEY_ENV, raising=False)
    assert api_key(ns) == "from-argv"
    monkeypatch.setenv(API_KEY_ENV, "from-env")
    assert api_key(ns) == "from-env"
    (tmp_path / "key").write_text("from-file\n")
    ns.api_key_file = str(tmp_path / "key")
    assert api_key(ns) == "from-file"
    ns.api_key_file = str(tmp_path / "missing")
    with pytest.raises(BadInputError, match="cannot read --api-key-file"):
        api_key(ns)


def test_a_backend_whose_client_left_frees_the_engine_at_once(tmp_path, local_model_dirs):
    """The worker raises Cancelled from `emit` at the first token; before `run` returns, the engine
    must be free (the abandoned generator used to keep its lock until garbage collection)."""
    from frontends.api_backends import AssistantBackend, Cancelled

    eng = engine("smollm2")
    backend = AssistantBackend(assistant("smollm2", tmp_path, engine_obj=eng))
    req = parse_request({"messages": [{"role": "user", "content": "Write a long story."}]}, RequestLimits())

    def leave(_text, _field="content"):
        raise Cancelled

    with pytest.raises(Cancelled):
        backend.run(req, leave)
    assert eng._lock.acquire(timeout=1), "the engine is still held after the client left"
    eng._lock.release()


def test_engine_cancel_stops_a_generation_from_another_thread(local_model_dirs):
    from assistant.core.types import GenerationConfig

    eng = engine("smollm2")
    cancel = Cancel()
    got = []
    gen = GenerationConfig(max_new_tokens=200)
    msgs = [{"role": "user", "content": "Count from 1 to 100."}]
    with cancel_scope(cancel):
        stream = eng.stream(msgs, [], gen)
        for chunk in stream:
            got.append(chunk)
            if len(got) == 3:
                threading.Thread(target=cancel.set).start()
    assert stream.stopped == "cancelled" and stream.stats.tokens_out < 20
    assert eng._lock.acquire(timeout=1)  # free again
    eng._lock.release()
    # A reader that drops a stream half-way frees the engine at once, on any thread.
    stream = eng.stream(msgs, [], gen)
    it = iter(stream)
    next(it)
    del it
    assert eng._lock.acquire(timeout=1)
    eng._lock.release()
    # A deadline ends a generation that runs too long.
    with cancel_scope(Cancel(timeout_s=0.0)):
        stream = eng.generate(msgs, [], gen)
    assert stream.stopped == "timeout" and stream.stats.tokens_out <= 1


def test_a_generation_past_the_request_timeout_gets_504_and_the_gate_reopens(echo_server):
    gate = threading.Event()
    backend = Echo(gate)  # stands for a generation that never ends by itself
    with echo_server(ServeConfig(request_timeout_s=0.2), backend) as srv:
        body = {"messages": [{"role": "user", "content": "one"}]}
        r = httpx.post(srv.url + "/v1/chat/completions", json=body, timeout=60)
        assert r.status_code == 504 and "took longer than 0.2 s" in r.json()["error"]["message"]
        gate.set()  # the stuck worker finishes; the model is free again
        deadline = time.monotonic() + 30
        while httpx.get(srv.url + "/health").json()["models"]["echo"]["running"]:
            assert time.monotonic() < deadline
            time.sleep(0.02)


def test_load_bench_counts_own_answers_and_leaks():
    from bench.load_bench import _judge, sign

    texts = [sign(i)[:2] for i in range(3)]
    assert len({n for _, n in texts}) == 3 and all(n in t for t, n in texts)
    results = [
        {"i": 0, "status": 200, "answer": f'It says "{texts[0][0]}"', "evidence": texts[0][0]},
        {"i": 1, "status": 200, "answer": f"It says {texts[2][1]}", "evidence": texts[1][0]},  # cross-talk
        {"i": 2, "status": 503},
    ]
    _judge(results, [n for _, n in texts])
    assert (results[0]["own_answer"], results[0]["leaked"]) == (True, [])
    assert (results[1]["own_answer"], results[1]["own_evidence"], results[1]["leaked"]) == (
        False,
        True,
        [texts[2][1]],
    )
