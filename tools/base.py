"""The tool protocol: small declarative classes, a registry, a runner with timeouts, and a result cache.

A tool states `name`, `description`, typed `inputs` (JSON-schema-like) and `version`, and does its work
in `forward(image, **args) -> list[Finding]`. The schema is checked when the class is defined, so a
broken tool fails at import. Heavy state (a model, a detector) loads in `setup()`, on first use.

The runner executes calls concurrently, each bounded by a timeout; a tool that raises or times out
becomes a `ToolResult` with `error` set (an observation for the trace), never an exception.
Results are cached by (image content hash, tool name, tool version, canonical arguments); a call can be
prefetched (started ahead of the turn that will ask for it, which then joins it instead of repeating it).
"""

from __future__ import annotations

import concurrent.futures as cf
import hashlib
import json
import math
import os
import pickle
import signal
import sys
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar

from tools.errors import BadInputError, ToolError, UserError
from tools.evidence import Finding
from tools.images import ImageRef

# JSON-schema types a tool input may declare. "box" is [x0, y0, x1, y1] in original-image pixels.
INPUT_TYPES = {"string", "integer", "number", "boolean", "box", "array"}


class Tool:
    """Base class for tools. Subclasses set the class attributes and implement `forward`."""

    name: ClassVar[str]
    description: ClassVar[str]
    # {"param": {"type": ..., "description": ..., "default"?: ..., "enum"?: [...], "minimum"?, "maximum"?}}
    inputs: ClassVar[dict[str, dict]] = {}
    version: ClassVar[str] = "1"
    evidence_prefix: ClassVar[str] = ""  # "ocr" -> ids "ocr:1"...; defaults to the tool name
    timeout_s: ClassVar[float] = 30.0

    def __init_subclass__(cls, **kw):
        super().__init_subclass__(**kw)
        for attr in ("name", "description"):
            if not isinstance(cls.__dict__.get(attr, getattr(cls, attr, None)), str):
                raise TypeError(f"tool class {cls.__name__} must define a string `{attr}`")
        if not cls.name.isidentifier():
            raise TypeError(f"tool name {cls.name!r} must be an identifier")
        for pname, spec in cls.inputs.items():
            if not isinstance(spec, dict) or "type" not in spec or "description" not in spec:
                raise TypeError(f"tool {cls.name}: input {pname!r} needs 'type' and 'description'")
            if spec["type"] not in INPUT_TYPES:
                raise TypeError(f"tool {cls.name}: input {pname!r} has unknown type {spec['type']!r}")
            if "default" in spec and spec["default"] is not None:
                _check_value(cls.name, pname, spec, spec["default"])
        if "forward" not in cls.__dict__ and not any("forward" in b.__dict__ for b in cls.__mro__[1:-2]):
            raise TypeError(f"tool {cls.name} must implement forward()")

    def __init__(self):
        self._ready = False
        self._setup_lock = threading.Lock()

    def setup(self) -> None:
        """Load heavy state. Called once, on first use."""

    def forward(self, image: ImageRef, **args) -> list[Finding]:
        raise NotImplementedError

    def validate(self, args: dict) -> dict:
        """Check arguments against the schema and fill defaults; raises BadInputError with the reason."""
        unknown = set(args) - set(self.inputs)
        if unknown:
            raise BadInputError(
                f"tool {self.name}: unknown argument(s) {sorted(unknown)}; takes {sorted(self.inputs)}"
            )
        out = {}
        for pname, spec in self.inputs.items():
            if pname in args and args[pname] is not None:
                out[pname] = _check_value(self.name, pname, spec, args[pname])
            elif "default" in spec:
                out[pname] = spec["default"]
            else:
                raise BadInputError(f"tool {self.name}: missing required argument {pname!r}")
        return out

    def __call__(self, image: ImageRef, **args) -> list[Finding]:
        args = self.validate(args)
        if not self._ready:
            with self._setup_lock:
                if not self._ready:
                    self.setup()
                    self._ready = True
        return self.forward(image, **args)

    @classmethod
    def spec(cls) -> dict:
        """The tool as an OpenAI-style JSON function spec (for models that call tools)."""
        props = {"image": {"type": "integer", "description": "Index of the image (1 = first image)."}}
        required = []
        for pname, s in cls.inputs.items():
            p = {k: v for k, v in s.items() if k in ("description", "enum", "minimum", "maximum", "default")}
            if s["type"] == "box":
                p.update(type="array", items={"type": "number"}, minItems=4, maxItems=4)
                p["description"] = s["description"] + " [x0, y0, x1, y1] in image pixels."
            else:
                p["type"] = s["type"]
            props[pname] = p
            if "default" not in s:
                required.append(pname)
        return {
            "type": "function",
            "function": {
                "name": cls.name,
                "description": cls.description,
                "parameters": {"type": "object", "properties": props, "required": required},
            },
        }


