"""What keeps the API server alive in front of the routes: the API key, the origin of a request and a
counted body (`Guard`), each model's turn-taking with a bounded queue (`Gate`), and the process's memory
for `/health`. What keeps it alive below the routes, on the connections themselves, is in
`frontends/api_conn.py`.
"""

from __future__ import annotations

import contextlib
import hmac
import ipaddress
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
    """ASGI wrapper in front of the app: the API key, where the request comes from, then the body,
    counted as it arrives.

    The key is checked before a byte of the body is read. Without a key, any web page the user opens
    could make the browser post to this server: so a request must then name this server in its `Host`
    (a DNS-rebinding page names its own domain), come from no foreign `Origin`, and a body must be
    `application/json` (what a page can send without asking the server first is text/plain, a form, or
    a blob with no type). The body is read whole here, at most `max_bytes` of it whatever the headers
    say (a chunked upload has no Content-Length), and handed to the app from memory; above the limit
    the answer is 413 and the rest is never read.
    """

    def __init__(
        self,
        app,
        max_bytes: int,
        api_key: str | None = None,
        host: str = "127.0.0.1",
        allowed_hosts: tuple[str, ...] = (),
    ):
        self.app = app
        self.max_bytes = max_bytes
        self.api_key = api_key
        self.hosts = HostCheck(host, allowed_hosts)

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        headers = dict(scope.get("headers") or [])
        if self.api_key:
            given = headers.get(b"authorization", b"")
            if not hmac.compare_digest(given, f"Bearer {self.api_key}".encode()):
                body = fmt.error_body("missing or wrong API key", "authentication_error")
                return await _send_json(send, 401, body)
        else:
            refused = self.hosts.refusal(headers, scope["method"])
            if refused:
                return await _send_json(send, refused[0], fmt.error_body(refused[1], code=refused[2]))
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


_LOOPBACK_NAMES = ("localhost", "127.0.0.1", "::1")


class HostCheck:
    """Which `Host` (and `Origin`) names this server answers to without a key: the address it is bound
    to, `localhost` and the loopback addresses when bound to loopback, any IP address when bound to all
    interfaces (an address is never a rebinding page's origin), and the names given by --allowed-host
    (`*`: any)."""

    def __init__(self, bound: str, allowed: tuple[str, ...] = ()):
        self.bound = _name(bound)
        self.allowed = {_name(a) for a in allowed}
        self.any = "*" in allowed
        ip = _ip(self.bound)
        self.loopback = self.bound == "localhost" or (ip is not None and ip.is_loopback)
        self.wildcard = ip is not None and ip.is_unspecified

    def allows(self, name: str) -> bool:
        name = _name(name)
        if self.any or name in self.allowed or name == self.bound:
            return True
        if self.loopback and (name in _LOOPBACK_NAMES or (_ip(name) is not None and _ip(name).is_loopback)):
            return True
        return self.wildcard and (name == "localhost" or _ip(name) is not None)

    def refusal(self, headers: dict, method: str) -> tuple[int, str, str] | None:
        """(status, message, code) when a keyless request may come from another site, else None."""
        host = headers.get(b"host", b"").decode("latin-1")
        if not self.allows(_host_name(host)):
            return (
                421,
                f"Host {host[:100]!r} is not this server's; a server without an API key answers only its "
                "own address (start it with --allowed-host NAME to add a name)",
                "bad_host",
            )
        origin = headers.get(b"origin")
        if origin is not None:  # "null": a sandboxed frame or a file, no page of this server's
            name = _host_name(origin.decode("latin-1").partition("://")[2])
            if origin == b"null" or not self.allows(name):
                return (
                    403,
                    f"requests from the web page at {origin[:100].decode('latin-1')!r} are refused",
                    "bad_origin",
                )
        if method not in ("GET", "HEAD", "OPTIONS"):
            kind = headers.get(b"content-type", b"").decode("latin-1").split(";")[0].strip().lower()
            if kind != "application/json":
                return (
                    415,
                    f"Content-Type {kind or '(none)'!r} is refused: send the body as application/json",
                    "unsupported_media_type",
                )
        return None


def _host_name(host: str) -> str:
    """`example.org:8000` -> `example.org`; `[::1]:8000` -> `::1`."""
    host = host.strip().split("/")[0]
    if host.startswith("["):
        return host[1:].partition("]")[0]
    return host.rpartition(":")[0] if host.count(":") == 1 else host


def _name(name: str) -> str:
    return name.strip().strip("[]").rstrip(".").lower()


def _ip(name: str):
    try:
        return ipaddress.ip_address(name)
    except ValueError:
        return None


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
