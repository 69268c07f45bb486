"""Structured logs: one JSON line per request, for log collectors (Loki, Elasticsearch, CloudWatch).

A line has the request id, status, timings (total, time to first token, tools, generation,
verification), tokens, each tool call's outcome and time, and the error class when it failed. It holds
no question, answer, evidence text or image bytes unless `content` is on (`--log-content`); image
hashes are shown only then too. Under `serve` the HTTP middleware writes the line when the response
ends and a turn adds its part to it (`turn_record`); `ui`, `batch` and `ask` write one line per turn.
"""

from __future__ import annotations

import json
import sys
import threading
import time
import uuid
from datetime import datetime, timezone
from pathlib import Path

from assistant.metrics import error_class
from assistant.observe import TurnTimeline


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
