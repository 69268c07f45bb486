"""The OpenAI-compatible API: request checking without a server, then the official `openai` client
against a real uvicorn server on loopback running the real assistant (SmolLM2, real OCR)."""

from __future__ import annotations

import base64
import io
import json
from pathlib import Path

import httpx
import openai
import pytest
from PIL import Image

from frontends.api import AssistantBackend, EngineBackend, ModelHub, ServeConfig, create_app
from frontends.openai_format import RequestLimits, parse_request
from tests.frontends_util import ServerThread, assistant, data_url, engine, sign_png
from tools.errors import BadInputError

JSON = {"Content-Type": "application/json"}


def _png_url(size=(8, 8), colour="red") -> str:
    buf = io.BytesIO()
    Image.new("RGB", size, colour).save(buf, "PNG")
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()


def _user(*parts) -> dict:
    return {"model": "default", "messages": [{"role": "user", "content": list(parts)}]}


# ---- request parsing (no server) -------------------------------------------------------------------


def test_parse_text_and_images_in_order():
    req = parse_request(
        _user(
            {"type": "text", "text": "compare "},
            {"type": "image_url", "image_url": {"url": _png_url((8, 8))}},
            {"type": "text", "text": "and"},
            {"type": "image_url", "image_url": _png_url((16, 4))},  # bare-string form some clients send
        ),
        RequestLimits(),
    )
    q = req.question
    assert q.text == "compare and"
    assert [im.size for im in q.images] == [(8, 8), (16, 4)]
    assert [p["type"] for p in q.parts] == ["text", "image", "text", "image"]


def test_parse_keeps_history_and_options():
    body = {
        "model": "m",
        "messages": [
            {"role": "developer", "content": "be brief"},
            {"role": "user", "content": "hi"},
            {"role": "assistant", "content": "hello"},
            {"role": "user", "content": "and now?"},
        ],
        "max_tokens": 20,
        "temperature": 0.5,
        "stop": "END",
        "stream": True,
        "stream_options": {"include_usage": True},
        "conversation_id": "abc",
    }
    req = parse_request(json.dumps(body).encode(), RequestLimits())
    assert [t.role for t in req.turns] == ["system", "user", "assistant", "user"]
    assert req.question.text == "and now?"
    assert (req.max_tokens, req.temperature, req.stop, req.stream, req.include_usage) == (
        20,
        0.5,
        ["END"],
        True,
        True,
    )
    assert req.conversation_id == "abc"


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (
            _user({"type": "image_url", "image_url": {"url": "https://example.com/a.png"}}),
            "remote image URLs are refused",
        ),
        (
            _user({"type": "image_url", "image_url": {"url": "file:///etc/passwd"}}),
            "unsupported image URL scheme",
        ),
        (_user({"type": "image_url", "image_url": {"url": "data:text/plain;base64,aGk="}}), "not an image"),
        (_user({"type": "image_url", "image_url": {"url": "data:image/png;base64,@@@"}}), "not valid base64"),
        (
            _user({"type": "image_url", "image_url": {"url": "data:image/png;base64,aGVsbG8="}}),
            "not an image",
        ),
        (_user({"type": "input_audio", "input_audio": {}}), "messages.0.content"),
        ({"messages": []}, "messages"),
        ({"messages": [{"role": "system", "content": "x"}]}, "no user message"),
        ({"messages": [{"role": "user", "content": "x"}], "max_tokens": 10**6}, "limit"),
        ({"messages": [{"role": "user", "content": "x"}], "n": 2}, "n"),
    ],
)
def test_parse_refuses_bad_requests_with_a_reason(body, message):
    with pytest.raises(BadInputError, match=message):
        parse_request(body, RequestLimits())


def test_parse_limits_images_and_bytes():
    many = _user(*[{"type": "image_url", "image_url": {"url": _png_url()}} for _ in range(3)])
    with pytest.raises(BadInputError, match="too many images"):
        parse_request(many, RequestLimits(max_images=2))
    with pytest.raises(BadInputError, match="limit"):
        parse_request(json.dumps(many).encode(), RequestLimits(max_request_bytes=100))


def test_remote_image_urls_are_fetched_only_when_allowed(tmp_path):
    import functools
    import http.server
    import threading

    Image.new("RGB", (12, 7), "green").save(tmp_path / "g.png")
    (tmp_path / "big.png").write_bytes(b"x" * 5000)
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(tmp_path))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{httpd.server_address[1]}"
    try:
        body = _user({"type": "image_url", "image_url": {"url": base + "/g.png"}})
        with pytest.raises(BadInputError, match="refused"):
            parse_request(body, RequestLimits())
        req = parse_request(body, RequestLimits(allow_remote_images=True))
        assert req.images[0].size == (12, 7)
        with pytest.raises(BadInputError, match="HTTP 404"):
            parse_request(
                _user({"type": "image_url", "image_url": {"url": base + "/none.png"}}),
                RequestLimits(allow_remote_images=True),
            )
        with pytest.raises(BadInputError, match="larger than the limit"):
            limits = RequestLimits(allow_remote_images=True, max_image_bytes=1000)
            parse_request(_user({"type": "image_url", "image_url": {"url": base + "/big.png"}}), limits)
    finally:
        httpd.shutdown()


