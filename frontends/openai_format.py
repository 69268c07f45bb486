"""The OpenAI chat-completions wire format: parse and check a request, build responses and SSE chunks.

Kept apart from the HTTP server so it can be read (and tested) without one. A request becomes a
`ChatRequest` whose messages carry decoded `ImageRef`s; anything malformed raises `BadInputError`
with a message naming the field, which the server returns as an OpenAI-style 400 error.
Images come as `image_url` parts holding data URLs; remote http(s) URLs are refused unless the
server was started with `--allow-remote-images`, and never any other scheme (no `file://`).
Before any image is decoded, the pixels the request would decode (read from the headers) are summed
and bounded, so a few tiny files declaring huge images cannot take the server's memory.
A conversation id names a file on the server: only a safe character set and length pass.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
import time
import uuid
from dataclasses import dataclass, field
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from assistant.trace import SAFE_CONVERSATION_ID
from tools.errors import BadInputError
from tools.images import ImageRef, pages_pixels

PART_TYPES = ("text", "image_url")


@dataclass
class RequestLimits:
    """What one request may carry; the server refuses anything larger with a clear message."""

    max_request_bytes: int = 32 * 1024 * 1024  # whole HTTP body (base64 images make bodies large)
    max_images: int = 8  # images across all messages of one request
    max_image_bytes: int = 16 * 1024 * 1024  # one decoded image file
    max_request_pixels: int = 48_000_000  # pixels all images of one request decode to, together
    max_new_tokens: int = 1024  # cap on max_tokens
    allow_remote_images: bool = (
        False  # fetch http(s) image URLs (off: a server should not fetch what clients name)
    )
    remote_image_timeout_s: float = 10.0  # per remote image fetch


# ---- request schema (pydantic does the type checking; messages come out as field paths) -----------


class _ImageURL(BaseModel):
    url: str
    detail: str | None = None


class _TextPart(BaseModel):
    type: Literal["text"]
    text: str


class _ImagePart(BaseModel):
    type: Literal["image_url"]
    image_url: _ImageURL | str


class _Message(BaseModel):
    model_config = ConfigDict(extra="ignore")
    role: Literal["system", "developer", "user", "assistant", "tool"]
    content: str | list[Annotated[_TextPart | _ImagePart, Field(discriminator="type")]] | None = None


class _StreamOptions(BaseModel):
    include_usage: bool = False


class _Request(BaseModel):
    model_config = ConfigDict(extra="ignore")
    model: str = "default"
    messages: list[_Message] = Field(min_length=1)
    stream: bool = False
    stream_options: _StreamOptions | None = None
    max_tokens: int | None = Field(default=None, ge=1)
    max_completion_tokens: int | None = Field(default=None, ge=1)
    temperature: float | None = Field(default=None, ge=0.0, le=2.0)
    top_p: float | None = Field(default=None, gt=0.0, le=1.0)
    stop: str | list[str] | None = None
    n: int | None = Field(default=None, ge=1, le=1)
    seed: int | None = None
    conversation_id: str | None = None  # extension: continue a server-side chat (checked below)


@dataclass
class Turn:
    """One message of the request with its images decoded (images in the order they appeared)."""

    role: str
    text: str
    images: list[ImageRef] = field(default_factory=list)
    # Interleaving of text and images as HF chat parts: {"type": "text", "text"} / {"type": "image"}.
    parts: list[dict] = field(default_factory=list)


@dataclass
class ChatRequest:
    model: str
    turns: list[Turn]
    stream: bool = False
    include_usage: bool = False
    max_tokens: int | None = None
    temperature: float | None = None
    top_p: float | None = None
    stop: list[str] = field(default_factory=list)
    conversation_id: str | None = None

    @property
    def images(self) -> list[ImageRef]:
        return [im for t in self.turns for im in t.images]

    @property
    def question(self) -> Turn:
        """The last user message: what this request asks."""
        return next(t for t in reversed(self.turns) if t.role == "user")


def parse_request(body: bytes | dict, limits: RequestLimits) -> ChatRequest:
    """Bytes or a JSON object -> `ChatRequest`, images decoded; raises BadInputError naming the field."""
    if isinstance(body, (bytes, bytearray)):
        if len(body) > limits.max_request_bytes:
            raise BadInputError(f"request body is {len(body)} bytes; the limit is {limits.max_request_bytes}")
        try:
            body = json.loads(body)
        except (ValueError, UnicodeDecodeError) as e:
            raise BadInputError(f"request body is not valid JSON: {e}") from None
        except RecursionError:
            raise BadInputError("request body is not usable JSON: it nests too deeply") from None
    if not isinstance(body, dict):
        raise BadInputError("request body must be a JSON object")
    _check_parts(body)
    try:
        req = _Request.model_validate(body)
    except ValidationError as e:
        err = e.errors()[0]
        where = ".".join(str(p) for p in err["loc"]) or "request"
        raise BadInputError(f"{where}: {err['msg']}") from None
    except RecursionError:
        raise BadInputError("request body nests too deeply") from None
    cid = req.conversation_id
    if cid is not None and not SAFE_CONVERSATION_ID.fullmatch(cid):
        raise BadInputError(
            "conversation_id: use 1-128 letters, digits, '.', '_' or '-', starting with a letter or digit"
        )
    turns, n_images = [], 0
    for i, m in enumerate(req.messages):
        turn = Turn(role="system" if m.role == "developer" else m.role, text="")
        content = (
            [_TextPart(type="text", text=m.content)] if isinstance(m.content, str) else (m.content or [])
        )
        for j, part in enumerate(content):
            if isinstance(part, _TextPart):
                turn.text += part.text
                turn.parts.append({"type": "text", "text": part.text})
                continue
            n_images += 1
            if n_images > limits.max_images:
                raise BadInputError(f"too many images: the limit is {limits.max_images} per request")
            url = part.image_url if isinstance(part.image_url, str) else part.image_url.url
            turn.images.append(load_image_url(url, limits, where=f"messages.{i}.content.{j}"))
            turn.parts.append({"type": "image"})
        turns.append(turn)
    if not any(t.role == "user" for t in turns):
        raise BadInputError("messages: there is no user message to answer")
    _decode_within_budget([im for t in turns for im in t.images], limits)
    stop = [req.stop] if isinstance(req.stop, str) else list(req.stop or [])
    max_tokens = req.max_completion_tokens or req.max_tokens
    if max_tokens is not None and max_tokens > limits.max_new_tokens:
        raise BadInputError(
            f"max_tokens: {max_tokens} is above this server's limit of {limits.max_new_tokens}"
        )
    return ChatRequest(
        model=req.model,
        turns=turns,
        stream=req.stream,
        include_usage=bool(req.stream_options and req.stream_options.include_usage),
        max_tokens=max_tokens,
        temperature=req.temperature,
        top_p=req.top_p,
        stop=stop,
        conversation_id=req.conversation_id,
    )


_DATA_URL = re.compile(
    r"^data:(?P<mime>[\w.+-]+/[\w.+-]+)?(?P<params>(;[\w.+-]+=[^;,]*)*)(?P<b64>;base64)?,", re.I
)


def load_image_url(url: str, limits: RequestLimits, where: str = "image_url") -> ImageRef:
    """A data URL (always) or an http(s) URL (only when allowed) -> a decoded, checked ImageRef."""
    url = url.strip()
    m = _DATA_URL.match(url)
    if m:
        mime = (m.group("mime") or "").lower()
        if mime and not mime.startswith("image/"):
            raise BadInputError(f"{where}: data URL holds {mime}, not an image")
        if not m.group("b64"):
            raise BadInputError(f"{where}: image data URLs must be base64 (data:image/png;base64,...)")
        payload = url[m.end() :]
        if len(payload) * 3 // 4 > limits.max_image_bytes:
            raise BadInputError(f"{where}: image is larger than the limit of {limits.max_image_bytes} bytes")
        try:
            data = base64.b64decode(payload, validate=True)
        except (binascii.Error, ValueError):
            raise BadInputError(f"{where}: the data URL is not valid base64") from None
        ref = ImageRef(data=data, source=f"{where} (data URL)")
    elif url.lower().startswith(("http://", "https://")):
        if not limits.allow_remote_images:
            raise BadInputError(
                f"{where}: remote image URLs are refused by this server; send the image as a data URL "
                "(data:image/png;base64,...) or start the server with --allow-remote-images"
            )
        ref = ImageRef(data=_fetch(url, limits, where), source=url)
    else:
        scheme = url.split(":", 1)[0][:20] if ":" in url else "(none)"
        raise BadInputError(f"{where}: unsupported image URL scheme {scheme!r}; use a data URL")
    ref.decoded_pixels()  # the header alone: an unreadable or oversized declaration is refused here
    return ref


def _check_parts(body: dict) -> None:
    """Name the part and the accepted types when a message part's type is unknown (pydantic would
    report the first branch of the content union instead: "content.str: should be a valid string")."""
    messages = body.get("messages")
    for i, m in enumerate(messages if isinstance(messages, list) else []):
        content = m.get("content") if isinstance(m, dict) else None
        for j, part in enumerate(content if isinstance(content, list) else []):
            kind = part.get("type") if isinstance(part, dict) else None
            if kind not in PART_TYPES:
                shown = (
                    repr(kind)[:40] if isinstance(part, dict) else f"a {type(part).__name__}, not an object"
                )
                raise BadInputError(
                    f"messages.{i}.content.{j}: part type {shown} is not accepted; accepted: {', '.join(PART_TYPES)}"
                )


def _decode_within_budget(images: list[ImageRef], limits: RequestLimits) -> None:
    """Sum what the images will decode to (headers only), refuse above the limit, then decode them
    (now, so a corrupt image is refused with the request rather than mid-answer)."""
    sizes = [pages_pixels(im) for im in images]  # a TIFF's pages, a GIF's frames: each read (tools.images)
    if sum(sizes) > limits.max_request_pixels:
        raise BadInputError(
            f"images: together they decode to {sum(sizes)} pixels ({len(images)} images); this server's "
            f"limit per request is {limits.max_request_pixels}; send fewer or smaller images"
        )
    for im in images:
        im.image  # noqa: B018


def _fetch(url: str, limits: RequestLimits, where: str) -> bytes:
    import httpx

    try:
        with httpx.stream("GET", url, timeout=limits.remote_image_timeout_s, follow_redirects=True) as r:
            if r.status_code != 200:
                raise BadInputError(f"{where}: fetching {url} gave HTTP {r.status_code}")
            buf = bytearray()
            for chunk in r.iter_bytes():
                buf += chunk
                if len(buf) > limits.max_image_bytes:
                    raise BadInputError(
                        f"{where}: {url} is larger than the limit of {limits.max_image_bytes} bytes"
                    )
            return bytes(buf)
    except httpx.HTTPError as e:
        raise BadInputError(f"{where}: cannot fetch {url}: {type(e).__name__}") from None


# ---- responses ------------------------------------------------------------------------------------


def new_id() -> str:
    return "chatcmpl-" + uuid.uuid4().hex[:24]


def usage_dict(prompt_tokens: int, completion_tokens: int) -> dict:
    return {
        "prompt_tokens": prompt_tokens,
        "completion_tokens": completion_tokens,
        "total_tokens": prompt_tokens + completion_tokens,
    }


def completion_body(
    cid: str, model: str, text: str, finish: str, usage: dict, grounding: dict | None
) -> dict:
    body = {
        "id": cid,
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": text},
                "finish_reason": finish,
                "logprobs": None,
            }
        ],
        "usage": usage,
    }
    if grounding is not None:
        body["grounding"] = grounding  # extension: citations, claims, evidence, trace path
    return body


def chunk_body(cid: str, model: str, created: int, delta: dict, finish: str | None = None, **extra) -> dict:
    body = {
        "id": cid,
        "object": "chat.completion.chunk",
        "created": created,
        "model": model,
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish, "logprobs": None}],
    }
    body.update(extra)
    return body


def sse(obj: dict | str) -> bytes:
    """One server-sent event; the stream ends with `data: [DONE]` as OpenAI's does."""
    data = obj if isinstance(obj, str) else json.dumps(obj, ensure_ascii=False)
    return f"data: {data}\n\n".encode()


def error_body(message: str, kind: str = "invalid_request_error", code: str | None = None) -> dict:
    return {"error": {"message": message, "type": kind, "param": None, "code": code}}
