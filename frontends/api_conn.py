"""The API server's connections: how long a client may take to send its request, and how many
connections the server holds at once.

uvicorn bounds a header's size (h11's incomplete-event limit) and the idle time between keep-alive
requests, but not the time a request may take to arrive, nor the number of connections: a client that
sends half a header and waits holds a file descriptor for ever, and enough of them (no key needed)
exhaust the process's descriptors, after which even `/health` cannot be accepted. `BoundedH11` is
uvicorn's own h11 protocol with three bounds added:
- a request's headers must arrive within `header_timeout_s` of the connection opening (or of the
  previous response, on a kept-alive connection): trickling bytes does not extend it;
- a body must keep arriving: at most `body_timeout_s` between two of its pieces;
- at most `max_connections` are held. A connection opened beyond that closes the oldest one still
  waiting for its headers (a half-open connection costs its sender nothing, a waiting request its
  sender's time), so a real client gets in while the server is flooded; when every connection carries
  a request, the new one is closed at once.
A connection closed for a timeout gets `408 Request Timeout`. What is shed is counted and said in one
stderr line per 10 s at most, never a line per connection. `raise_fd_limit` lifts the soft limit on
open files to what the cap needs.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from dataclasses import dataclass

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol

_TIMEOUT_BODY = json.dumps(
    {
        "error": {
            "message": "the request did not arrive in time",
            "type": "timeout",
            "param": None,
            "code": "408",
        }
    }
).encode()
_TIMEOUT_RESPONSE = (
    b"HTTP/1.1 408 Request Timeout\r\ncontent-type: application/json\r\nconnection: close\r\n"
    + f"content-length: {len(_TIMEOUT_BODY)}\r\n\r\n".encode()
    + _TIMEOUT_BODY
)


@dataclass
class ConnectionLimits:
    """How long a request may take to arrive, and how many connections are held (serve's flags)."""

    header_timeout_s: float = 10.0  # a request's headers must arrive within this (--header-timeout)
    body_timeout_s: float = 30.0  # most seconds between two pieces of a body (--body-timeout)
    max_connections: int = 1000  # connections held at once (--max-connections)


class _Shed:
    """Counts of connections closed by the bounds, said at most once per 10 s."""

    def __init__(self):
        self.counts = {"header timeout": 0, "body timeout": 0, "evicted": 0, "refused": 0}
        self.said_at = 0.0

    def add(self, kind: str) -> None:
        self.counts[kind] += 1
        now = time.monotonic()
        if now - self.said_at >= 10.0:
            self.said_at = now
            shown = ", ".join(f"{k} {v}" for k, v in self.counts.items() if v)
            print(f"serve: connections closed by the limits so far: {shown}", file=sys.stderr, flush=True)


def bounded_protocol(limits: ConnectionLimits) -> type:
    """uvicorn's h11 protocol class with `limits` on time and number (give it as `Config(http=...)`)."""
    shed = _Shed()
    waiting: dict = {}  # connections still waiting for their headers, oldest first (dicts keep order)

    class BoundedH11(H11Protocol):
        _timer: asyncio.TimerHandle | None = None

        def connection_made(self, transport) -> None:
            super().connection_made(transport)
            if len(self.connections) > limits.max_connections:
                oldest = next(iter(waiting), None)
                if oldest is None:
                    shed.add("refused")
                    self.transport.abort()
                    return
                shed.add("evicted")
                oldest._close(respond=False)
            self._await_headers()

        def connection_lost(self, exc) -> None:
            self._stop_timer()
            waiting.pop(self, None)
            super().connection_lost(exc)

        def data_received(self, data: bytes) -> None:
            super().data_received(data)
            if self.transport.is_closing():
                return
            state = self.conn.their_state
            if state is h11.SEND_BODY:  # headers in, body coming: each piece re-arms the timer
                waiting.pop(self, None)
                self._arm(limits.body_timeout_s, "body timeout")
            elif state is not h11.IDLE:  # the request is complete (or the connection ends): no timer
                waiting.pop(self, None)
                self._stop_timer()

        def on_response_complete(self) -> None:
            super().on_response_complete()
            if not self.transport.is_closing() and self.conn.their_state is h11.IDLE:
                self._await_headers()  # a kept-alive connection: the next request's headers are timed

        def _await_headers(self) -> None:
            waiting[self] = None
            self._arm(limits.header_timeout_s, "header timeout")

        def _arm(self, seconds: float, kind: str) -> None:
            self._stop_timer()
            self._timer = self.loop.call_later(seconds, self._expire, kind)

        def _stop_timer(self) -> None:
            if self._timer is not None:
                self._timer.cancel()
                self._timer = None

        def _expire(self, kind: str) -> None:
            self._timer = None
            if self.transport.is_closing():
                return
            shed.add(kind)
            self._close(respond=True)

        def _close(self, respond: bool) -> None:
            self._stop_timer()
            waiting.pop(self, None)
            if respond and (self.cycle is None or not self.cycle.response_started):
                self.transport.write(_TIMEOUT_RESPONSE)
            self.transport.close()

    return BoundedH11


def raise_fd_limit(max_connections: int, spare: int = 256) -> tuple[int, str | None]:
    """Lift the soft limit on open files towards the hard one so `max_connections` fit with `spare`
    for the rest of the process. Returns the cap that fits, and a line saying so when it is lower."""
    try:
        import resource
    except ImportError:  # not on this platform: nothing to lift
        return max_connections, None
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = max_connections + spare
    if soft != resource.RLIM_INFINITY and soft < want:
        new = want if hard == resource.RLIM_INFINITY else min(want, hard)
        resource.setrlimit(resource.RLIMIT_NOFILE, (new, hard))
        soft = new
    if soft != resource.RLIM_INFINITY and soft < want:
        cap = max(16, soft - spare)
        return cap, (
            f"the open-file limit is {soft} (hard limit {hard}); --max-connections {max_connections} "
            f"needs {want}: at most {cap} connections are held"
        )
    return max_connections, None
