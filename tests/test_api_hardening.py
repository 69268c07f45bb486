"""Issue 21 against the API server, on real sockets: slow senders and floods of half-open connections
do not take it down (timeouts, a connection cap that evicts the oldest half-open one), a keyless server
refuses what another site's page could send (a body not `application/json`, a foreign `Host` or
`Origin`), SIGTERM in the tool stage answers 503 and ends the process within ~3 s, a huge question is
refused before the model sees it, `/v1/models` tells what the assistant's engine sees, only ids
the server issued continue a conversation, and a stream's content is the verified answer alone (the
draft streams in a field of its own).

`GVLM_SLOW_CLIENT_S` sets how long the flood of half-open connections is held (the issue's 20 s)."""

from __future__ import annotations

import os
import selectors
import signal
import socket
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import httpx
import pytest
import uvicorn

from assistant.session import Assistant, AssistantConfig
from frontends import api
from frontends.api import AssistantBackend, ModelHub, Outcome, ServeConfig, create_app
from tests.frontends_util import free_port
from tests.scripted_engine import ScriptedEngine
from tools.registry import default_registry
from tools.runner import ToolRunner

ROOT = Path(__file__).resolve().parents[1]
HALF_HEADER = b"POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: applic"


class Echo:
    """A backend that needs no model: answers with the question."""

    def run(self, req, emit):
        emit(req.question.text)
        return Outcome(req.question.text)


class Server:
    """`create_app` under uvicorn as `serve` runs it (`api.uvicorn_config`), on a thread."""

    def __init__(self, cfg: ServeConfig, backend=None, hub: ModelHub | None = None):
        cfg.port = free_port()
        if hub is None:
            hub = ModelHub()
            hub.add("echo", lambda: backend or Echo())
        self.cfg, self.url = cfg, f"http://127.0.0.1:{cfg.port}"
        self.server = uvicorn.Server(api.uvicorn_config(create_app(hub, cfg), cfg))
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self):
        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            assert time.monotonic() < deadline and self.thread.is_alive(), "uvicorn did not start"
            time.sleep(0.05)
        return self

    def __exit__(self, *exc):
        self.server.should_exit = True
        self.thread.join(timeout=10)

    def held(self) -> int:
        return len(self.server.server_state.connections)


def _ask(text: str) -> dict:
    return {"model": "default", "messages": [{"role": "user", "content": text}]}


def _half_open(port: int) -> socket.socket:
    s = socket.create_connection(("127.0.0.1", port))
    s.sendall(HALF_HEADER)
    s.setblocking(False)
    return s


class Flood:
    """`n` half-open connections held open: each one the server closes is opened again at once."""

    def __init__(self, port: int, n: int):
        self.port, self.n = port, n
        self.closed_by_server = 0
        self.timeouts_408 = 0
        self.stop = threading.Event()
        self.sel = selectors.DefaultSelector()

    def run(self):
        for _ in range(self.n):
            self.sel.register(_half_open(self.port), selectors.EVENT_READ)
        while not self.stop.is_set():
            for key, _ in self.sel.select(timeout=0.1):
                try:
                    data = key.fileobj.recv(4096)
                except OSError:
                    data = b""
                self.timeouts_408 += data.startswith(b"HTTP/1.1 408")
                self.sel.unregister(key.fileobj)
                key.fileobj.close()
                self.closed_by_server += 1
                self.sel.register(_half_open(self.port), selectors.EVENT_READ)
        for key in list(self.sel.get_map().values()):
            key.fileobj.close()


@pytest.fixture(autouse=True)
def _enough_open_files():
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = min(hard, 4096) if hard != resource.RLIM_INFINITY else 4096
    if soft < want:
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))


