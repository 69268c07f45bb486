"""Running tool calls: concurrently, each bounded by a timeout, cached, and optionally prefetched.

A tool that raises or times out becomes a `ToolResult` with `error` set (an observation for the trace),
never an exception. Results are cached (`tools/cache.py`) by (image content hash, tool name, tool
version, canonical arguments); a call can be prefetched (started ahead of the turn that will ask for
it, which then joins it instead of repeating it), on a low-priority thread or in a forked child.
"""

from __future__ import annotations

import concurrent.futures as cf
import math
import os
import pickle
import signal
import sys
import threading
import time
from dataclasses import dataclass, field

from tools.base import Tool, ToolRegistry, call_key
from tools.cache import ToolCache
from tools.errors import ToolError, UserError
from tools.evidence import Finding
from tools.images import ImageRef


@dataclass
class ToolResult:
    """One tool call as it happened: arguments, findings or error, duration, whether it came from cache."""

    tool: str
    image: str  # ImageRef.id
    args: dict
    findings: list[Finding] = field(default_factory=list)
    error: str | None = None
    duration_s: float = 0.0
    cache_hit: bool = False
    call_key: str = ""

    @property
    def ok(self) -> bool:
        return self.error is None

    def to_dict(self) -> dict:
        return {
            "tool": self.tool,
            "image": self.image,
            "args": self.args,
            "findings": [f.to_dict() for f in self.findings],
            "error": self.error,
            "duration_s": round(self.duration_s, 4),
            "cache_hit": self.cache_hit,
            "call_key": self.call_key,
        }

    @classmethod
    def from_dict(cls, d: dict) -> ToolResult:
        return cls(
            tool=d["tool"],
            image=d["image"],
            args=d["args"],
            findings=[Finding.from_dict(f) for f in d.get("findings", [])],
            error=d.get("error"),
            duration_s=d.get("duration_s", 0.0),
            cache_hit=d.get("cache_hit", False),
            call_key=d.get("call_key", ""),
        )


@dataclass
class ToolCall:
    tool: str
    image: ImageRef
    args: dict = field(default_factory=dict)


def _lower_priority(niceness: int = 10) -> None:
    """Lower the calling thread's CPU priority. Linux only: there the nice value is per thread (and
    inherited by the threads and processes it starts); elsewhere the id would name a process."""
    if sys.platform.startswith("linux"):
        try:
            os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), niceness)
        except OSError:  # not permitted here: the work runs at the usual priority
            pass


# How long past its tool's time limit a forked prefetch child may run before it is ended.
CHILD_MARGIN_S = 5


def _fork_call(tool: Tool, image: ImageRef, args: dict, low_priority: bool) -> tuple[int, int] | None:
    """Run `tool(image, **args)` in a forked child: (its pid, a pipe its pickled findings come through),
    or None where forking is not safe: without `os.fork`, or with other threads running (the child
    gets only the forking thread, and a lock another thread held, an import's among them, stays held)."""
    if not hasattr(os, "fork") or threading.active_count() > 1:
        return None
    read, write = os.pipe()
    pid = os.fork()
    if pid:
        os.close(write)
        return pid, read
    try:  # the child: it never returns
        os.close(read)
        # A child that hangs must not outlive its use: past the tool's own limit (and a margin for the
        # tool to stop itself) the default SIGALRM action ends it, and the waiting thread sees no findings.
        signal.alarm(math.ceil(tool.timeout_s) + CHILD_MARGIN_S)
        if low_priority:
            _lower_priority()
        payload = pickle.dumps(tool(image, **args))
    except BaseException:
        payload = b""  # the parent runs the call itself, and reports its failure as any call's
    try:
        with os.fdopen(write, "wb") as out:
            out.write(payload)
    finally:
        os._exit(0)


def _child_findings(pid: int, read: int) -> list[Finding] | None:
    """The findings a `_fork_call` child sent, or None when it sent none (it failed or was killed)."""
    with os.fdopen(read, "rb") as pipe:
        payload = pipe.read()  # the GIL is released while the child works
    os.waitpid(pid, 0)
    return pickle.loads(payload) if payload else None  # our own child's bytes