def _check_value(tool: str, pname: str, spec: dict, value):
    t = spec["type"]
    where = f"tool {tool}: argument {pname!r}"
    if t == "box":
        if isinstance(value, str):
            try:
                value = [float(v) for v in value.split(",")]
            except ValueError:
                raise BadInputError(f"{where} must be x0,y0,x1,y1, got {value!r}") from None
        if not isinstance(value, (list, tuple)) or len(value) != 4:
            raise BadInputError(f"{where} must be 4 numbers [x0, y0, x1, y1], got {value!r}")
        try:
            x0, y0, x1, y1 = (float(v) for v in value)
        except (TypeError, ValueError):
            raise BadInputError(f"{where} must be numbers, got {value!r}") from None
        if not (x1 > x0 and y1 > y0):
            raise BadInputError(f"{where} must have x1 > x0 and y1 > y0, got {value!r}")
        return (x0, y0, x1, y1)
    ok = {
        "string": lambda v: isinstance(v, str),
        "integer": lambda v: isinstance(v, int) and not isinstance(v, bool),
        "number": lambda v: isinstance(v, (int, float)) and not isinstance(v, bool),
        "boolean": lambda v: isinstance(v, bool),
        "array": lambda v: isinstance(v, (list, tuple)),
    }[t](value)
    if not ok:
        raise BadInputError(f"{where} must be {t}, got {value!r}")
    if "enum" in spec and value not in spec["enum"]:
        raise BadInputError(f"{where} must be one of {spec['enum']}, got {value!r}")
    if "minimum" in spec and value < spec["minimum"]:
        raise BadInputError(f"{where} must be >= {spec['minimum']}, got {value!r}")
    if "maximum" in spec and value > spec["maximum"]:
        raise BadInputError(f"{where} must be <= {spec['maximum']}, got {value!r}")
    return list(value) if t == "array" else value


class ToolRegistry:
    """Explicit registration: nothing registers itself by being imported."""

    def __init__(self):
        self._tools: dict[str, Tool] = {}

    def register(self, tool: Tool) -> Tool:
        if not isinstance(tool, Tool):
            raise TypeError(f"expected a Tool instance, got {type(tool).__name__}")
        if tool.name in self._tools:
            raise ValueError(f"a tool named {tool.name!r} is already registered")
        self._tools[tool.name] = tool
        return tool

    def get(self, name: str) -> Tool:
        try:
            return self._tools[name]
        except KeyError:
            raise BadInputError(f"unknown tool {name!r}; available: {sorted(self._tools)}") from None

    def __contains__(self, name: str) -> bool:
        return name in self._tools

    def names(self) -> list[str]:
        return list(self._tools)

    def specs(self) -> list[dict]:
        return [t.spec() for t in self._tools.values()]


def call_key(tool: Tool, args: dict) -> str:
    """Canonical string for (tool name, version, arguments): part of the cache key and evidence identity."""
    return json.dumps({"tool": tool.name, "v": tool.version, "args": args}, sort_keys=True, default=list)


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


class ToolCache:
    """LRU of tool findings keyed by (image hash, call key); optionally mirrored to a directory on disk."""

    def __init__(self, max_entries: int = 2048, disk_dir: str | Path | None = None):
        self.max_entries = max_entries
        self.disk_dir = Path(disk_dir) if disk_dir else None
        self._mem: OrderedDict[str, list[Finding]] = OrderedDict()
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    @staticmethod
    def key(image_sha: str, ckey: str) -> str:
        return hashlib.sha256(f"{image_sha}\n{ckey}".encode()).hexdigest()

    def get(self, key: str) -> list[Finding] | None:
        with self._lock:
            if key in self._mem:
                self._mem.move_to_end(key)
                self.hits += 1
                return self._mem[key]
        if self.disk_dir is not None:
            path = self.disk_dir / key[:2] / f"{key}.json"
            if path.exists():
                try:
                    found = [Finding.from_dict(d) for d in json.loads(path.read_text())]
                except (OSError, ValueError, KeyError):
                    found = None  # a torn or stale file is a miss, not an error
                if found is not None:
                    self._put_mem(key, found)
                    with self._lock:
                        self.hits += 1
                    return found
        with self._lock:
            self.misses += 1
        return None

    def __contains__(self, key: str) -> bool:
        """Whether `key` is cached (memory or disk), without counting a hit or a miss."""
        with self._lock:
            if key in self._mem:
                return True
        return self.disk_dir is not None and (self.disk_dir / key[:2] / f"{key}.json").exists()

    def put(self, key: str, findings: list[Finding]) -> None:
        self._put_mem(key, findings)
        if self.disk_dir is not None:
            path = self.disk_dir / key[:2] / f"{key}.json"
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(f".{threading.get_ident()}.tmp")
            tmp.write_text(json.dumps([f.to_dict() for f in findings]))
            tmp.replace(path)  # atomic: readers never see half a file

    def _put_mem(self, key: str, findings: list[Finding]) -> None:
        with self._lock:
            self._mem[key] = findings
            self._mem.move_to_end(key)
            while len(self._mem) > self.max_entries:
                self._mem.popitem(last=False)


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