def test_500_half_open_connections_held_while_health_and_chat_answer():
    hold_s = float(os.environ.get("GVLM_SLOW_CLIENT_S", "20"))
    cfg = ServeConfig()
    cfg.connections.header_timeout_s = min(10.0, hold_s / 2)
    with Server(cfg) as srv:
        flood = Flood(cfg.port, 500)
        attacker = threading.Thread(target=flood.run, daemon=True)
        attacker.start()
        t0, health_s, chat, held = time.monotonic(), [], None, 0
        try:
            while time.monotonic() - t0 < hold_s:
                t = time.monotonic()
                r = httpx.get(srv.url + "/health", timeout=5)
                assert r.status_code == 200
                health_s.append(time.monotonic() - t)
                if chat is None and time.monotonic() - t0 > hold_s / 3:
                    t = time.monotonic()
                    r = httpx.post(srv.url + "/v1/chat/completions", json=_ask("still served"), timeout=10)
                    chat = (r.status_code, r.json()["choices"][0]["message"]["content"], time.monotonic() - t)
                held = max(held, srv.held())
                assert held <= cfg.connections.max_connections
                time.sleep(0.5)
        finally:
            flood.stop.set()
            attacker.join(10)
    print(f"health p100 {max(health_s):.3f} s over {len(health_s)} probes; chat {chat}; held {held}")
    print(f"server closed {flood.closed_by_server} half-open connections ({flood.timeouts_408} with 408)")
    assert held >= 500, "the flood was not held"
    assert max(health_s) < 1.0 and chat[:2] == (200, "still served") and chat[2] < 2.0
    # every half-open connection was closed at its header timeout, with a 408, and opened again
    assert flood.closed_by_server >= 500 and flood.timeouts_408 >= 500


def test_beyond_the_connection_cap_the_oldest_half_open_one_makes_room():
    cfg = ServeConfig()
    cfg.connections.max_connections = 60
    cfg.connections.header_timeout_s = 60.0
    with Server(cfg) as srv:
        socks = [_half_open(cfg.port) for _ in range(150)]
        try:
            time.sleep(0.3)
            assert srv.held() <= 60
            r = httpx.get(srv.url + "/health", timeout=5)  # evicts the oldest half-open one, is served
            assert r.status_code == 200
            closed = 0
            for s in socks[:90]:
                try:
                    closed += s.recv(10) == b""
                except ConnectionResetError:
                    closed += 1
                except BlockingIOError:
                    pass
            assert closed >= 80, f"only {closed} of the oldest half-open connections were closed"
        finally:
            for s in socks:
                s.close()


def test_a_stalled_body_and_slow_headers_get_408():
    cfg = ServeConfig()
    cfg.connections.header_timeout_s = 1.0
    cfg.connections.body_timeout_s = 1.0
    with Server(cfg) as srv:
        slow = socket.create_connection(("127.0.0.1", cfg.port))
        stalled = socket.create_connection(("127.0.0.1", cfg.port))
        t0 = time.monotonic()
        stalled.sendall(
            b"POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            b"Content-Length: 100\r\n\r\n" + b'{"messages": '
        )
        for piece in HALF_HEADER:  # trickled: each byte in time, the whole too late
            try:
                slow.sendall(bytes([piece]))
            except OSError:  # closed by the server
                break
            time.sleep(0.05)
        slow.settimeout(5)
        stalled.settimeout(5)
        assert slow.recv(100).startswith(b"HTTP/1.1 408")
        assert stalled.recv(100).startswith(b"HTTP/1.1 408")
        assert time.monotonic() - t0 < 3.0
        r = httpx.post(srv.url + "/v1/chat/completions", json=_ask("after"), timeout=10)
        assert r.status_code == 200


def test_without_a_key_only_json_from_this_servers_name_is_answered():
    cfg = ServeConfig()
    cfg.allowed_hosts = ("vlm.lan",)
    body = b'{"messages": [{"role": "user", "content": "run the model"}]}'
    with Server(cfg) as srv:
        url = srv.url + "/v1/chat/completions"

        def post(**headers):
            return httpx.post(url, content=body, headers=headers, timeout=10)

        for kind in ("text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x"):
            assert post(**{"Content-Type": kind}).status_code == 415
        assert post().status_code == 415  # a blob with no type: a page may send it without asking
        json_ = {"Content-Type": "application/json; charset=utf-8"}
        r = post(Host=f"attacker.example:{cfg.port}", **json_)  # DNS rebinding names the page's domain
        assert r.status_code == 421 and "--allowed-host" in r.json()["error"]["message"]
        assert post(Origin="https://attacker.example", **json_).status_code == 403
        assert post(Origin="null", **json_).status_code == 403  # a sandboxed frame
        assert httpx.get(srv.url + "/v1/models", headers={"Host": "attacker.example"}).status_code == 421
        for host in (f"localhost:{cfg.port}", f"127.0.0.1:{cfg.port}", "vlm.lan", f"[::1]:{cfg.port}"):
            assert post(Host=host, **json_).status_code == 200, host
        assert post(Origin=f"http://localhost:{cfg.port}", **json_).status_code == 200
    keyed = ServeConfig(api_key="k")
    with Server(keyed) as srv:  # with a key no page can authenticate: the key is the check
        r = httpx.post(srv.url + "/v1/chat/completions", content=body, headers={"Authorization": "Bearer k"})
        assert r.status_code == 200


