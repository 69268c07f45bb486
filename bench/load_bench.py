"""`bench load`: many clients at once against the API, and a check that nobody gets another's answer.

    python launch.py bench load [--concurrency 8] [--requests N] [--url http://HOST:PORT]

Each request carries its own rendered sign (a word and a number no other request has) and asks what
it says. Figures: throughput, latency p50/p95/p99 of answered requests, how many were turned away
(503 + Retry-After: the queue is bounded), errors, the server's peak memory (from `/health`), and
per request whether its answer and its OCR evidence hold its own sign and none of the others'
(a leak between concurrent requests). Without --url a local `launch.py serve` runs the offline model.
With `--half-open N`, N connections that send half a request header and wait (a slow-client attack:
each one the server closes is opened again) are held during the run, and `/health` is timed once a
second beside it: the figures then say how the real clients fared under the flood.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import io
import json
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

WORDS = ["KIWI", "MANGO", "LEMON", "OLIVE", "PLUM", "GRAPE", "PEAR", "MELON", "FIG", "LIME", "DATE", "APPLE"]


def eprint(*parts) -> None:
    print(*parts, file=sys.stderr, flush=True)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--concurrency", type=int, default=8, help="clients at once (default: 8)")
    parser.add_argument(
        "--requests", type=int, default=None, help="requests in all (default: 2 x concurrency)"
    )
    parser.add_argument("--url", default=None, help="a running `serve` (default: start one locally)")
    parser.add_argument("--api-key", default=None, help="the server's API key, if it wants one")
    parser.add_argument(
        "--model", default="smollm2-llava", help="model of the local server (default: smollm2-llava)"
    )
    parser.add_argument("--max-waiting", type=int, default=16, help="local server: queue bound (default: 16)")
    parser.add_argument(
        "--timeout", type=float, default=900.0, help="per-request client timeout, s (default: 900)"
    )
    parser.add_argument(
        "--half-open",
        type=int,
        default=0,
        help="hold this many half-sent requests open during the run, a slow-client attack (default: 0)",
    )
    parser.add_argument(
        "--json", dest="json_out", default="bench-results/load.json", help="where to write JSON"
    )


def sign(i: int) -> tuple[str, str, str]:
    """(text, the number that identifies it, data URL) of request i's sign."""
    from synthetic.render import render_sign

    number = str(1000 + 37 * i)
    text = f"{WORDS[i % len(WORDS)]} {number}"
    buf = io.BytesIO()
    render_sign(seed=i, text=text).image.save(buf, "PNG")
    return text, number, "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()


def _one(client, url: str, i: int, data_url: str, headers: dict) -> dict:
    body = {
        "model": "default",
        "messages": [
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "What does the sign say?"},
                    {"type": "image_url", "image_url": {"url": data_url}},
                ],
            }
        ],
    }
    t0 = time.perf_counter()
    try:
        r = client.post(url + "/v1/chat/completions", json=body, headers=headers)
    except Exception as e:  # a client-side timeout or a dropped connection is a result too
        return {
            "i": i,
            "status": 0,
            "latency_s": time.perf_counter() - t0,
            "error": f"{type(e).__name__}: {e}",
        }
    out = {"i": i, "status": r.status_code, "latency_s": time.perf_counter() - t0}
    data = r.json() if r.headers.get("content-type", "").startswith("application/json") else {}
    if r.status_code == 200:
        g = data.get("grounding") or {}
        out["answer"] = data["choices"][0]["message"]["content"]
        out["evidence"] = " ".join(e.get("text", "") for e in g.get("evidence") or [])
    else:
        out["error"] = (data.get("error") or {}).get("message", r.text[:200])
        out["retry_after"] = r.headers.get("retry-after")
    return out


def _judge(results: list[dict], numbers: list[str]) -> None:
    """Own: the request's number is in its answer / evidence. Leak: another request's number is."""
    for res in results:
        if res["status"] != 200:
            continue
        own = numbers[res["i"]]
        others = [n for j, n in enumerate(numbers) if j != res["i"]]
        res["own_answer"] = own in res["answer"]
        res["own_evidence"] = own in res["evidence"]
        res["leaked"] = [n for n in others if n in res["answer"] or n in res["evidence"]]


def _percentile(xs: list[float], q: int) -> float:
    """Linear-interpolated percentile (numpy's default), 0 for no values."""
    if len(xs) < 2:
        return round(xs[0], 3) if xs else 0.0
    return round(statistics.quantiles(xs, n=100, method="inclusive")[q - 1], 3)


