"""An OpenAI-compatible HTTP API over the assistant: `/v1/chat/completions` (plain and SSE) and `/v1/models`.

Two kinds of model sit behind a name:
- an `AssistantBackend` answers like the UI does: tools run on the request's images, the answer is
  verified, and the response carries an extra `grounding` field (citations, claims, abstained, evidence,
  tool calls, timings, the trace's file name). Earlier messages of the request become the conversation's
  history; a `conversation_id` field (an extension) continues a conversation kept on the server
  instead, by an id the server issued (each answer's `grounding.conversation_id`), never one a client chose.
  A stream's `content` is the verified answer alone; the model's unchecked draft streams before it in
  each delta's `draft` field (an extension clients ignore), so no client shows it as the answer;
- an `EngineBackend` (`serve --raw`) passes the messages straight to the model, as vLLM would, so another
  assistant can use this server as its remote back end while keeping tools and verification local.

What keeps it alive under hostile or careless clients (the guard and the gate: `api_guard.py`):
- the body is read (and counted, with or without a Content-Length) before anything else: above the
  limit the answer is 413; the API key is checked before the body is read;
- requests are parsed and their images decoded on a small worker pool, never on the event loop, so
  `/health` answers while a big request decodes;
- generation runs on a worker thread, one request per model at a time (engines are not re-entrant),
  behind a `Gate`: a bounded number may wait, and one that cannot start within `queue_timeout_s` gets
  503 with Retry-After; `/health` shows who runs and waits;
- each run carries an engine `Cancel`: a client that leaves (streaming or not) sets it and the engine
  stops within a token; its deadline (`request_timeout_s`) ends a generation that runs too long; the
  worker closes its generation itself, so the engine is freed on the thread that used it;
- a question longer than the model's context could hold is refused before it reaches the model;
- SIGTERM / Ctrl-C cancel every run: a request still in its tool stage is answered 503 at once, and
  uvicorn closes connections after `shutdown_timeout_s`.
Below the routes, `api_conn.py` bounds the connections themselves (time to send a request, how many).
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import sys
import threading
import time
import traceback
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, StreamingResponse

from assistant.core.engine import Cancel, cancel_scope
from frontends import openai_format as fmt
from frontends.api_backends import (  # noqa: F401 - re-exported
    AssistantBackend,
    Cancelled,
    EngineBackend,
    Outcome,
    UnknownConversation,
)
from frontends.api_conn import ConnectionLimits, bounded_protocol, raise_fd_limit
from frontends.api_guard import Busy, Gate, Guard, memory, too_large_body  # noqa: F401 - re-exported
from frontends.openai_format import ChatRequest, RequestLimits
from tools.errors import BackendError, BadInputError, ModelLoadError, UserError

# Request parsing and image decoding: off the event loop, and at most this many at once.
_PARSERS = ThreadPoolExecutor(max_workers=2, thread_name_prefix="api-parse")


class TimedOut(BackendError):
    """A generation ran past the request's time limit."""