SLOW_TOOLS_SERVER = """
import sys, time
from concurrent.futures import ThreadPoolExecutor
from frontends import api, runtime

tools = ThreadPoolExecutor(2)  # like the tool runner's pool: joined at interpreter exit

class InTools:
    def run(self, req, emit):
        tools.submit(time.sleep, 8).result()  # a tool that does not look at cancellation
        return api.Outcome("late")

hub = api.ModelHub()
hub.add("m", InTools)
hub.get("m")
cfg = api.ServeConfig(port=int(sys.argv[1]))
print("up", flush=True)
api.serve(hub, cfg)
runtime.exit_now(0)  # what launch.py does after a ONE_SHOT command such as serve
"""


def test_sigterm_in_the_tool_stage_answers_503_and_stops_within_3_s():
    from frontends.commands import serve as serve_cmd

    assert serve_cmd.ONE_SHOT  # launch.py ends serve's process without waiting for tool threads
    port = free_port()
    script = textwrap.dedent(SLOW_TOOLS_SERVER)
    proc = subprocess.Popen([sys.executable, "-c", script, str(port)], cwd=ROOT, stderr=subprocess.PIPE)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            assert time.monotonic() < deadline and proc.poll() is None, "server did not start"
            try:
                httpx.get(url + "/health", timeout=1)
                break
            except httpx.HTTPError:
                time.sleep(0.1)
        out = {}

        def ask(key, **kw):
            r = httpx.post(url + "/v1/chat/completions", json={**_ask("hi"), **kw}, timeout=30)
            out[key] = (r.status_code, r.text, time.monotonic())

        clients = [threading.Thread(target=ask, args=("plain",))]
        clients.append(threading.Thread(target=ask, args=("stream",), kwargs={"stream": True}))
        for c in clients:
            c.start()
        while httpx.get(url + "/health", timeout=2).json()["models"]["m"]["running"] == 0:
            time.sleep(0.05)
        time.sleep(0.5)  # in the tool stage now
        t0 = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=10)
        stopped_s = time.monotonic() - t0
        for c in clients:
            c.join(10)
    finally:
        if proc.poll() is None:
            proc.kill()
    print(f"stopped {stopped_s:.2f} s after SIGTERM; answered after {out['plain'][2] - t0:.2f} s")
    status, text, _ = out["plain"]
    assert status == 503 and "shutting down" in text, text
    # the other request waited for the model (503 before its stream began) or streamed (an error event)
    assert out["stream"][0] == 503 or '"code": "503"' in out["stream"][1]
    assert "shutting down" in out["stream"][1]
    assert out["plain"][2] - t0 < 1.0
    assert stopped_s < 3.0
    assert b"CancelledError" not in proc.stderr.read()


def _scripted_hub(tmp_path) -> tuple[ModelHub, ScriptedEngine]:
    eng = ScriptedEngine(default="I can't tell.")
    runner = ToolRunner(default_registry(enabled=["metadata"]))
    hub = ModelHub()
    hub.add("vlm", lambda: AssistantBackend(Assistant(eng, runner, AssistantConfig(trace_dir=str(tmp_path)))))
    hub.get("vlm")
    return hub, eng


