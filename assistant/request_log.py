"""Structured logs: one JSON line per request, for log collectors (Loki, Elasticsearch, CloudWatch).

A line has the request id, status, timings (total, time to first token, tools, generation,
verification), tokens, each tool call's outcome and time, and the error class when it failed. It holds
no question, answer, evidence text or image bytes unless `content` is on (`--log-content`); image
hashes are shown only then too. Under `serve` the HTTP middleware (`RequestMiddleware`, pure ASGI)
writes the line when the response ends and the turn it served adds its part (`turn_record`); `ui`,
`batch` and `ask` write one line per turn.
"""

from __future__ import annotations

import json
import re
import sys
import threading
import time
import uuid
from datetime import datetime, timezone
from pathlib import Path

from assistant.metrics import error_class
from assistant.observe import REQUEST, TurnTimeline

# Routes by name for labels (bounded); anything else is "other".
ROUTES = ("/v1/chat/completions", "/v1/models", "/health", "/metrics")
QUIET_ROUTES = ("/health", "/metrics")  # polled by monitors: counted, not logged line by line
ERROR_BY_STATUS = {400: "bad_request", 401: "unauthorized", 404: "not_found", 413: "too_large"}
ERROR_BY_STATUS |= {403: "bad_origin", 408: "slow_client", 415: "unsupported_media_type", 421: "bad_host"}
ERROR_BY_STATUS |= {499: "cancelled", 502: "backend_error", 503: "busy", 504: "timeout", 500: "internal"}
_SANE_ID = re.compile(r"[A-Za-z0-9._-]{1,64}")


class LogSink:
    """Appends JSON lines to a file, or to stderr for "-"; whole lines, one writer at a time."""

    def __init__(self, target: str = "-"):
        self.target = target
        self._lock = threading.Lock()
        if target != "-":
            Path(target).parent.mkdir(parents=True, exist_ok=True)

    def write(self, record: dict) -> None:
        line = json.dumps(record, ensure_ascii=False, default=str) + "\n"
        with self._lock:
            if self.target == "-":
                sys.stderr.write(line)
                sys.stderr.flush()
            else:
                with open(self.target, "a", encoding="utf-8") as f:
                    f.write(line)


def new_request_id() -> str:
    return uuid.uuid4().hex[:16]


def now_iso() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds")


class RequestLogger:
    """A turn observer: the turn's part of its request's log line (or its own line, outside a server)."""

    name = "request log"

    def __init__(self, sink: LogSink, content: bool = False):
        self.sink = sink
        self.content = content

    def __call__(self, line: TurnTimeline) -> None:
        record = turn_record(line, self.content)
        if line.request is not None:  # the server's middleware writes the request's line
            line.request["turn"] = record
            return
        self.sink.write(
            {
                "ts": now_iso(),
                "request_id": new_request_id(),
                "kind": "turn",
                "ts_unix": round(time.time(), 3),
            }
            | record
        )


def turn_record(line: TurnTimeline, content: bool = False) -> dict:
    """What a log line says of one turn."""
    tr = line.trace
    out: dict = {"status": line.status, "total_s": round(line.total_s, 4)}
    if line.first_token is not None:
        out["ttft_s"] = round(line.first_token - line.start, 4)
    if line.outcome in ("error", "crashed"):
        out["error_class"] = error_class(line.error)
        out["error_type"] = type(line.error).__name__ if line.error is not None else None
    if tr is None:
        return out
    out |= {"conversation_id": tr.conversation_id, "turn": tr.turn, "model": tr.model.get("id", "")}
    out["intent"] = tr.intent
    out["timings"] = {k: v for k, v in tr.timings.items() if v is not None}
    out["tokens"] = {k: v for k, v in tr.tokens.items() if k != "generations"}
    out["images"] = len(tr.images)
    out["tools"] = [
        {"tool": c.tool, "ok": c.ok, "ms": round(c.duration_s * 1000, 1), "cache_hit": c.cache_hit}
        | ({} if c.ok else {"error": "timeout" if "timed out" in (c.error or "") else "error"})
        for c in tr.tool_calls
    ]
    if content:
        out["question"], out["answer"] = tr.question, tr.answer
        out["image_sha256"] = [r.sha256 for r in tr.images]
        if tr.error:
            out["error"] = tr.error
    return out


class RequestMiddleware:
    """ASGI middleware in front of a server: a request id (the client's `X-Request-Id` when it is sane,
    echoed back), the request's log record in `REQUEST` while it runs (the turn it serves adds its part),
    then `measured(route, status, total_s, first_byte_s)` (the server's HTTP metrics) and one log line."""

    def __init__(self, app, sink: LogSink | None, measured=None):
        self.app, self.sink, self.measured = app, sink, measured

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        headers = dict(scope.get("headers") or [])
        given = headers.get(b"x-request-id", b"").decode("latin-1")
        rid = given if _SANE_ID.fullmatch(given) else new_request_id()
        route = scope.get("path", "") if scope.get("path", "") in ROUTES else "other"
        record: dict = {"ts": now_iso(), "request_id": rid, "kind": "http", "method": scope.get("method")}
        record["route"] = route
        parent = headers.get(b"traceparent")
        if parent:
            record["traceparent"] = parent.decode("latin-1")[:128]
        t0, seen = time.perf_counter(), {"status": None, "first": None}

        async def send_noting(msg):
            if msg["type"] == "http.response.start":
                seen["status"] = msg["status"]
                msg = {**msg, "headers": [*msg.get("headers", []), (b"x-request-id", rid.encode())]}
            elif msg["type"] == "http.response.body" and seen["first"] is None and msg.get("body"):
                seen["first"] = time.perf_counter()
            await send(msg)

        token = REQUEST.set(record)
        try:
            await self.app(scope, receive, send_noting)
        except Exception as e:
            seen["status"] = seen["status"] or 500
            record["error_type"] = type(e).__name__
            raise
        finally:
            REQUEST.reset(token)
            self._done(record, route, seen, t0)

    def _done(self, record: dict, route: str, seen: dict, t0: float) -> None:
        status = seen["status"] or 499  # no response started: the client left first
        total = time.perf_counter() - t0
        if self.measured is not None:
            self.measured(route, status, total, None if seen["first"] is None else seen["first"] - t0)
        if self.sink is None or route in QUIET_ROUTES:
            return
        record.pop("traceparent", None)
        record |= {"status": status, "total_s": round(total, 4)}
        if seen["first"] is not None:
            record["first_byte_s"] = round(seen["first"] - t0, 4)
        turn = record.get("turn") or {}
        error = ERROR_BY_STATUS.get(status, f"http_{status}") if status >= 400 else turn.get("error_class")
        if error:
            record["error_class"] = error
        self.sink.write(record)