@dataclass
class ModelHub:
    """Named backends, built on first use; `default` names the first. Holds each model's `Gate` and the
    runs in flight (so a shutdown can cancel them)."""

    loaders: dict[str, Callable[[], object]] = field(default_factory=dict)
    max_waiting: int = 16  # requests that may wait per model; more get 503 at once
    _built: dict[str, object] = field(default_factory=dict)
    _gates: dict[str, Gate] = field(default_factory=dict)
    _build_lock: threading.Lock = field(default_factory=threading.Lock)
    runs: set = field(default_factory=set)  # _Run objects in flight
    stopping: bool = False  # set at shutdown: cancelled runs are told so

    def add(self, name: str, loader: Callable[[], object]) -> None:
        self.loaders[name] = loader

    def names(self) -> list[str]:
        return list(self.loaders)

    def resolve(self, name: str) -> str:
        if name in ("default", "", None) and self.loaders:
            return next(iter(self.loaders))
        if name not in self.loaders:
            raise UnknownModel(f"model {name!r} is not served here; available: {[*self.loaders, 'default']}")
        return name

    def get(self, name: str):
        with self._build_lock:
            if name not in self._built:
                self._built[name] = self.loaders[name]()
            return self._built[name]

    def capabilities(self, name: str) -> dict:
        """Extension fields of a /v1/models entry, for a model already loaded: whether it takes images."""
        backend = self._built.get(self.resolve(name)) if self.loaders else None
        if backend is None:
            return {}
        engine = _engine_of(backend)
        takes = (
            True if isinstance(backend, AssistantBackend) else bool(getattr(engine, "supports_images", True))
        )
        # a stand-in with a random vision tower takes images but cannot see them (Engine.sees_images)
        return {"supports_images": takes, "sees_images": takes and bool(getattr(engine, "sees_images", True))}

    def check_text(self, name: str, req: ChatRequest) -> None:
        """Refuse, before it costs the model anything, text that could not fit its context: no
        tokenizer makes fewer than one token of `CHARS_PER_TOKEN` characters of real text."""
        context = getattr(_engine_of(self._built.get(name)), "max_context", None)
        chars = sum(len(t.text) for t in req.turns)
        if isinstance(context, int) and chars > context * CHARS_PER_TOKEN:
            raise BadInputError(
                f"messages: {chars} characters of text cannot fit this model's context of {context} tokens "
                f"(at most about {context * CHARS_PER_TOKEN} characters); send less text"
            )

    def gate(self, name: str) -> Gate:
        with self._build_lock:
            if name not in self._gates:
                self._gates[name] = Gate(self.max_waiting)
            return self._gates[name]

    def status(self) -> dict:
        return {n: self.gate(n).status() for n in self.names()}

    def cancel_all(self) -> None:
        """Stop every run in flight (shutdown): each worker notices within a token."""
        self.stopping = True
        for run in list(self.runs):
            run.cancel.set()


class UnknownModel(BadInputError):
    pass


# The most characters one token of text holds, generously (English averages about four): text longer
# than the context times this is refused without tokenising it.
CHARS_PER_TOKEN = 12


def _engine_of(backend):
    """The engine behind a backend: its own (`EngineBackend`) or its assistant's."""
    engine = getattr(backend, "engine", None)
    if engine is None and getattr(backend, "assistant", None) is not None:
        engine = getattr(backend.assistant, "engine", None)
    return engine


@dataclass
class ServeConfig:
    host: str = "127.0.0.1"  # loopback unless asked: the API runs models and tools for whoever reaches it
    port: int = 8000
    api_key: str | None = None  # when set, requests must send `Authorization: Bearer KEY`
    limits: RequestLimits = field(default_factory=RequestLimits)
    max_waiting: int = 16  # requests that may wait for a model; more get 503 with Retry-After at once
    queue_timeout_s: float = 120.0  # a request that cannot start within this gets 503 with Retry-After
    request_timeout_s: float = 600.0  # a generation running longer is stopped (its answer ends there)
    shutdown_timeout_s: float = 3.0  # on SIGTERM, open connections are closed after this long
    connections: ConnectionLimits = field(default_factory=ConnectionLimits)  # slow senders, how many
    # Without an API key, the Host names (besides the bound address) a request may name (--allowed-host)
    allowed_hosts: tuple[str, ...] = ()


def _status(e: Exception) -> int:
    if isinstance(e, Cancelled):
        return 499  # the client closed the request (nobody reads this answer)
    if isinstance(e, (UnknownModel, UnknownConversation)):
        return 404
    if isinstance(e, (ModelLoadError, Busy)):
        return 503
    if isinstance(e, TimedOut):
        return 504
    if isinstance(e, BackendError):
        return 502
    return 400 if isinstance(e, UserError) else 500


def _message(e: Exception) -> str:
    if isinstance(e, Cancelled):
        return "the request was cancelled"
    if isinstance(e, UserError):
        return str(e)
    traceback.print_exception(e, file=sys.stderr)
    return f"internal error: {type(e).__name__}: {e}"


def _error_response(e: Exception) -> JSONResponse:
    status = _status(e)
    kind = "invalid_request_error" if status < 500 else "server_error"
    headers = {"Retry-After": str(e.retry_after_s)} if isinstance(e, Busy) else None
    return JSONResponse(fmt.error_body(_message(e), kind), status_code=status, headers=headers)


