"""OpenTelemetry spans of each turn, drawn from its timeline after it ends (a turn observer).

One span per turn (`invoke_agent grounded-vlm`) with children: one `execute_tool <name>` per tool call,
`budget` (the image plan), `chat <model>` (the generation, with `prefill` - vision included - and
`decode` under it) and `verify`. Names and attributes follow the OpenTelemetry GenAI semantic
conventions where they apply (`gen_ai.operation.name`, `gen_ai.request.model`, `gen_ai.usage.*`,
`gen_ai.tool.name`, `gen_ai.conversation.id`); the project's own figures are `grounded_vlm.*`. No
question, answer or evidence text is exported unless `content` is set (`--log-content`).

Spans go to the console (one JSON object per line, stderr) or to an OTLP/HTTP collector (Jaeger,
Grafana Tempo, Langfuse, Phoenix) on a background thread. The SDK is imported only when this is
built: without `--otel` nothing of OpenTelemetry loads. A request that carried a W3C `traceparent`
header gets its turn's spans under the caller's trace.
"""

from __future__ import annotations

import json
import sys

from assistant.metrics import stage_spans
from assistant.observe import TurnTimeline
from tools.errors import UserError

AGENT = "grounded-vlm"
EXPORTERS = ("console", "otlp")


class OtelExporter:
    """A turn observer that exports each turn as a span tree."""

    name = "otel"

    def __init__(
        self, exporter: str = "console", endpoint: str | None = None, content: bool = False, out=None
    ):
        try:
            from opentelemetry.sdk.resources import Resource
            from opentelemetry.sdk.trace import TracerProvider
            from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter
        except ImportError as e:
            raise UserError(
                f"--otel needs the OpenTelemetry SDK: pip install opentelemetry-sdk ({e})"
            ) from None
        if exporter == "console":
            out = out or sys.stderr
            span_exporter = ConsoleSpanExporter(out=out, formatter=lambda s: s.to_json(indent=None) + "\n")
        elif exporter == "otlp":
            try:
                from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
            except ImportError as e:
                raise UserError(
                    f"--otel otlp needs: pip install opentelemetry-exporter-otlp-proto-http ({e})"
                ) from None
            # no endpoint: OTEL_EXPORTER_OTLP_(TRACES_)ENDPOINT, else the collector on localhost:4318
            span_exporter = OTLPSpanExporter(endpoint=endpoint) if endpoint else OTLPSpanExporter()
        else:
            raise UserError(f"--otel takes one of {', '.join(EXPORTERS)}, not {exporter!r}")
        self.provider = TracerProvider(resource=Resource.create({"service.name": AGENT}))
        self.provider.add_span_processor(BatchSpanProcessor(span_exporter))
        self.tracer = self.provider.get_tracer("grounded_vlm")
        self.content = content

    def close(self, timeout_s: float = 3.0) -> None:
        """Send what is queued, waiting at most `timeout_s` (a collector that is down does not hold the
        process: the exporter would retry for many seconds), and stop."""
        import threading

        stopping = threading.Thread(target=self.provider.shutdown, daemon=True)
        stopping.start()
        stopping.join(timeout_s)

    def __call__(self, line: TurnTimeline) -> None:
        from opentelemetry import trace
        from opentelemetry.trace import Status, StatusCode

        tr = line.trace
        model = (tr.model.get("id") if tr is not None else "") or "unknown"
        parent = _caller_context(line.request)
        attrs = {
            "gen_ai.operation.name": "invoke_agent",
            "gen_ai.agent.name": AGENT,
            "gen_ai.conversation.id": str(getattr(line.conversation, "id", "")),
            "gen_ai.request.model": model,
            "grounded_vlm.status": line.status,
        }
        if tr is not None:
            attrs |= {"grounded_vlm.turn": tr.turn, "grounded_vlm.intent": tr.intent}
            attrs |= _usage(tr.tokens)
            if self.content:
                attrs["gen_ai.input.messages"] = json.dumps([{"role": "user", "content": tr.question}])
                attrs["gen_ai.output.messages"] = json.dumps([{"role": "assistant", "content": tr.answer}])
        root = self.tracer.start_span(
            f"invoke_agent {AGENT}", context=parent, start_time=line.start_ns, attributes=attrs
        )
        if line.outcome in ("error", "crashed"):
            root.set_attribute("error.type", type(line.error).__name__ if line.error else "error")
            root.set_status(Status(StatusCode.ERROR, str(line.error or "")[:200]))
        ctx = trace.set_span_in_context(root)
        spans = stage_spans(line)
        if tr is not None:
            self._tools(line, ctx)
            self._stage(line, ctx, "budget", spans, _budget(tr))
            if "prefill" in spans:
                chat = self.tracer.start_span(
                    f"chat {model}",
                    context=ctx,
                    start_time=line.wall_ns(spans["prefill"][0]),
                    attributes={"gen_ai.operation.name": "chat", "gen_ai.request.model": model}
                    | _usage(tr.tokens),
                )
                inner = trace.set_span_in_context(chat)
                tk = tr.tokens or {}
                prefill = {"gen_ai.usage.input_tokens": tk.get("tokens_in", 0)}
                prefill |= {"grounded_vlm.image_tokens": tk.get("image_tokens", 0)}
                prefill |= {"grounded_vlm.embed_cache_hits": tk.get("embed_cache_hits", 0)}
                self._stage(line, inner, "prefill", spans, prefill)
                self._stage(
                    line, inner, "decode", spans, {"gen_ai.usage.output_tokens": tk.get("tokens_out", 0)}
                )
                chat.end(end_time=line.wall_ns(spans["decode"][1]))
            verify = {"grounded_vlm.claims": len(tr.claims), "grounded_vlm.citations": len(tr.citations)}
            verify["grounded_vlm.supported"] = sum(1 for c in tr.claims if c.supported)
            self._stage(line, ctx, "verify", spans, verify | {"grounded_vlm.status": line.status})
        root.end(end_time=line.wall_ns(line.end))

    def _stage(self, line, ctx, name: str, spans: dict, attrs: dict) -> None:
        if name not in spans:
            return
        start, end = spans[name]
        span = self.tracer.start_span(name, context=ctx, start_time=line.wall_ns(start), attributes=attrs)
        span.end(end_time=line.wall_ns(max(start, end)))

    def _tools(self, line: TurnTimeline, ctx) -> None:
        from opentelemetry.trace import Status, StatusCode

        for call in line.trace.tool_calls:
            start = line.tool_started.get(id(call), line.start)
            attrs = {
                "gen_ai.operation.name": "execute_tool",
                "gen_ai.tool.name": call.tool,
                "gen_ai.tool.type": "function",
                "grounded_vlm.image_index": call.image_index,
                "grounded_vlm.cache_hit": call.cache_hit,
                "grounded_vlm.evidence": len(call.evidence_ids),
                "grounded_vlm.source": call.source,
            }
            span = self.tracer.start_span(
                f"execute_tool {call.tool}", context=ctx, start_time=line.wall_ns(start), attributes=attrs
            )
            if not call.ok:
                timeout = "timed out" in (call.error or "")
                span.set_attribute("error.type", "timeout" if timeout else "tool_error")
                span.set_status(Status(StatusCode.ERROR, (call.error or "")[:200]))
            span.end(end_time=line.wall_ns(start + call.duration_s))


def _usage(tokens: dict) -> dict:
    tk = tokens or {}
    return {
        "gen_ai.usage.input_tokens": int(tk.get("tokens_in", 0)),
        "gen_ai.usage.output_tokens": int(tk.get("tokens_out", 0)),
        "gen_ai.usage.cache_read.input_tokens": int(tk.get("kv_reused_tokens", 0)),
    }


def _budget(tr) -> dict:
    return {
        "grounded_vlm.image_tokens": sum(b.tokens for b in tr.budget),
        "grounded_vlm.images": len(tr.budget),
        "grounded_vlm.choices": ",".join(sorted({b.choice for b in tr.budget})),
    }


def _caller_context(request: dict | None):
    """The caller's trace context from the request's `traceparent` header, when it sent one."""
    header = (request or {}).get("traceparent")
    if not header:
        return None
    from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

    return TraceContextTextMapPropagator().extract({"traceparent": header})
