"""A remote back end: any OpenAI-compatible chat server (vLLM, SGLang, this project's `serve --raw`) as an Engine.

Only generation moves to the server. Tools, the image-token budget, context assembly and verification
stay in this process, exactly as with a local model; the engine turns the HF chat messages the loop
builds into OpenAI chat messages (each `{"type": "image"}` part becomes an `image_url` data URL of the
matching `ImageInput`, cropped and downscaled as the budget planner asked), streams the reply and
fills `GenerationStats` from what the server reports.
"""

from __future__ import annotations

import base64
import io
import time
from collections.abc import Iterator
from urllib.parse import urlsplit, urlunsplit

from assistant.core.types import GenerationConfig, GenerationStats, ImageInput, Message
from tools.errors import BackendError, BadInputError

# What one image costs on the server when it cannot tell us ahead of time: LLaVA-1.5 at 336 px
# (24 x 24 patches). The budget planner needs some number; the real count comes back in `usage`.
DEFAULT_IMAGE_TOKENS = 576


def normalize_base_url(url: str) -> str:
    """`http://host:8000` -> `http://host:8000/v1`; a URL that already names a path is kept as given."""
    parts = urlsplit(url.strip())
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise BadInputError(f"not an http(s) URL of an OpenAI-compatible server: {url!r}")
    path = parts.path.rstrip("/") or "/v1"
    return urlunsplit((parts.scheme, parts.netloc, path, "", ""))