def create_app(hub: ModelHub, cfg: ServeConfig | None = None, ops=None):
    """The app; `ops` (frontends/ops.py `Operations`) adds GET /metrics, /health's drift section and
    the request middleware (request ids, HTTP metrics, one log line per request)."""
    cfg = cfg or ServeConfig()
    hub.max_waiting = cfg.max_waiting
    app = FastAPI(title="grounded-vlm", docs_url=None, redoc_url=None, openapi_url=None)
    if ops is not None:
        ops.install(app, hub)

    @app.get("/v1/models")
    async def models():
        now = int(time.time())
        data = [
            {"id": n, "object": "model", "created": now, "owned_by": "grounded-vlm", **hub.capabilities(n)}
            for n in [*hub.names(), "default"]
        ]
        return {"object": "list", "data": data}

    @app.get("/health")
    async def health():
        return {"status": "ok", "models": hub.status(), "memory": memory(), **(ops.health() if ops else {})}

    @app.post("/v1/chat/completions")
    async def chat(request: Request):
        loop = asyncio.get_running_loop()
        try:
            body = await request.body()
            req = await loop.run_in_executor(_PARSERS, fmt.parse_request, body, cfg.limits)
            name = hub.resolve(req.model)
            hub.check_text(name, req)
            hub.gate(name).check_room()
        except Exception as e:
            return _error_response(e)
        run = _Run(hub, name, req, loop, cfg)
        run.start()
        started = await _until(run.started, request, run)
        if isinstance(started, Exception):
            return _error_response(started)
        if not req.stream:
            outcome = await _until(run.finished, request, run, cfg.request_timeout_s + 5)
            if isinstance(outcome, Exception):
                return _error_response(outcome)
            usage = fmt.usage_dict(outcome.prompt_tokens, outcome.completion_tokens)
            return fmt.completion_body(
                run.id, name, outcome.text, outcome.finish_reason, usage, outcome.grounding
            )
        return StreamingResponse(
            run.sse(), media_type="text/event-stream", headers={"Cache-Control": "no-cache"}
        )

    guarded = Guard(app, cfg.limits.max_request_bytes, cfg.api_key, cfg.host, cfg.allowed_hosts)
    return ops.wrap(guarded) if ops is not None else guarded


async def _until(fut: asyncio.Future, request: Request, run: _Run, timeout_s: float | None = None):
    """Wait for `fut`, cancelling the run if the client disconnects or the wait exceeds `timeout_s`."""
    deadline = None if timeout_s is None else time.monotonic() + timeout_s
    while True:
        done, _ = await asyncio.wait({fut}, timeout=0.25)
        if done:
            return fut.result()
        if run.hub.stopping:  # shutting down: a run still in its tools does not hold the client
            run.cancel.set()
            return Busy("the server is shutting down; retry later", 5)
        if await request.is_disconnected():
            run.cancel.set()
            return Cancelled()
        if deadline is not None and time.monotonic() > deadline:
            run.cancel.set()
            return TimedOut(f"the answer took longer than {run.cfg.request_timeout_s:g} s; it was stopped")


