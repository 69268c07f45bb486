"""`python launch.py bench ops`: what metrics, drift, spans and request logs cost per turn.

Real turns (the offline assistant with OCR, on rendered signs, each a new image and conversation)
alternate between the assistant with every observer on - Prometheus metrics, drift, OpenTelemetry
export (console to /dev/null, or OTLP to a port nobody listens on: spans are built on the turn's
thread, sent on the exporter's) and the JSON request log - and the same assistant with none. Each
observer's own time is measured on the turn's thread as it runs; the recorded turns are then replayed
through each observer `--replays` times for a steadier figure. The HTTP middleware (request id,
HTTP metrics, a log line) is timed per request in process. It reports milliseconds per turn and the
share of a turn's time, with the turns' wall time with and without (on a shared machine that
difference is mostly noise: the direct timing is the figure to read).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import time
from pathlib import Path

QUESTION = "What does the sign say?"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--turns", type=int, default=6, help="turns with and as many without (default: 6)")
    p.add_argument("--replays", type=int, default=50, help="replays of each recorded turn (default: 50)")
    p.add_argument("--otel", choices=["console", "otlp"], default="console", help="span exporter to time")
    p.add_argument("--model", default="smollm2-llava", help="the model (default: smollm2-llava)")
    p.add_argument("--json", default="bench-results/ops.json", help="where the figures go")


class _Timed:
    """An observer with a stopwatch: the seconds it spent per turn."""

    def __init__(self, name: str, observer):
        self.name, self.observer, self.spent = name, observer, []
        if hasattr(observer, "turn_started"):
            self.turn_started = observer.turn_started

    def __call__(self, line) -> None:
        t0 = time.perf_counter()
        self.observer(line)
        self.spent.append(time.perf_counter() - t0)


def observers(otel: str, log_path: str) -> dict:
    from assistant.drift import DriftConfig, DriftMonitor
    from assistant.metrics import DriftCollector, TurnMetrics
    from assistant.otel import OtelExporter
    from assistant.request_log import LogSink, RequestLogger

    metrics = TurnMetrics()
    metrics.know_tools(["ocr"])
    drift = DriftMonitor(DriftConfig(reference_turns=2, window=4, min_reference=2))  # scores from turn 3
    metrics.registry.register(DriftCollector(drift))
    out = open(os.devnull, "w")  # noqa: SIM115 - lives as long as the exporter
    endpoint = "http://127.0.0.1:9/v1/traces"  # discard port: the export fails off the turn's thread
    span = OtelExporter(otel, endpoint if otel == "otlp" else None, out=out)
    return {"metrics": metrics, "drift": drift, "otel": span, "log": RequestLogger(LogSink(log_path))}


def run(args: argparse.Namespace) -> int:
    from assistant.core.config import ModelConfig
    from assistant.factory import build_assistant
    from assistant.session import AssistantConfig
    from synthetic.render import render_sign

    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    obs = observers(args.otel, os.devnull)
    timed = [_Timed(name, o) for name, o in obs.items()]
    recorded: list = []
    acfg = AssistantConfig(tools=["ocr"], write_traces=False)
    assistant = build_assistant(ModelConfig(model=args.model, device="cpu"), acfg)
    print(f"model: {assistant.description}")
    walls: dict[str, list[float]] = {"on": [], "off": []}
    for i in range(2 * args.turns):
        mode = "on" if i % 2 == 0 else "off"
        assistant.observers = [*timed, recorded.append] if mode == "on" else []
        im = render_sign(seed=500 + i, size=(480, 360), photo=True).image
        conv = assistant.conversation()
        t0 = time.perf_counter()
        conv.ask(QUESTION, [im])
        walls[mode].append(time.perf_counter() - t0)
        conv.close()
        print(f"  turn {i + 1} ({mode}): {walls[mode][-1]:.2f} s")
    replay = {}
    for name, o in obs.items():
        target = o.fork() if name == "drift" else o
        t0 = time.perf_counter()
        for _ in range(args.replays):
            for line in recorded:
                if name == "metrics":
                    o.turn_started(line)
                target(line)
        replay[name] = (time.perf_counter() - t0) / (args.replays * len(recorded))
    obs["otel"].close()
    turn_s = statistics.mean(walls["on"] + walls["off"])
    live = {t.name: statistics.mean(t.spent) for t in timed}
    report = {
        "turns": args.turns,
        "otel_exporter": args.otel,
        "turn_s": {k: round(statistics.mean(v), 3) for k, v in walls.items()},
        "turn_s_stdev": {k: round(statistics.stdev(v), 3) if len(v) > 1 else 0.0 for k, v in walls.items()},
        "observer_ms_per_turn_live": {k: round(v * 1000, 3) for k, v in live.items()},
        "observer_ms_per_turn_replayed": {k: round(v * 1000, 3) for k, v in replay.items()},
        "share_of_turn": {
            "metrics+drift+log": round((replay["metrics"] + replay["drift"] + replay["log"]) / turn_s, 5),
            "otel": round(replay["otel"] / turn_s, 5),
            "all_live": round(sum(live.values()) / turn_s, 5),
        },
        "http_middleware_us_per_request": round(middleware_cost() * 1e6, 1),
    }
    for line in lines(report):
        print(line)
    Path(args.json).write_text(json.dumps(report, indent=1))
    print(f"wrote {args.json}")
    return 0


def middleware_cost(n: int = 2000) -> float:
    """Seconds the request middleware adds to one request (a trivial ASGI app, with and without it)."""
    from prometheus_client import CollectorRegistry, Counter, Histogram

    from assistant.request_log import LogSink, RequestMiddleware

    async def app(scope, receive, send):
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"{}"})

    r = CollectorRegistry()  # the HTTP metrics `serve` keeps (frontends/ops.py)
    requests = Counter("http_requests", "", ["route", "code"], registry=r)
    seconds = Histogram("http_request_seconds", "", ["route"], registry=r)

    def measured(route, status, total_s, first_byte_s):
        requests.labels(route, str(status)).inc()
        seconds.labels(route).observe(total_s)

    wrapped = RequestMiddleware(app, LogSink(os.devnull), measured)
    scope = {"type": "http", "method": "POST", "path": "/v1/chat/completions", "headers": []}

    async def receive():
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(_msg):
        return None

    async def timed(target) -> float:
        t0 = time.perf_counter()
        for _ in range(n):
            await target(scope, receive, send)
        return (time.perf_counter() - t0) / n

    bare, with_it = asyncio.run(timed(app)), asyncio.run(timed(wrapped))
    return max(0.0, with_it - bare)


def lines(r: dict) -> list[str]:
    live, rep, share = r["observer_ms_per_turn_live"], r["observer_ms_per_turn_replayed"], r["share_of_turn"]
    return [
        f"turn wall time: {r['turn_s']['on']} s with the observers, {r['turn_s']['off']} s without "
        f"(stdev {r['turn_s_stdev']['on']} / {r['turn_s_stdev']['off']} s: the machine's noise)",
        "observer time per turn, ms (live / replayed): "
        + ", ".join(f"{k} {live[k]} / {rep[k]}" for k in rep),
        f"share of a turn: metrics+drift+log {share['metrics+drift+log']:.3%}, otel ({r['otel_exporter']}) "
        f"{share['otel']:.3%}, everything as measured live {share['all_live']:.3%}",
        f"HTTP middleware: {r['http_middleware_us_per_request']} us per request",
    ]
