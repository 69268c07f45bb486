"""Turn observers (issue 20): each turn is seen once with its outcome - answered, failed, cancelled
mid-stream - an observer that fails never breaks a turn, and the request log carries figures, not
content, unless asked. A scripted engine plays the model: these are the loop's seams, not the model."""

from __future__ import annotations

import json

from assistant.metrics import TurnMetrics
from assistant.request_log import LogSink, RequestLogger
from assistant.session import Assistant, AssistantConfig
from tests.scripted_engine import ScriptedEngine


def _assistant(tmp_path, reply: str = "I can't tell from the evidence.") -> Assistant:
    return Assistant(ScriptedEngine([reply] * 10), None, AssistantConfig(trace_dir=str(tmp_path)))


def test_each_turn_is_seen_once_with_its_outcome_and_a_failing_observer_breaks_nothing(tmp_path, capsys):
    a = _assistant(tmp_path)
    seen = []

    def broken(line):
        raise RuntimeError("observer bug")

    metrics = TurnMetrics()
    a.observers += [seen.append, broken, metrics]
    conv = a.conversation("c1")
    result = conv.ask("What does the sign say?")
    assert result.answer and len(seen) == 1
    line = seen[0]
    assert line.outcome == "done" and line.trace.turn == 1 and line.status == result.status
    assert line.first_token is not None and line.start <= line.first_token <= line.last_token <= line.end
    assert "the broken observer failed" in capsys.readouterr().err

    events = conv.stream("   ")  # an empty question: the turn ends in an error event
    assert [e.type for e in events][-1] == "error"
    assert seen[-1].outcome == "error" and seen[-1].status == "error" and seen[-1].trace.error

    stream = conv.stream("Write a long story about the sign.")
    next(stream)  # the client reads one event and leaves
    stream.close()
    assert seen[-1].outcome == "cancelled" and seen[-1].trace is None
    registry = metrics.registry
    for status, n in (("verified", 0), ("error", 1), ("cancelled", 1)):
        got = registry.get_sample_value("gvlm_answers_total", {"status": status}) or 0
        assert got == n, (status, got)
    assert registry.get_sample_value("gvlm_turn_errors_total", {"error": "BadInputError"}) == 1
    assert registry.get_sample_value("gvlm_turns_running") == 0


def test_the_request_log_holds_figures_and_content_only_when_asked(tmp_path):
    for content in (False, True):
        log = tmp_path / f"log-{content}.jsonl"
        a = _assistant(tmp_path)
        a.observers.append(RequestLogger(LogSink(str(log)), content=content))
        a.conversation().ask("What is the secret word?")
        (record,) = [json.loads(x) for x in log.read_text().splitlines()]
        assert record["kind"] == "turn" and len(record["request_id"]) == 16 and record["total_s"] > 0
        assert record["status"] and record["timings"]["total_s"] > 0 and "tokens" in record
        assert ("secret" in log.read_text()) is content


def test_ui_and_batch_serve_the_metrics_on_their_own_port(tmp_path):
    import httpx
    from prometheus_client.parser import text_string_to_metric_families

    from frontends.ops import Operations
    from launch import parse
    from tests.frontends_util import free_port

    port = free_port()
    for argv in (
        ["ui", "--metrics-port", str(port)],
        ["batch", "--images", ".", "--out", "x.jsonl", "--metrics-port", "1"],
    ):
        args = parse(argv)
        assert args.metrics_port and not args.no_drift and args.drift_window == 50
    ops = Operations.from_args(parse(["ui", "--metrics-port", str(port), "--drift-threshold", "0.7"]))
    assert ops.drift.config.threshold == 0.7 and ops.otel is None and ops.sink is None
    a = _assistant(tmp_path)
    ops.attach(a)
    url = ops.start_metrics_server()
    try:
        a.conversation().ask("What does the sign say?")
        text = httpx.get(url, timeout=10).text
    finally:
        ops.close()
    names = {s.name for f in text_string_to_metric_families(text) for s in f.samples}
    assert {"gvlm_turn_seconds_count", "gvlm_answers_total", "gvlm_drift_threshold"} <= names


def test_serve_always_has_metrics_drift_and_a_request_log_unless_told_otherwise():
    from frontends.ops import Operations
    from launch import parse

    ops = Operations.from_args(parse(["serve"]), default_log="-", serve=True)
    assert ops.metrics is not None and ops.drift is not None and ops.sink.target == "-" and ops.otel is None
    quiet = Operations.from_args(
        parse(["serve", "--request-log", "off", "--no-drift"]), default_log="-", serve=True
    )
    assert quiet.metrics is not None and quiet.drift is None and quiet.sink is None
    assert not hasattr(parse(["serve"]), "metrics_port")  # serve's metrics are on its own port
