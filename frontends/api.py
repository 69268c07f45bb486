"""An OpenAI-compatible HTTP API over the assistant: `/v1/chat/completions` (plain and SSE) and `/v1/models`.

Two kinds of model sit behind a name:
- an `AssistantBackend` answers like the UI does: tools run on the request's images, the answer is
  verified, and the response carries an extra `grounding` field (citations, claims, abstained, evidence,
  tool calls, timings, trace path). Earlier messages of the request become the conversation's history;
  a `conversation_id` field (an extension) continues a conversation kept on the server instead;
- an `EngineBackend` (`serve --raw`) passes the messages straight to the model, as vLLM would, so another
  assistant can use this server as its remote back end while keeping tools and verification local.

Generation runs on a worker thread, one request per model at a time (engines are not re-entrant); the
event loop only moves chunks. A client that goes away stops its generation at the next token.
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
import threading
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, StreamingResponse

from frontends import openai_format as fmt
from frontends.api_backends import AssistantBackend, Cancelled, EngineBackend, Outcome  # noqa: F401 - re-exported
from frontends.openai_format import ChatRequest, RequestLimits
from tools.errors import BackendError, BadInputError, ModelLoadError, UserError


@dataclass
class ModelHub:
    """Named backends, built on first use; `default` names the first."""

    loaders: dict[str, Callable[[], object]] = field(default_factory=dict)
    _built: dict[str, object] = field(default_factory=dict)
    _locks: dict[str, threading.Lock] = field(default_factory=dict)
    _build_lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, name: str, loader: Callable[[], object]) -> None:
        self.loaders[name] = loader
        self._locks[name] = threading.Lock()

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
        engine = getattr(backend, "engine", None)
        takes = (
            True if isinstance(backend, AssistantBackend) else bool(getattr(engine, "supports_images", True))
        )
        return {"supports_images": takes}

    def lock(self, name: str) -> threading.Lock:
        return self._locks[name]


class UnknownModel(BadInputError):
    pass


@dataclass
class ServeConfig:
    host: str = "127.0.0.1"  # loopback unless asked: the API runs models and tools for whoever reaches it
    port: int = 8000
    api_key: str | None = None  # when set, requests must send `Authorization: Bearer KEY`
    limits: RequestLimits = field(default_factory=RequestLimits)


def _status(e: Exception) -> int:
    if isinstance(e, UnknownModel):
        return 404
    if isinstance(e, ModelLoadError):
        return 503
    if isinstance(e, BackendError):
        return 502
    return 400 if isinstance(e, UserError) else 500


def _message(e: Exception) -> str:
    if isinstance(e, UserError):
        return str(e)
    traceback.print_exception(e, file=sys.stderr)
    return f"internal error: {type(e).__name__}: {e}"


class BodyLimit:
    """ASGI middleware refusing bodies above a size before they are read whole (Content-Length or streamed)."""

    def __init__(self, app, max_bytes: int):
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            return await _send_json(send, 413, self._too_large())
        seen = 0

        async def limited():
            nonlocal seen
            msg = await receive()
            if msg["type"] == "http.request":
                seen += len(msg.get("body", b""))
                if seen > self.max_bytes:
                    raise _TooLarge
            return msg

        await self.app(scope, limited, send)  # the route turns _TooLarge into a 413

    def _too_large(self) -> dict:
        return too_large_body(self.max_bytes)


def too_large_body(max_bytes: int) -> dict:
    return fmt.error_body(
        f"request body is larger than this server's limit of {max_bytes} bytes", code="too_large"
    )


class _TooLarge(Exception):
    pass


async def _send_json(send, status: int, body: dict) -> None:
    import json

    data = json.dumps(body).encode()
    await send(
        {"type": "http.response.start", "status": status, "headers": [(b"content-type", b"application/json")]}
    )
    await send({"type": "http.response.body", "body": data})


def create_app(hub: ModelHub, cfg: ServeConfig | None = None):
    cfg = cfg or ServeConfig()
    app = FastAPI(title="grounded-vlm", docs_url=None, redoc_url=None, openapi_url=None)

    def err(e: Exception) -> JSONResponse:
        status = _status(e)
        kind = "invalid_request_error" if status < 500 else "server_error"
        return JSONResponse(fmt.error_body(_message(e), kind), status_code=status)

    @app.middleware("http")
    async def auth(request: Request, call_next):
        if cfg.api_key and request.headers.get("authorization", "") != f"Bearer {cfg.api_key}":
            return JSONResponse(
                fmt.error_body("missing or wrong API key", "authentication_error"), status_code=401
            )
        return await call_next(request)

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
        return {"status": "ok"}

    @app.post("/v1/chat/completions")
    async def chat(request: Request):
        try:
            req = fmt.parse_request(await request.body(), cfg.limits)
            name = hub.resolve(req.model)
        except _TooLarge:
            return JSONResponse(too_large_body(cfg.limits.max_request_bytes), status_code=413)
        except Exception as e:
            return err(e)
        run = _Run(hub, name, req, asyncio.get_running_loop())
        run.start()
        if not req.stream:
            outcome = await run.result()
            if isinstance(outcome, Exception):
                return err(outcome)
            usage = fmt.usage_dict(outcome.prompt_tokens, outcome.completion_tokens)
            return fmt.completion_body(
                run.id, name, outcome.text, outcome.finish_reason, usage, outcome.grounding
            )
        return StreamingResponse(
            run.sse(), media_type="text/event-stream", headers={"Cache-Control": "no-cache"}
        )

    return BodyLimit(app, cfg.limits.max_request_bytes)


class _Run:
    """One request's generation on a worker thread, feeding an asyncio queue."""

    def __init__(self, hub: ModelHub, name: str, req: ChatRequest, loop: asyncio.AbstractEventLoop):
        self.hub, self.name, self.req, self.loop = hub, name, req, loop
        self.id = fmt.new_id()
        self.queue: asyncio.Queue = asyncio.Queue()
        self.cancelled = threading.Event()

    def start(self) -> None:
        threading.Thread(target=self._work, name=f"api-{self.id[-6:]}", daemon=True).start()

    def _put(self, item) -> None:
        self.loop.call_soon_threadsafe(self.queue.put_nowait, item)

    def _emit(self, text: str) -> None:
        if self.cancelled.is_set():
            raise Cancelled
        if text:
            self._put(("chunk", text))

    def _work(self) -> None:
        try:
            backend = self.hub.get(self.name)
            with self.hub.lock(self.name):
                if self.cancelled.is_set():
                    raise Cancelled
                outcome = backend.run(self.req, self._emit if self.req.stream else (lambda _t: None))
            self._put(("done", outcome))
        except Cancelled:
            self._put(("done", Cancelled()))
        except Exception as e:  # reported to the client as an OpenAI-style error
            self._put(("done", e))

    async def result(self):
        while True:
            kind, item = await self.queue.get()
            if kind == "done":
                return item

    async def sse(self):
        created = int(time.time())
        try:
            yield fmt.sse(fmt.chunk_body(self.id, self.name, created, {"role": "assistant", "content": ""}))
            while True:
                kind, item = await self.queue.get()
                if kind == "chunk":
                    yield fmt.sse(fmt.chunk_body(self.id, self.name, created, {"content": item}))
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
            self.cancelled.set()  # the client left (or the stream ended): the worker stops at the next chunk


def serve(hub: ModelHub, cfg: ServeConfig) -> None:
    import uvicorn

    app = create_app(hub, cfg)
    with contextlib.suppress(KeyboardInterrupt):
        uvicorn.run(app, host=cfg.host, port=cfg.port, log_level="warning")