# ---- the real server --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    traces = tmp_path_factory.mktemp("api-traces")
    hub = ModelHub()
    hub.add("smollm2", lambda: AssistantBackend(assistant("smollm2", traces), "smollm2"))
    hub.add("smollm2-raw", lambda: EngineBackend(engine("smollm2"), "smollm2-raw"))
    cfg = ServeConfig()
    cfg.limits.max_request_bytes = 2_000_000
    with ServerThread(create_app(hub, cfg)) as srv:
        srv.traces = traces
        yield srv


@pytest.fixture(scope="module")
def client(server):
    return openai.OpenAI(base_url=server.url + "/v1", api_key="unused", max_retries=0, timeout=600)


@pytest.fixture(scope="module")
def sign(tmp_path_factory) -> Path:
    return sign_png(tmp_path_factory.mktemp("api-img"), text="OPEN DAILY")


def _ask(sign: Path, text="What does the sign say?") -> list[dict]:
    return [
        {
            "role": "user",
            "content": [
                {"type": "text", "text": text},
                {"type": "image_url", "image_url": {"url": data_url(sign)}},
            ],
        }
    ]


def test_models_lists_served_models_and_default(client):
    assert [m.id for m in client.models.list()] == ["smollm2", "smollm2-raw", "default"]


def test_grounded_completion_carries_citations_claims_and_trace(client, server, sign):
    r = client.chat.completions.create(model="default", messages=_ask(sign))
    g = r.model_extra["grounding"]
    text = r.choices[0].message.content
    assert text == g["answer"] and "OPEN DAILY" in text.upper()
    assert g["citations"] and all(c.startswith("ocr:") for c in g["citations"])
    assert any(c["supported"] for c in g["claims"])
    cited = {e["id"]: e for e in g["evidence"] if e["id"] in g["citations"]}
    assert cited and all(e["box"] for e in cited.values())
    assert [c["tool"] for c in g["tool_calls"]] == ["ocr"]
    trace = server.traces / g["trace"]  # a file name in the server's trace folder, not a server path
    assert Path(g["trace"]).name == g["trace"] and str(server.traces) not in json.dumps(g)
    assert trace.is_file() and json.loads(trace.read_text().splitlines()[-1])["turn"] == 1
    assert r.model == "smollm2" and r.usage.completion_tokens > 0


def test_streaming_sends_deltas_then_grounding_and_usage(client, sign):
    stream = client.chat.completions.create(
        model="smollm2", messages=_ask(sign), stream=True, stream_options={"include_usage": True}
    )
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    final = [c for c in chunks if c.choices and c.choices[0].finish_reason]
    assert len(final) == 1 and final[0].model_extra["grounding"]["citations"]
    assert final[0].model_extra["grounding"]["answer"] == text  # the content is the verified answer alone
    drafts = [c for c in chunks if c.choices and (c.choices[0].delta.model_extra or {}).get("draft")]
    assert len(drafts) > 1  # the draft really streamed, in its own field
    assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens > 0


def test_raw_model_answers_without_tools(client):
    r = client.chat.completions.create(
        model="smollm2-raw",
        messages=[{"role": "user", "content": "What is the capital of France?"}],
        max_tokens=12,
    )
    assert "paris" in r.choices[0].message.content.lower()
    assert "grounding" not in (r.model_extra or {})
    assert 0 < r.usage.completion_tokens <= 12


def test_errors_come_back_as_openai_errors(client, server, sign):
    with pytest.raises(openai.NotFoundError, match="not served here"):
        client.chat.completions.create(model="gpt-9", messages=_ask(sign))
    remote = [
        {"role": "user", "content": [{"type": "image_url", "image_url": {"url": "http://127.0.0.1:1/x.png"}}]}
    ]
    with pytest.raises(openai.BadRequestError, match="--allow-remote-images"):
        client.chat.completions.create(model="default", messages=remote)
    big = {"model": "default", "messages": [{"role": "user", "content": "x" * 2_100_000}]}
    r = httpx.post(server.url + "/v1/chat/completions", json=big, timeout=30)
    assert r.status_code == 413 and "limit" in r.json()["error"]["message"]
    r = httpx.post(server.url + "/v1/chat/completions", content=b"{not json", headers=JSON, timeout=30)
    assert r.status_code == 400 and "JSON" in r.json()["error"]["message"]


def test_a_conversation_id_naming_a_path_is_refused_and_writes_nothing(client, server, sign, tmp_path):
    for bad in (str(tmp_path / "escape"), "../../../../" + str(tmp_path / "escape")[1:]):
        with pytest.raises(openai.BadRequestError, match="conversation_id"):
            client.chat.completions.create(
                model="default", messages=_ask(sign), extra_body={"conversation_id": bad}
            )
    assert not list(tmp_path.glob("escape*"))


def test_conversation_id_continues_a_conversation_on_the_server(client, server, sign):
    first = client.chat.completions.create(model="default", messages=_ask(sign))
    cid = first.model_extra["grounding"]["conversation_id"]  # issued by the server
    follow = [{"role": "user", "content": "Is it open?"}]  # no image: the server remembers the first one
    second = client.chat.completions.create(
        model="default", messages=follow, extra_body={"conversation_id": cid}
    )
    g1, g2 = first.model_extra["grounding"], second.model_extra["grounding"]
    assert g1["conversation_id"] == g2["conversation_id"] == cid
    assert g1["trace"] == g2["trace"]
    turns = [json.loads(line) for line in (server.traces / g2["trace"]).read_text().splitlines()]
    assert [t["turn"] for t in turns] == [1, 2] and turns[1]["question"] == "Is it open?"
    assert turns[1]["in_scope"] == turns[0]["in_scope"]  # the follow-up is about the image of turn 1
