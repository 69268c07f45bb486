"""Prometheus metrics of the turns, derived once per turn from its trace and timeline (an observer).

Latency histograms (turn total, time to first token, each stage, each tool), tool calls by outcome,
cache hits and misses (embedding, KV, tool results), answers per status, image tokens per turn and
generated tokens per second; `DriftCollector` exports a `DriftMonitor`'s scores as gauges, read when
scraped. Labels stay bounded: a tool's name only when the registry knows it (else "other"), statuses
from `assistant.observe.STATUSES`, error classes from a fixed list; never a conversation id, an image
hash or any text. Each `TurnMetrics` has its own registry, which the front end serves (`/metrics`).
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import GaugeMetricFamily

from assistant.observe import TurnTimeline

PREFIX = "gvlm"
SECONDS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0)
TOOL_SECONDS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0)
IMAGE_TOKENS = (0, 64, 128, 256, 512, 1024, 2048, 4096, 8192, 16384)
TOKENS_PER_S = (1, 2, 5, 10, 20, 50, 100, 200, 500, 1000)
STAGES = ("tools", "budget", "prefill", "decode", "verify")
# A turn's error, by the class of the exception it raised (tools.errors); anything else is "other".
ERROR_CLASSES = ("BadInputError", "ModelLoadError", "BackendError", "ToolError", "UserError", "Cancelled")


class TurnMetrics:
    """A turn observer that keeps Prometheus metrics in its own registry."""

    name = "metrics"

    def __init__(self, tools=(), registry: CollectorRegistry | None = None):
        self.registry = registry or CollectorRegistry()
        self.tools: set[str] = set()  # tool names allowed as label values
        r, p = self.registry, PREFIX
        self.running = Gauge(f"{p}_turns_running", "turns being answered now", registry=r)
        self.turn_s = Histogram(
            f"{p}_turn_seconds", "a turn's total time, by status", ["status"], buckets=SECONDS, registry=r
        )
        self.ttft_s = Histogram(
            f"{p}_ttft_seconds", "time from a turn's start to its first token", buckets=SECONDS, registry=r
        )
        self.stage_s = Histogram(
            f"{p}_stage_seconds",
            "time per stage of a turn (tools: image modality; prefill, decode: the model)",
            ["stage"],
            buckets=SECONDS,
            registry=r,
        )
        self.tool_s = Histogram(
            f"{p}_tool_seconds", "one tool call's time", ["tool"], buckets=TOOL_SECONDS, registry=r
        )
        self.tool_calls = Counter(
            f"{p}_tool_calls", "tool calls by outcome (ok, error, timeout)", ["tool", "outcome"], registry=r
        )
        self.cache = Counter(
            f"{p}_cache_lookups",
            "cache lookups: embedding (per image), kv (per generation: any prefix reused), tool (per call)",
            ["cache", "result"],
            registry=r,
        )
        self.answers = Counter(f"{p}_answers", "answers by status", ["status"], registry=r)
        self.errors = Counter(f"{p}_turn_errors", "turns that failed, by error class", ["error"], registry=r)
        self.image_tokens = Histogram(
            f"{p}_image_tokens", "image tokens per turn", buckets=IMAGE_TOKENS, registry=r
        )
        self.tps = Histogram(
            f"{p}_generated_tokens_per_second", "decode speed per turn", buckets=TOKENS_PER_S, registry=r
        )
        self.tokens = Counter(
            f"{p}_tokens", "tokens: prompt, generated, image, kv_reused", ["kind"], registry=r
        )
        # the label sets known in advance show as 0 before they first happen (rate() needs the series)
        for s in ("verified", "unverified", "abstained", "error"):
            self.answers.labels(s)
        for c in ("embedding", "kv", "tool"):
            for res in ("hit", "miss"):
                self.cache.labels(c, res)
        self.know_tools(tools)

    def know_tools(self, names) -> None:
        """Allow these tool names as label values; their call counters start at 0."""
        for t in names:
            self.tools.add(t)
            for o in ("ok", "error", "timeout"):
                self.tool_calls.labels(t, o)

    def turn_started(self, line: TurnTimeline) -> None:
        self.running.inc()

    def __call__(self, line: TurnTimeline) -> None:
        self.running.dec()
        status = line.status
        self.turn_s.labels(status).observe(line.total_s)
        self.answers.labels(status).inc()
        if line.outcome in ("error", "crashed"):
            self.errors.labels(error_class(line.error)).inc()
        if line.first_token is not None:
            self.ttft_s.observe(line.first_token - line.start)
        for stage, seconds in stage_times(line).items():
            self.stage_s.labels(stage).observe(seconds)
        trace = line.trace
        if trace is None:
            return
        for call in trace.tool_calls:
            tool = call.tool if call.tool in self.tools else "other"
            outcome = "ok" if call.ok else ("timeout" if "timed out" in (call.error or "") else "error")
            self.tool_calls.labels(tool, outcome).inc()
            self.tool_s.labels(tool).observe(call.duration_s)
            self.cache.labels("tool", "hit" if call.cache_hit else "miss").inc()
        tk = trace.tokens
        if tk:
            self.cache.labels("embedding", "hit").inc(tk.get("embed_cache_hits", 0))
            self.cache.labels("embedding", "miss").inc(tk.get("embed_cache_misses", 0))
            if tk.get("generations"):
                self.cache.labels("kv", "hit" if tk.get("kv_reused_tokens") else "miss").inc()
            self.image_tokens.observe(tk.get("image_tokens", 0))
            for kind, key in (("prompt", "tokens_in"), ("generated", "tokens_out")):
                self.tokens.labels(kind).inc(tk.get(key, 0))
            self.tokens.labels("image").inc(tk.get("image_tokens", 0))
            self.tokens.labels("kv_reused").inc(tk.get("kv_reused_tokens", 0))
            decoded = tk.get("tokens_out", 0) - 1
            if decoded > 0 and line.first_token is not None and line.last_token > line.first_token:
                self.tps.observe(decoded / (line.last_token - line.first_token))


def stage_times(line: TurnTimeline) -> dict[str, float]:
    """Seconds per stage, as far as the timeline tells them (`assistant/otel.py` draws the same)."""
    spans = stage_spans(line)
    return {name: end - start for name, (start, end) in spans.items() if name in STAGES}


def stage_spans(line: TurnTimeline) -> dict[str, tuple[float, float]]:
    """(start, end) perf_counter times of a turn's stages: tools (the first tool's start to the last
    tool's end), budget (then to the budget decision), prefill (the model's request, vision included,
    to the first token), decode (to the last token) and verify (its measured time after generation)."""
    out: dict[str, tuple[float, float]] = {}
    timings = line.trace.timings if line.trace is not None else {}
    if line.tool_started and line.tools_done is not None:
        out["tools"] = (min(line.tool_started.values()), line.tools_done)
    if line.budget_at is not None:
        out["budget"] = (line.tools_done if line.tools_done is not None else line.start, line.budget_at)
    if line.first_token is not None:
        model_ttft = timings.get("model_ttft_s")
        start = line.first_token - model_ttft if model_ttft else (line.budget_at or line.start)
        out["prefill"] = (max(start, line.start), line.first_token)
        out["decode"] = (line.first_token, line.last_token)
    if timings.get("verify_s") is not None and line.last_token is not None:
        out["verify"] = (line.last_token, line.last_token + timings["verify_s"])
    return out


def error_class(e: BaseException | None) -> str:
    """The first of ERROR_CLASSES the exception is an instance of (by class name, up its MRO)."""
    names = [c.__name__ for c in type(e).__mro__] if e is not None else []
    return next((n for n in names if n in ERROR_CLASSES), "other")


class DriftCollector:
    """A `DriftMonitor`'s scores as gauges, computed when scraped."""

    def __init__(self, monitor):
        self.monitor = monitor

    def collect(self):
        psi = GaugeMetricFamily(
            f"{PREFIX}_drift_psi",
            "population stability index vs the reference",
            labels=["modality", "feature"],
        )
        ks = GaugeMetricFamily(
            f"{PREFIX}_drift_ks",
            "KS statistic vs the reference (numeric features)",
            labels=["modality", "feature"],
        )
        alert = GaugeMetricFamily(
            f"{PREFIX}_drift_alert",
            "1 when a feature's PSI is at or above the threshold",
            labels=["modality", "feature"],
        )
        for name, s in self.monitor.scores().items():
            labels = [s["modality"], name]
            psi.add_metric(labels, s["psi"])
            alert.add_metric(labels, 1.0 if s["alert"] else 0.0)
            if "ks" in s:
                ks.add_metric(labels, s["ks"])
        threshold = GaugeMetricFamily(f"{PREFIX}_drift_threshold", "the PSI alarm threshold")
        threshold.add_metric([], self.monitor.config.threshold)
        ready = GaugeMetricFamily(f"{PREFIX}_drift_reference_ready", "1 once the reference is complete")
        ready.add_metric([], 1.0 if self.monitor.frozen else 0.0)
        yield from (psi, ks, alert, threshold, ready)
