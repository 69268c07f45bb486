"""Operating it: the flags and wiring of metrics, drift, OpenTelemetry and request logs for a front end.

`add_ops_args` adds the flags (`--metrics-port`, `--drift-*`, `--otel`, `--request-log`,
`--log-content`); `Operations.attach(assistant)` builds what they ask for and hangs the turn observers
on the assistant (`assistant/observe.py`). For `serve`, `install` adds `GET /metrics` to the app
(behind the API key like every route) and `wrap` puts the request middleware in front of everything
(the key guard included, so refused requests are counted and logged too): a request id (the client's
`X-Request-Id` when it is sane, echoed back), HTTP metrics by route and status, and one JSON log line
per request, to which the turn it served adds its figures. `ui`, `batch` and `ask` serve the same
metrics on `--metrics-port`.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass, field

from frontends.cliargs import add_dataclass_args, dataclass_from_args


@dataclass
class OpsConfig:
    """What a front end exports about itself: metrics, drift, spans, request logs."""

    metrics_port: int | None = field(
        default=None,
        metadata={"help": "serve Prometheus metrics on this port (`serve` has GET /metrics on its own port)"},
    )
    metrics_host: str = field(default="127.0.0.1", metadata={"help": "address the metrics port binds"})
    no_drift: bool = field(default=False, metadata={"help": "no drift monitoring"})
    otel: str | None = field(
        default=None,
        metadata={
            "help": "export OpenTelemetry spans of each turn: 'console' (JSON lines on stderr) or 'otlp' "
            "(OTLP/HTTP; --otel-endpoint or $OTEL_EXPORTER_OTLP_ENDPOINT); off by default",
            "choices": ["console", "otlp"],
        },
    )
    otel_endpoint: str | None = field(
        default=None, metadata={"help": "OTLP/HTTP traces endpoint, e.g. http://127.0.0.1:4318/v1/traces"}
    )
    request_log: str | None = field(
        default=None,
        metadata={
            "help": "one JSON line per request: a file, '-' for stderr, 'off' (serve: stderr; others: off)"
        },
    )
    log_content: bool = field(
        default=False,
        metadata={"help": "let logs and spans carry questions, answers and image hashes (off: figures only)"},
    )


def add_ops_args(parser: argparse.ArgumentParser, metrics_port: bool = True) -> None:
    from assistant.drift import DriftConfig

    group = parser.add_argument_group("operating it (metrics, drift, OpenTelemetry, request logs)")
    add_dataclass_args(group, OpsConfig, skip=() if metrics_port else ("metrics_port", "metrics_host"))
    add_dataclass_args(group, DriftConfig, prefix="drift-")


class Operations:
    """Metrics, drift, spans and logs, as the flags asked; `attach` hangs them on an assistant."""

    def __init__(self, cfg: OpsConfig, drift_cfg=None, default_log: str = "off", metrics: bool = True):
        from assistant.drift import DriftMonitor
        from assistant.metrics import DriftCollector, TurnMetrics
        from assistant.request_log import LogSink
        from frontends.runtime import eprint

        self.cfg = cfg
        self.metrics = TurnMetrics() if metrics else None
        self.registry = self.metrics.registry if metrics else None
        self.drift = None
        if metrics and not cfg.no_drift:
            alarm = lambda f, psi, turn: eprint(f"drift: {f} moved (PSI {psi:.2f}) at turn {turn}")  # noqa: E731
            self.drift = DriftMonitor(drift_cfg, on_alarm=alarm)
            self.registry.register(DriftCollector(self.drift))
        self.otel = None
        if cfg.otel:
            from assistant.otel import OtelExporter

            self.otel = OtelExporter(cfg.otel, cfg.otel_endpoint, content=cfg.log_content)
        target = cfg.request_log or default_log
        self.sink = None if target == "off" else LogSink(target)
        self._http = None
        self._server = None

    @classmethod
    def from_args(cls, args: argparse.Namespace, default_log: str = "off", serve: bool = False):
        """What the flags ask for, or None when they ask for nothing (no observer, no cost). `serve`
        always has metrics and drift (GET /metrics, /health); the others when --metrics-port is given."""
        from assistant.drift import DriftConfig

        cfg = dataclass_from_args(OpsConfig, args)
        metrics = serve or cfg.metrics_port is not None
        if not (metrics or cfg.otel or (cfg.request_log or default_log) != "off"):
            return None
        return cls(cfg, dataclass_from_args(DriftConfig, args, "drift-"), default_log, metrics)

    def observers(self) -> list:
        from assistant.request_log import RequestLogger

        out: list = [self.metrics] if self.metrics is not None else []
        if self.drift is not None:
            out.append(self.drift)
        if self.otel is not None:
            out.append(self.otel)
        if self.sink is not None:
            out.append(RequestLogger(self.sink, self.cfg.log_content))
        return out

    def attach(self, assistant) -> None:
        """Observe `assistant`'s turns; tool names become the metrics' known tool labels."""
        runner = getattr(assistant, "tools", None)
        if runner is not None and self.metrics is not None:
            self.metrics.know_tools(runner.registry.names())
        assistant.observers.extend(o for o in self.observers() if o not in assistant.observers)

    def start_metrics_server(self) -> str | None:
        """`--metrics-port`: Prometheus' own HTTP server on a thread; returns its URL."""
        if self.cfg.metrics_port is None or self.registry is None:
            return None
        from prometheus_client import start_http_server

        self._server = start_http_server(
            self.cfg.metrics_port, addr=self.cfg.metrics_host, registry=self.registry
        )
        return f"http://{self.cfg.metrics_host}:{self.cfg.metrics_port}/metrics"

    def close(self) -> None:
        if self.otel is not None:
            self.otel.close()
        if self._server is not None:
            self._server[0].shutdown()

    def health(self) -> dict:
        """What /health adds: the drift section."""
        return {"drift": self.drift.health()} if self.drift is not None else {}

    # ---- serve -----------------------------------------------------------------------------------
    def install(self, app, hub) -> None:
        """`GET /metrics` on the app, and the queue of each served model as gauges."""
        from fastapi.responses import Response
        from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

        self.registry.register(_QueueCollector(hub))

        @app.get("/metrics")
        async def metrics():
            return Response(generate_latest(self.registry), media_type=CONTENT_TYPE_LATEST)

    def wrap(self, app):
        """The request middleware in front of `app` (an ASGI app)."""
        from prometheus_client import Counter, Histogram

        from assistant.metrics import PREFIX, SECONDS

        if self._http is None:
            r = self.registry
            self._http = (
                Counter(
                    f"{PREFIX}_http_requests",
                    "HTTP requests by route and status",
                    ["route", "code"],
                    registry=r,
                ),
                Histogram(
                    f"{PREFIX}_http_request_seconds",
                    "HTTP request time",
                    ["route"],
                    buckets=SECONDS,
                    registry=r,
                ),
                Histogram(
                    f"{PREFIX}_http_first_byte_seconds",
                    "HTTP time to the first body byte (streamed: the first chunk)",
                    ["route"],
                    buckets=SECONDS,
                    registry=r,
                ),
            )
        from assistant.request_log import RequestMiddleware

        return RequestMiddleware(app, self.sink, self._measured)

    def _measured(self, route: str, status: int, total_s: float, first_byte_s: float | None) -> None:
        requests, seconds, first_byte = self._http
        requests.labels(route, str(status)).inc()
        seconds.labels(route).observe(total_s)
        if first_byte_s is not None:
            first_byte.labels(route).observe(first_byte_s)


class _QueueCollector:
    """Requests running and waiting per served model, read from its gate when scraped."""

    def __init__(self, hub):
        self.hub = hub

    def collect(self):
        from prometheus_client.core import GaugeMetricFamily

        from assistant.metrics import PREFIX

        running = GaugeMetricFamily(f"{PREFIX}_requests_running", "requests generating now", labels=["model"])
        waiting = GaugeMetricFamily(
            f"{PREFIX}_requests_waiting", "requests waiting for the model", labels=["model"]
        )
        for name, s in self.hub.status().items():
            running.add_metric([name], s["running"])
            waiting.add_metric([name], s["waiting"])
        yield running
        yield waiting
