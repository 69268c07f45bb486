"""Operating it (issue 20) through the real server: `GET /metrics` read with Prometheus' own text
parser (turn and tool histograms, per-tool counters, cache and answer counters, drift gauges) changing
as requests come; `/health`'s drift section naming what moved; one JSON log line per request without
its content; the span tree of one turn from the console exporter `--otel console` builds; and none
of it loaded when nothing asks for it. The offline SmolLM2 LLaVA answers (its vision features are
what the vision drift gauges watch), with OCR."""

from __future__ import annotations

import io
import json
import subprocess
import sys

import httpx
from PIL import ImageEnhance
from prometheus_client.parser import text_string_to_metric_families

from assistant.drift import DriftConfig
from frontends.api import AssistantBackend, ModelHub, ServeConfig, create_app
from frontends.ops import Operations, OpsConfig
from tests.frontends_util import ServerThread, assistant, data_url, sign_png

QUESTION = "What does the sign say?"


def _samples(url: str) -> dict:
    """{(sample name, frozenset of labels): value} from /metrics, parsed as Prometheus parses it."""
    r = httpx.get(url + "/metrics", timeout=30)
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/plain")
    out = {}
    for family in text_string_to_metric_families(r.text):
        for s in family.samples:
            out[(s.name, frozenset(s.labels.items()))] = s.value
    return out


def _value(samples: dict, name: str, **labels) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


def _small_sign(path, text: str, seed: int, light: float = 1.0):
    """A rendered sign, small (the OCR is quick), at `light` of its brightness."""
    from synthetic.render import render_sign

    im = render_sign(seed=seed, text=text, size=(320, 240)).image
    ImageEnhance.Brightness(im).enhance(light).save(path)
    return path


def _ask(url: str, image) -> httpx.Response:
    content = [
        {"type": "text", "text": QUESTION},
        {"type": "image_url", "image_url": {"url": data_url(image)}},
    ]
    body = {"model": "default", "messages": [{"role": "user", "content": content}]}
    return httpx.post(url + "/v1/chat/completions", json=body, timeout=300, headers={"X-Request-Id": "req-1"})


def test_metrics_health_drift_and_request_logs_through_a_real_server(tmp_path, local_model_dirs):
    a = assistant("smollm2-llava", tmp_path / "traces", tools=("ocr",))
    a.config.max_new_tokens = 2  # the answer is not the point here
    log = tmp_path / "requests.jsonl"
    drift = DriftConfig(reference_turns=2, window=2, min_reference=2, threshold=0.3)
    ops = Operations(OpsConfig(request_log=str(log)), drift)
    ops.attach(a)
    hub = ModelHub()
    hub.add("m", lambda: AssistantBackend(a, "m"))
    bright = [_small_sign(tmp_path / f"b{i}.png", t, i) for i, t in enumerate(("OPEN", "EXIT"))]
    dark = [_small_sign(tmp_path / f"d{i}.png", t, 10 + i, light=0.2) for i, t in enumerate(("SALE", "STOP"))]
    with ServerThread(create_app(hub, ServeConfig(), ops)) as server:
        before = _samples(server.url)
        assert (
            _value(before, "gvlm_tool_calls_total", tool="ocr", outcome="ok") == 0
        )  # known tools start at 0
        assert _value(before, "gvlm_requests_running", model="m") == 0
        for image in bright:
            r = _ask(server.url, image)
            assert r.status_code == 200 and r.headers["x-request-id"] == "req-1"
        mid = _samples(server.url)
        assert _value(mid, "gvlm_drift_reference_ready") == 1
        for image in dark:
            assert _ask(server.url, image).status_code == 200
        after = _samples(server.url)
        health = httpx.get(server.url + "/health", timeout=30).json()

    # Histograms: a turn's total, its first token and each stage, each tool; counts follow the requests.
    for count, n in ((mid, 2), (after, 4)):
        assert sum(v for (name, _), v in count.items() if name == "gvlm_turn_seconds_count") == n
        assert _value(count, "gvlm_ttft_seconds_count") == n
        assert _value(count, "gvlm_tool_seconds_count", tool="ocr") == n
        assert _value(count, "gvlm_tool_calls_total", tool="ocr", outcome="ok") == n
        assert _value(count, "gvlm_http_requests_total", route="/v1/chat/completions", code="200") == n
    assert (
        _value(after, "gvlm_turn_seconds_bucket", status="verified", le="+Inf")
        + _value(after, "gvlm_turn_seconds_bucket", status="abstained", le="+Inf")
        == 4
    )
    for stage in ("tools", "budget", "prefill", "decode", "verify"):
        assert _value(after, "gvlm_stage_seconds_count", stage=stage) == 4, stage
    assert _value(after, "gvlm_cache_lookups_total", cache="embedding", result="miss") == 4
    assert _value(after, "gvlm_cache_lookups_total", cache="tool", result="miss") == 4
    assert _value(after, "gvlm_image_tokens_count") == 4 and _value(after, "gvlm_image_tokens_sum") > 0
    assert _value(after, "gvlm_generated_tokens_per_second_count") == 4
    assert _value(after, "gvlm_tokens_total", kind="prompt") > _value(mid, "gvlm_tokens_total", kind="prompt")
    # Labels stay bounded: no conversation id, image hash or request id is ever a label value.
    values = {v for (_, labels) in after for _, v in labels}
    assert not [v for v in values if len(v) > 24 or v == "req-1"], values

    # Drift: gauges per modality and feature, the dark images moved brightness, and /health says so.
    psi = {dict(k[1])["feature"]: v for k, v in after.items() if k[0] == "gvlm_drift_psi"}
    assert {"image.brightness", "image.contrast", "ocr.words", "text.question_words"} <= set(psi), psi
    assert {f for f in psi if f.startswith("vision.")}, f"vision features from the embedding cache: {psi}"
    assert _value(after, "gvlm_drift_alert", modality="image", feature="image.brightness") == 1
    assert _value(after, "gvlm_drift_alert", modality="text", feature="text.question_words") == 0
    assert not [k for k in mid if k[0] == "gvlm_drift_psi"], "no score before the reference is complete"
    d = health["drift"]
    assert d["reference_ready"] and d["turns"] == 4 and "image" in d["modalities_moved"]
    assert any(m.startswith("image.brightness: mean") for m in d["moved"]), d["moved"]

    # One log line per request: ids, status, timings, the turn's figures; no question, answer or image.
    lines = [json.loads(x) for x in log.read_text().splitlines()]
    chats = [x for x in lines if x["route"] == "/v1/chat/completions"]
    assert len(chats) == 4 and not [x for x in lines if x["route"] in ("/metrics", "/health")]
    first = chats[0]
    assert first["request_id"] == "req-1" and first["status"] == 200 and first["total_s"] > 0
    assert first["turn"]["status"] in ("verified", "abstained") and first["turn"]["timings"]["total_s"] > 0
    assert first["turn"]["tools"][0]["tool"] == "ocr" and "error_class" not in first
    text = log.read_text()
    assert QUESTION not in text and "OPEN" not in text and "sha256" not in text