def image_data_url(image: ImageInput) -> str:
    """The image as the model should see it (upright, cropped, downscaled) in a PNG data URL."""
    im = image.ref.image
    if image.crop is not None:
        x0, y0, x1, y1 = (round(v) for v in image.crop)
        im = im.crop((x0, y0, x1, y1))
    if image.max_side and max(im.size) > image.max_side:
        im = im.copy()
        im.thumbnail((image.max_side, image.max_side))
    buf = io.BytesIO()
    im.save(buf, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def to_openai_messages(messages: list[Message], images: list[ImageInput]) -> list[dict]:
    """HF chat messages -> OpenAI chat messages; the i-th image part consumes images[i]."""
    out, used = [], 0
    for m in messages:
        content = m.get("content")
        if isinstance(content, str) or content is None:
            out.append({"role": m["role"], "content": content or ""})
            continue
        parts = []
        for part in content:
            if part.get("type") == "image":
                if used >= len(images):
                    raise BadInputError(
                        f"messages have more image parts than images given: images: {len(images)}"
                    )
                parts.append({"type": "image_url", "image_url": {"url": image_data_url(images[used])}})
                used += 1
            elif part.get("type") == "text":
                parts.append({"type": "text", "text": part.get("text", "")})
        # Text-only content goes as a plain string: some servers' chat templates only take strings.
        if all(p["type"] == "text" for p in parts):
            out.append({"role": m["role"], "content": "".join(p["text"] for p in parts)})
        else:
            out.append({"role": m["role"], "content": parts})
    if used != len(images):
        raise BadInputError(f"image parts and images do not match: parts: {used}, images: {len(images)}")
    return out


class RemoteStream:
    """One streamed completion; iterate for text chunks, then read `text` and `stats`."""

    def __init__(self, chunks, started: float, image_tokens: int):
        self._chunks = chunks
        self._t0 = started
        self.text = ""
        self.stats = GenerationStats(image_tokens=image_tokens)
        self.finish_reason: str | None = None

    def __iter__(self) -> Iterator[str]:
        import openai

        first: float | None = None
        try:
            for chunk in self._chunks:
                if chunk.usage is not None:
                    self.stats.tokens_in = chunk.usage.prompt_tokens or 0
                    self.stats.tokens_out = chunk.usage.completion_tokens or 0
                for choice in chunk.choices:
                    self.finish_reason = choice.finish_reason or self.finish_reason
                    piece = choice.delta.content if choice.delta else None
                    if piece:
                        if first is None:
                            first = time.perf_counter()
                            self.stats.ttft_s = first - self._t0
                        self.text += piece
                        yield piece
        except openai.APIError as e:
            raise BackendError(f"remote model server failed mid-stream: {e}") from None
        finally:
            close = getattr(self._chunks, "close", None)
            if close is not None:
                close()
        end = time.perf_counter()
        self.stats.total_s = end - self._t0
        if not self.stats.tokens_out and self.text:
            self.stats.tokens_out = max(1, len(self.text) // 4)  # server sent no usage: a rough estimate
        if first is not None and self.stats.tokens_out > 1 and end > first:
            self.stats.decode_tps = (self.stats.tokens_out - 1) / (end - first)


class RemoteEngine:
    """The Engine contract over an OpenAI-compatible `/v1/chat/completions` endpoint."""

    family = "remote"
    device = "remote"
    revision = ""

    def __init__(
        self,
        base_url: str,
        model: str | None = None,
        api_key: str | None = None,
        timeout_s: float = 600.0,
        image_tokens: int = DEFAULT_IMAGE_TOKENS,
        supports_images: bool | None = None,
    ):
        import openai

        self.base_url = normalize_base_url(base_url)
        # The server does not check the key when it was started without one; the client insists on some value.
        self._client = openai.OpenAI(
            base_url=self.base_url, api_key=api_key or "none", timeout=timeout_s, max_retries=1
        )
        self._model = model if model not in (None, "", "auto") else None
        self._image_tokens = image_tokens
        # None: ask the server; this project's `serve` says per model, others (vLLM) are assumed to take images.
        self._supports_images = supports_images
        self._listed: dict[str, dict] | None = None

    @property
    def model_id(self) -> str:
        if self._model is None:
            self._model = self._first_model()
        return self._model

    @property
    def description(self) -> str:
        return f"remote model {self.model_id} at {self.base_url} (tools and verification run locally)"

    @property
    def supports_images(self) -> bool:
        if self._supports_images is None:
            entry = self._models().get(self.model_id, {})
            self._supports_images = bool(entry.get("supports_images", True))
        return self._supports_images

    @property
    def sees_images(self) -> bool:
        """A server's model is taken to see what it is sent, unless its /v1/models entry says not."""
        if self._supports_images is not None and self._listed is None:
            return self._supports_images  # the caller said; the server is not asked
        return self.supports_images and bool(self._models().get(self.model_id, {}).get("sees_images", True))

    def _models(self) -> dict[str, dict]:
        """{model id: its /v1/models entry}, asked once."""
        import openai

        if self._listed is None:
            try:
                self._listed = {
                    m.id: {**(m.model_extra or {}), "id": m.id} for m in self._client.models.list()
                }
            except openai.APIConnectionError:
                raise BackendError(f"cannot reach the model server at {self.base_url}") from None
            except openai.APIError as e:
                raise BackendError(f"model server at {self.base_url} refused to list models: {e}") from None
        return self._listed

    def list_models(self) -> list[str]:
        return list(self._models())

    def _first_model(self) -> str:
        models = self.list_models()
        if not models:
            raise BackendError(f"the model server at {self.base_url} lists no models")
        return models[0]

    def image_token_count(self, image: ImageInput) -> int:
        return self._image_tokens

    def stream(
        self,
        messages: list[Message],
        images: list[ImageInput],
        gen: GenerationConfig | None = None,
        session_id: str | None = None,
    ) -> RemoteStream:
        import openai

        gen = gen or GenerationConfig()
        if images and not self.supports_images:
            raise BadInputError(f"the remote model {self.model_id} takes no images")
        payload = to_openai_messages(messages, images)
        kwargs = {"max_tokens": gen.max_new_tokens, "temperature": gen.temperature}
        if gen.temperature > 0:
            kwargs["top_p"] = gen.top_p
        if gen.stop:
            kwargs["stop"] = gen.stop[:4]  # the OpenAI API takes at most four stop strings
        t0 = time.perf_counter()
        try:
            chunks = self._client.chat.completions.create(
                model=self.model_id,
                messages=payload,
                stream=True,
                stream_options={"include_usage": True},
                **kwargs,
            )
        except openai.APIConnectionError:
            raise BackendError(f"cannot reach the model server at {self.base_url}") from None
        except openai.APIStatusError as e:
            raise BackendError(
                f"model server at {self.base_url} answered {e.status_code}: {_detail(e)}"
            ) from None
        return RemoteStream(chunks, t0, image_tokens=self._image_tokens * len(images))

    def drop_session(self, session_id: str) -> None:
        """Nothing to drop: servers such as vLLM keep their own prefix cache, keyed on the prompt."""


def _detail(e) -> str:
    body = getattr(e, "body", None)
    if isinstance(body, dict):
        err = body.get("error", body)
        if isinstance(err, dict):
            return str(err.get("message", err))
        return str(err)
    return str(e)