class _Run:
    """One request's generation on a worker thread, feeding an asyncio queue."""

    def __init__(
        self, hub: ModelHub, name: str, req: ChatRequest, loop: asyncio.AbstractEventLoop, cfg: ServeConfig
    ):
        self.hub, self.name, self.req, self.loop, self.cfg = hub, name, req, loop, cfg
        self.id = fmt.new_id()
        self.queue: asyncio.Queue = asyncio.Queue()
        self.started: asyncio.Future = loop.create_future()  # True, or the reason it never started
        self.finished: asyncio.Future = loop.create_future()  # the Outcome, or an exception
        self.cancel = Cancel(cfg.request_timeout_s)

    def start(self) -> None:
        self.hub.runs.add(self)
        # In a copy of the request's context: the turn's observers find the request's log record.
        work = contextvars.copy_context().run
        threading.Thread(target=work, args=(self._work,), name=f"api-{self.id[-6:]}", daemon=True).start()

    def _settle(self, fut: asyncio.Future, value) -> None:
        def set_it():
            if not fut.done():
                fut.set_result(value)

        self.loop.call_soon_threadsafe(set_it)

    def _emit(self, text: str, part: str = "content") -> None:
        """A piece of the answer (`content`) or of the unchecked draft (`draft`), for the stream."""
        if self.cancel.event.is_set():
            raise Cancelled
        if text:
            self.loop.call_soon_threadsafe(self.queue.put_nowait, ("chunk", (part, text)))

    def _work(self) -> None:
        outcome: object = None
        try:
            backend = self.hub.get(self.name)
            gate = self.hub.gate(self.name)
            gate.enter(self.cancel, self.cfg.queue_timeout_s)
            t0 = time.monotonic()
            self.cancel.deadline = t0 + self.cfg.request_timeout_s  # time in the queue does not count
            try:
                self._settle(self.started, True)
                with cancel_scope(self.cancel):
                    outcome = backend.run(self.req, self._emit if self.req.stream else (lambda *_: None))
                if self.cancel.event.is_set():
                    outcome = Cancelled()
                elif self.cancel.reason() == "timeout":
                    outcome.finish_reason = "length"
            finally:
                gate.leave(time.monotonic() - t0)
        except Exception as e:  # Cancelled, Busy, a user error: reported to the client as an OpenAI error
            outcome = e
        finally:
            if isinstance(outcome, Cancelled) and self.hub.stopping:
                outcome = Busy("the server is shutting down; retry later", 5)
            self.hub.runs.discard(self)
            self._settle(self.started, outcome)  # no-op when it started
            self._settle(self.finished, outcome)
            self.loop.call_soon_threadsafe(self.queue.put_nowait, ("done", outcome))

    async def sse(self):
        created = int(time.time())
        try:
            yield fmt.sse(fmt.chunk_body(self.id, self.name, created, {"role": "assistant", "content": ""}))
            while True:
                try:
                    kind, item = await asyncio.wait_for(self.queue.get(), timeout=0.25)
                except TimeoutError:
                    if not self.hub.stopping:
                        continue
                    kind, item = "done", Busy("the server is shutting down; retry later", 5)
                if kind == "chunk":
                    part, text = item
                    yield fmt.sse(fmt.chunk_body(self.id, self.name, created, {part: text}))
                    continue
                if isinstance(item, Exception):
                    status = _status(item)
                    kind_s = "invalid_request_error" if status < 500 else "server_error"
                    yield fmt.sse(fmt.error_body(_message(item), kind_s, code=str(status)))
                else:
                    extra = {"grounding": item.grounding} if item.grounding is not None else {}
                    yield fmt.sse(
                        fmt.chunk_body(self.id, self.name, created, {}, item.finish_reason, **extra)
                    )
                    if self.req.include_usage:
                        usage = fmt.usage_dict(item.prompt_tokens, item.completion_tokens)
                        body = fmt.chunk_body(self.id, self.name, created, {}, None, usage=usage)
                        body["choices"] = []
                        yield fmt.sse(body)
                yield fmt.sse("[DONE]")
                return
        finally:
            # The client left (or the stream ended): the engine stops within a token, and the worker
            # closes its generation and frees the model.
            self.cancel.set()


def serve(hub: ModelHub, cfg: ServeConfig, ops=None) -> None:
    """Run until SIGTERM / Ctrl-C: then every run is cancelled and connections close within
    `shutdown_timeout_s`."""
    import uvicorn

    class Server(uvicorn.Server):
        def handle_exit(self, sig, frame):
            hub.cancel_all()
            super().handle_exit(sig, frame)

    with contextlib.suppress(KeyboardInterrupt):
        Server(uvicorn_config(create_app(hub, cfg, ops), cfg)).run()


def uvicorn_config(app, cfg: ServeConfig):
    """uvicorn's settings for the server: its h11 protocol with the connection bounds of
    `cfg.connections` (the open-file limit lifted to fit them), the graceful shutdown time."""
    import uvicorn

    cap, note = raise_fd_limit(cfg.connections.max_connections)
    if note:
        print(f"serve: {note}", file=sys.stderr, flush=True)
        cfg.connections.max_connections = cap
    return uvicorn.Config(
        app,
        host=cfg.host,
        port=cfg.port,
        log_level="warning",
        http=bounded_protocol(cfg.connections),
        timeout_graceful_shutdown=cfg.shutdown_timeout_s,
    )