def test_otel_console_prints_the_span_tree_of_one_turn(tmp_path, local_model_dirs):
    from launch import parse

    args = parse(["ask", "--otel", "console", "--trace-dir", str(tmp_path), QUESTION])
    ops = Operations.from_args(args)
    assert ops.metrics is None and ops.otel is not None  # ask: spans only, no metrics
    out = io.StringIO()
    from assistant.otel import OtelExporter

    ops.otel = OtelExporter("console", out=out)  # the console exporter, into a buffer instead of stderr
    a = assistant("smollm2-llava", tmp_path, tools=("ocr",))
    a.config.max_new_tokens = 4
    ops.attach(a)
    a.conversation("c1").ask(QUESTION, [sign_png(tmp_path)])
    ops.close()
    spans = [json.loads(line) for line in out.getvalue().splitlines() if line.startswith("{")]
    by_name = {s["name"]: s for s in spans}
    root = by_name["invoke_agent grounded-vlm"]
    assert root["parent_id"] is None and len({s["context"]["trace_id"] for s in spans}) == 1
    chat = by_name["chat smollm2-llava"]
    tree = {
        s["name"]: next((p["name"] for p in spans if p["context"]["span_id"] == s["parent_id"]), None)
        for s in spans
    }
    assert tree == {
        "invoke_agent grounded-vlm": None,
        "execute_tool ocr": root["name"],
        "budget": root["name"],
        "chat smollm2-llava": root["name"],
        "prefill": chat["name"],
        "decode": chat["name"],
        "verify": root["name"],
    }, tree
    assert root["attributes"]["gen_ai.operation.name"] == "invoke_agent"
    assert root["attributes"]["gen_ai.conversation.id"] == "c1"
    assert chat["attributes"]["gen_ai.request.model"] == "smollm2-llava"
    assert (
        chat["attributes"]["gen_ai.usage.output_tokens"] >= 1
        and chat["attributes"]["gen_ai.usage.input_tokens"] > 0
    )
    assert by_name["execute_tool ocr"]["attributes"]["gen_ai.tool.name"] == "ocr"
    assert "gen_ai.input.messages" not in root["attributes"]  # no content without --log-content
    start, end = root["start_time"], root["end_time"]
    assert all(start <= s["start_time"] <= s["end_time"] <= end for s in spans), "children inside the turn"


def test_nothing_loads_and_nothing_wraps_when_nothing_is_asked_for():
    code = (
        "import sys; from launch import parse; from frontends.ops import Operations\n"
        "import frontends.commands.ask, frontends.commands.batch, assistant.session\n"
        "assert Operations.from_args(parse(['ask', 'q'])) is None\n"
        "assert Operations.from_args(parse(['batch', '--images', '.', '--out', 'x.jsonl'])) is None\n"
        "assert not [m for m in sys.modules if m.startswith(('opentelemetry', 'prometheus_client'))]\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
