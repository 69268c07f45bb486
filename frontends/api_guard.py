"""What keeps the API server alive in front of the routes: the API key and a counted body (`Guard`),
each model's turn-taking with a bounded queue (`Gate`), and the process's memory for `/health`.
"""

from __future__ import annotations

import contextlib
import hmac
import json
import math
import threading
import time
from pathlib import Path

from assistant.core.engine import Cancel
from frontends import openai_format as fmt
from frontends.api_backends import Cancelled
from tools.errors import UserError


class Busy(UserError):
    """The model's queue is full, or a request waited longer than the bound: 503 with Retry-After."""

    def __init__(self, message: str, retry_after_s: int):
        super().__init__(message)
        self.retry_after_s = retry_after_s


class Gate:
    """One model's turn-taking: one request runs, a bounded number wait, none waits without end."""

    def __init__(self, max_waiting: int):
        self.max_waiting = max_waiting
        self._model = threading.Lock()
        self._count = threading.Lock()
        self.waiting = 0
        self.running = 0
        self.served = 0
        self.avg_run_s = 5.0  # running mean of run times, for Retry-After

    def retry_after(self) -> int:
        return max(1, min(300, math.ceil(self.avg_run_s * (self.waiting + 1))))

    def check_room(self) -> None:
        if self.waiting >= self.max_waiting:
            raise Busy(
                f"the server is busy: {self.waiting} requests already wait for this model; retry later",
                self.retry_after(),
            )

    def enter(self, cancel: Cancel, timeout_s: float) -> None:
        with self._count:
            self.check_room()
            self.waiting += 1
        try:
            deadline = time.monotonic() + timeout_s
            while not self._model.acquire(timeout=0.05):
                if cancel.event.is_set():
                    raise Cancelled
                if time.monotonic() > deadline:
                    raise Busy(
                        f"the server is busy: this request could not start within {timeout_s:g} s; retry later",
                        self.retry_after(),
                    )
            self.running = 1
        finally:
            with self._count:
                self.waiting -= 1

    def leave(self, run_s: float) -> None:
        self.served += 1
        self.avg_run_s = 0.8 * self.avg_run_s + 0.2 * run_s
        self.running = 0
        self._model.release()

    def status(self) -> dict:
        return {"running": self.running, "waiting": self.waiting, "max_waiting": self.max_waiting}


class Guard:
    """ASGI wrapper in front of the app: the API key, then the body, counted as it arrives.

    The key is checked before a byte of the body is read. The body is read whole here, at most
    `max_bytes` of it whatever the headers say (a chunked upload has no Content-Length), and handed to
    the app from memory; above the limit the answer is 413 and the rest is never read.
    """

    def __init__(self, app, max_bytes: int, api_key: str | None = None):
        self.app = app
        self.max_bytes = max_bytes
        self.api_key = api_key

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        headers = dict(scope.get("headers") or [])
        if self.api_key:
            given = headers.get(b"authorization", b"")
            if not hmac.compare_digest(given, f"Bearer {self.api_key}".encode()):
                body = fmt.error_body("missing or wrong API key", "authentication_error")
                return await _send_json(send, 401, body)
        declared = headers.get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            return await _send_json(send, 413, too_large_body(self.max_bytes))
        chunks, seen = [], 0
        while True:
            msg = await receive()
            if msg["type"] == "http.disconnect":
                return
            chunk = msg.get("body", b"")
            seen += len(chunk)
            if seen > self.max_bytes:
                return await _send_json(send, 413, too_large_body(self.max_bytes))
            chunks.append(chunk)
            if not msg.get("more_body", False):
                break
        pending = [{"type": "http.request", "body": b"".join(chunks), "more_body": False}]

        async def replay():
            return pending.pop() if pending else await receive()

        await self.app(scope, replay, send)


def too_large_body(max_bytes: int) -> dict:
    return fmt.error_body(
        f"request body is larger than this server's limit of {max_bytes} bytes", code="too_large"
    )


async def _send_json(send, status: int, body: dict) -> None:
    data = json.dumps(body).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(data)).encode())]
    if status == 413:
        headers.append((b"connection", b"close"))  # the rest of the body is not read
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": data})


def memory() -> dict:
    """This process's resident memory now and at its peak, MiB (Linux; peak only elsewhere)."""
    import resource

    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    now = None
    with contextlib.suppress(OSError, ValueError, IndexError):
        status = Path("/proc/self/status").read_text()
        now = int(status.split("VmRSS:")[1].split()[0]) / 1024
    return {"rss_mb": None if now is None else round(now, 1), "peak_rss_mb": round(peak, 1)}