class ToolRunner:
    """Runs tool calls concurrently with per-call timeouts and caching; never raises for a tool's failure."""

    def __init__(self, registry: ToolRegistry, cache: ToolCache | None = None, max_workers: int = 4):
        self.registry = registry
        self.cache = cache if cache is not None else ToolCache()
        # Daemon-free pool shared by all conversations; a timed-out call keeps its worker until it ends,
        # so the pool is larger than the number of tools that usually run at once.
        self._pool = cf.ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix="tool")
        # Prefetched calls still running, by cache key, with when they started (see `prefetch`).
        self._inflight: dict[str, tuple[cf.Future, float]] = {}
        self._inflight_lock = threading.Lock()

    def prefetch(self, calls: list[ToolCall], low_priority: bool = False, fork: bool = False) -> int:
        """Start `calls` in the background and return how many started; their findings go to the cache.

        A `run` of the same call (same image, tool, version and arguments) while it is still running
        waits for it instead of starting it again, so a front end can start a turn's tools as soon as
        its images are decoded, while the model is still loading. A call that is cached, already
        running or invalid is left alone (`run` reports an invalid call as usual).

        Each call runs on a thread of its own, never the pool's: with `low_priority` that thread lowers
        its CPU priority (Linux), and what it starts inherits it (the OCR engine's threads, Tesseract),
        so on a busy machine the work it runs ahead of gives way (a one-shot process's model loading).
        With `fork`, while the process has no other thread (see `_fork_call`), each call runs in a
        forked child instead and the thread only waits for its findings: the work then no longer
        shares this process's GIL with the imports it overlaps. A child that fails leaves the call
        to its thread, which runs it here, so a failure is reported as any call's is."""
        started = []
        for c in calls:
            try:
                tool = self.registry.get(c.tool)
                args = tool.validate(c.args)
            except UserError:
                continue
            key = ToolCache.key(c.image.sha256, call_key(tool, args))
            with self._inflight_lock:
                if key in self._inflight or key in self.cache:
                    continue
                future: cf.Future = cf.Future()
                self._inflight[key] = (future, time.perf_counter())
            started.append((future, key, tool, c.image, args, low_priority))
        # Every child is forked before any waiting thread starts: a fork is only safe with one thread.
        children = [_fork_call(w[2], w[3], w[4], low_priority) if fork else None for w in started]
        for work, child in zip(started, children, strict=True):
            name = f"prefetch-{work[2].name}"
            threading.Thread(target=self._prefetched, args=(*work, child), name=name).start()
        return len(started)

    def _prefetched(self, future, key: str, tool: Tool, image: ImageRef, args: dict, low: bool, child):
        if low:
            _lower_priority()
        future.set_running_or_notify_cancel()  # nothing cancels it: a joining `run` leaves it running
        try:
            findings = _child_findings(*child) if child is not None else None
            if findings is None:  # no child, or it failed: run it here
                findings = tool(image, **args)
            # Cached before it leaves the in-flight table, so a caller always finds one or the other.
            self.cache.put(key, findings)
            future.set_result(findings)
        except BaseException as e:  # the call that joins it reports it, as for any call
            future.set_exception(e)
        finally:
            with self._inflight_lock:
                self._inflight.pop(key, None)

    def run(self, calls: list[ToolCall], timeout_s: float | None = None) -> list[ToolResult]:
        """Run calls concurrently; results come back in the order of `calls`."""
        prepared, futures = [], []
        for c in calls:
            t0 = time.perf_counter()
            try:
                tool = self.registry.get(c.tool)
                args = tool.validate(c.args)
                ckey = call_key(tool, args)  # a tool's version may depend on weights that are missing
            except UserError as e:
                prepared.append(ToolResult(c.tool, c.image.id, dict(c.args), error=str(e)))
                futures.append(None)
                continue
            res = ToolResult(tool.name, c.image.id, args, call_key=ckey)
            key = ToolCache.key(c.image.sha256, ckey)
            with self._inflight_lock:  # looked up before the cache: a finished prefetch is cached first
                inflight = self._inflight.get(key)
            hit = None if inflight is not None else self.cache.get(key)
            if hit is not None:
                res.findings, res.cache_hit = list(hit), True  # a caller's edits never reach the cache
                res.duration_s = time.perf_counter() - t0
                futures.append(None)
            elif inflight is not None:  # a prefetch of this call: wait for it, bounded from when it started
                res.cache_hit = True
                futures.append((inflight[0], tool, inflight[1], c.image, t0, True))
            else:
                futures.append((self._pool.submit(tool, c.image, **args), tool, t0, c.image, t0, False))
            prepared.append(res)
        for res, fut in zip(prepared, futures, strict=True):
            if fut is None:
                continue
            future, tool, started, image, t0, joined = fut
            limit = timeout_s if timeout_s is not None else tool.timeout_s
            remaining = max(0.0, limit - (time.perf_counter() - started))
            try:
                res.findings = list(future.result(timeout=remaining))
                if not joined:  # a prefetch caches its own findings
                    self.cache.put(ToolCache.key(image.sha256, res.call_key), res.findings)
            except cf.TimeoutError:
                if not joined:  # a prefetch is left to finish: it may still fill the cache
                    future.cancel()
                res.error = f"timed out after {limit:g} s"
            except ToolError as e:
                res.error = e.reason
            except UserError as e:  # e.g. an argument only the loaded model can check (an unknown class)
                res.error = str(e)
            except Exception as e:  # a tool's failure is an observation, not a crash
                res.error = f"{type(e).__name__}: {e}"
            res.duration_s = time.perf_counter() - t0
        return prepared

    def run_one(self, tool: str, image: ImageRef, timeout_s: float | None = None, **args) -> ToolResult:
        return self.run([ToolCall(tool, image, args)], timeout_s=timeout_s)[0]