class _ServeProcess:
    """`launch.py serve` with the offline model on a free local port, as its own process (a benchmark
    drives the product from outside, as a client would; it never imports the front ends)."""

    def __init__(self, args, ready_timeout_s: float = 900.0):
        import socket

        import httpx

        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        self.url = f"http://127.0.0.1:{port}"
        traces = tempfile.mkdtemp(prefix="bench-load-traces-")
        launch = Path(__file__).resolve().parents[1] / "launch.py"
        cmd = [sys.executable, str(launch), "serve", "--model", args.model, "--tools", "ocr"]
        cmd += ["--trace-dir", traces, "--max-new-tokens", "24", "--max-waiting", str(args.max_waiting)]
        self.proc = subprocess.Popen([*cmd, "--port", str(port)])
        deadline = time.monotonic() + ready_timeout_s
        while True:  # the model loads before the clock starts
            if self.proc.poll() is not None:
                raise RuntimeError(
                    f"`launch.py serve` exited with {self.proc.returncode} before it was ready"
                )
            try:
                if httpx.get(self.url + "/health", timeout=5).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                self.close()
                raise RuntimeError(f"`launch.py serve` not ready after {ready_timeout_s:.0f} s")
            time.sleep(0.5)

    def close(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


class _HalfOpen:
    """`n` connections holding half a request header, on a thread: each one the server closes is opened
    again at once; meanwhile `/health` is timed once a second."""

    def __init__(self, url: str, n: int):
        import threading
        from urllib.parse import urlsplit

        parts = urlsplit(url)
        self.addr, self.n = (parts.hostname, parts.port or 80), n
        self.url = url
        self.closed = 0
        self.health_s: list[float] = []
        self.stop = threading.Event()
        self.threads = [threading.Thread(target=f, daemon=True) for f in (self._hold, self._probe)]

    def _open(self):
        import socket

        s = socket.create_connection(self.addr, timeout=5)
        s.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nHost: " + self.addr[0].encode() + b"\r\nContent-Ty")
        s.setblocking(False)
        return s

    def _hold(self) -> None:
        import selectors

        sel = selectors.DefaultSelector()
        for _ in range(self.n):
            sel.register(self._open(), selectors.EVENT_READ)
        while not self.stop.is_set():
            for key, _ in sel.select(timeout=0.2):
                sel.unregister(key.fileobj)
                key.fileobj.close()
                self.closed += 1
                try:
                    sel.register(self._open(), selectors.EVENT_READ)
                except OSError:
                    pass
        for key in list(sel.get_map().values()):
            key.fileobj.close()

    def _probe(self) -> None:
        import httpx

        while not self.stop.wait(1.0):
            t = time.perf_counter()
            try:
                httpx.get(self.url + "/health", timeout=10)
                self.health_s.append(time.perf_counter() - t)
            except httpx.HTTPError:
                self.health_s.append(10.0)

    def __enter__(self):
        for t in self.threads:
            t.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        for t in self.threads:
            t.join(10)


def run(args) -> int:
    import httpx

    from tools.errors import BadInputError

    if args.concurrency < 1:
        raise BadInputError("--concurrency must be at least 1")
    n = args.requests or 2 * args.concurrency
    signs = [sign(i) for i in range(n)]
    server = None if args.url else _ServeProcess(args)
    url = (args.url or server.url).rstrip("/")
    headers = {"Authorization": f"Bearer {args.api_key}"} if args.api_key else {}
    try:
        health0 = httpx.get(url + "/health", headers=headers, timeout=30).json()
        eprint(f"load: {n} requests, {args.concurrency} at a time, against {url}")
        flood = _HalfOpen(url, args.half_open) if args.half_open else contextlib.nullcontext()
        t0 = time.perf_counter()
        with (
            flood,
            httpx.Client(timeout=args.timeout) as client,
            ThreadPoolExecutor(args.concurrency) as pool,
        ):
            futures = [pool.submit(_one, client, url, i, s[2], headers) for i, s in enumerate(signs)]
            results = [f.result() for f in futures]
        wall = time.perf_counter() - t0
        health1 = httpx.get(url + "/health", headers=headers, timeout=30).json()
    finally:
        if server is not None:
            server.close()
    _judge(results, [s[1] for s in signs])
    ok = [r for r in results if r["status"] == 200]
    lat = [r["latency_s"] for r in ok]
    figures = {
        "requests": n,
        "concurrency": args.concurrency,
        "answered": len(ok),
        "busy_503": sum(1 for r in results if r["status"] == 503),
        "errors": sum(1 for r in results if r["status"] not in (200, 503)),
        "wall_s": round(wall, 2),
        "throughput_rps": round(len(ok) / wall, 4) if wall else 0.0,
        "latency_p50_s": _percentile(lat, 50),
        "latency_p95_s": _percentile(lat, 95),
        "latency_p99_s": _percentile(lat, 99),
        "own_sign_in_answer": sum(1 for r in ok if r["own_answer"]),
        "own_sign_in_evidence": sum(1 for r in ok if r["own_evidence"]),
        "leaks": sum(1 for r in ok if r["leaked"]),
        "server_rss_mb_before": (health0.get("memory") or {}).get("rss_mb"),
        "server_peak_rss_mb": (health1.get("memory") or {}).get("peak_rss_mb"),
    }
    if args.half_open:
        figures["half_open_held"] = args.half_open
        figures["half_open_closed_by_server"] = flood.closed
        figures["health_p50_s"] = _percentile(flood.health_s, 50)
        figures["health_max_s"] = round(max(flood.health_s, default=0.0), 3)
    for k, v in figures.items():
        print(f"{k:>22}: {v}")
    out = Path(args.json_out)
    out.parent.mkdir(parents=True, exist_ok=True)
    report = {
        "figures": figures,
        "machine": {"platform": platform.platform(), "python": platform.python_version()},
        "url": args.url or "local serve",
        "results": [{k: v for k, v in r.items() if k != "evidence"} for r in results],
    }
    out.write_text(json.dumps(report, indent=2))
    eprint(f"wrote {out}")
    return 0 if not figures["leaks"] and not figures["errors"] else 1