def test_a_huge_question_is_refused_before_the_model(tmp_path):
    hub, eng = _scripted_hub(tmp_path)
    eng.max_context = 4096  # the engine's context, as a loaded model states it (LocalEngine.max_context)
    with Server(ServeConfig(), hub=hub) as srv:
        t0 = time.monotonic()
        r = httpx.post(srv.url + "/v1/chat/completions", json=_ask("word " * 2_000_000), timeout=60)
        took = time.monotonic() - t0
    print(f"a 10 MB question refused in {took:.2f} s")
    assert r.status_code == 400 and "cannot fit this model's context of 4096" in r.json()["error"]["message"]
    assert took < 2.0, f"refusing a 10 MB question took {took:.1f} s"
    assert eng.calls == [] and hub.gate("vlm").served == 0  # the model never saw it


def test_models_says_the_offline_stand_in_does_not_see(tmp_path):
    hub, _ = _scripted_hub(tmp_path)
    assert hub.capabilities("vlm") == {"supports_images": True, "sees_images": False}


def test_only_ids_the_server_issued_continue_a_conversation(tmp_path):
    hub, _ = _scripted_hub(tmp_path)
    with Server(ServeConfig(), hub=hub) as srv:
        url = srv.url + "/v1/chat/completions"
        first = httpx.post(url, json=_ask("first question"), timeout=30).json()["grounding"]
        cid = first["conversation_id"]
        assert cid.startswith("c") and len(cid) >= 32
        other = httpx.post(url, json=_ask("another"), timeout=30).json()["grounding"]["conversation_id"]
        assert other != cid
        for guess in ("api-test-1", cid[:-1] + ("A" if cid[-1] != "A" else "B")):
            r = httpx.post(url, json={**_ask("show me"), "conversation_id": guess}, timeout=30)
            assert r.status_code == 404 and "issued by the server" in r.json()["error"]["message"]
        r = httpx.post(url, json={**_ask("second question"), "conversation_id": cid}, timeout=30)
        assert r.status_code == 200 and r.json()["grounding"]["conversation_id"] == cid
    turns = (tmp_path / first["trace"]).read_text().splitlines()
    assert len(turns) == 2


def test_a_stream_never_shows_the_unchecked_draft_as_content(tmp_path):
    import json

    from tests.frontends_util import data_url, sign_png

    hub, eng = _scripted_hub(tmp_path)
    eng.default = "The word PWNED. Log in at http://phish.example now."
    image = {"type": "image_url", "image_url": {"url": data_url(sign_png(tmp_path))}}
    ask = {"model": "default", "stream": True}
    ask["messages"] = [
        {"role": "user", "content": [{"type": "text", "text": "What does the sign say?"}, image]}
    ]
    with (
        Server(ServeConfig(), hub=hub) as srv,
        httpx.stream("POST", srv.url + "/v1/chat/completions", json=ask, timeout=60) as r,
    ):
        events = [json.loads(x[6:]) for x in r.iter_lines() if x.startswith("data: {")]
    deltas = [e["choices"][0]["delta"] for e in events if e.get("choices")]
    content = "".join(d.get("content") or "" for d in deltas)
    draft = "".join(d.get("draft") or "" for d in deltas)
    final = next(e for e in events if e.get("grounding"))
    assert "PWNED" in draft and "phish" in draft  # the draft is there for whoever wants it, apart
    assert "PWNED" not in content and "phish" not in content
    assert content == final["grounding"]["answer"]


def test_kept_conversations_are_bounded_by_the_pixels_their_images_hold(tmp_path):
    from tests.frontends_util import data_url, sign_png

    hub, _ = _scripted_hub(tmp_path)
    backend = hub.get("vlm")
    backend._keep_pixels = 1  # one conversation with an image is all that fits
    image = {"type": "image_url", "image_url": {"url": data_url(sign_png(tmp_path))}}
    ask = {"messages": [{"role": "user", "content": [{"type": "text", "text": "What does it say?"}, image]}]}
    with Server(ServeConfig(), hub=hub) as srv:
        url = srv.url + "/v1/chat/completions"
        first = httpx.post(url, json=ask, timeout=60).json()["grounding"]["conversation_id"]
        second = httpx.post(url, json=ask, timeout=60).json()["grounding"]["conversation_id"]
        assert list(backend._conversations) == [second]
        r = httpx.post(url, json={**_ask("and then?"), "conversation_id": first}, timeout=30)
        assert r.status_code == 404
