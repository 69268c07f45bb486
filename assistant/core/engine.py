"""The local engine: one prefill + decode loop over any supported family, with both caches inside.

A turn: the family adapter renders the chat and gets image features (embedding cache first); the KV
cache of the session's previous turn is cropped to the longest common prefix of per-position keys;
only the rest is prefilled; then tokens are decoded one at a time into a transformers DynamicCache
and streamed as text. Greedy decoding is deterministic. What it cost lands in `GenerationStats`.
"""

from __future__ import annotations

import contextlib
import contextvars
import dataclasses
import hashlib
import threading
import time
import weakref
from collections.abc import Iterator

import torch

from assistant.core.cache import FORMAT_VERSION, EmbeddingCache, KVSessionCache
from assistant.core.config import ModelConfig
from assistant.core.decoding import Decoder, checked_once
from assistant.core.families import ADAPTERS, Prompt
from assistant.core.loader import LoadedModel
from assistant.core.types import GenerationConfig, GenerationStats, ImageInput, Message
from tools.errors import BadInputError
from tools.paths import cache_dir


class Cancel:
    """A way to stop generations from another thread: a flag, and an optional deadline.

    The decode loop checks it once per token (and while waiting for the engine), so a front end whose
    client left, or whose request ran too long, frees the engine within one token's time, whatever
    thread the generation runs on. Install it around the work with `cancel_scope`.
    """

    def __init__(self, timeout_s: float | None = None):
        self.event = threading.Event()
        self.deadline = None if timeout_s is None else time.monotonic() + timeout_s

    def set(self) -> None:
        self.event.set()

    def reason(self) -> str | None:
        """Why to stop ("cancelled", "timeout"), or None to go on."""
        if self.event.is_set():
            return "cancelled"
        if self.deadline is not None and time.monotonic() > self.deadline:
            return "timeout"
        return None


_CANCEL: contextvars.ContextVar[Cancel | None] = contextvars.ContextVar("generation_cancel", default=None)


@contextlib.contextmanager
def cancel_scope(cancel: Cancel):
    """Streams started inside this block (on this thread) stop when `cancel` says so."""
    token = _CANCEL.set(cancel)
    try:
        yield cancel
    finally:
        _CANCEL.reset(token)


class LocalStream:
    """Iterate for text chunks; afterwards `text` is the whole answer and `stats` complete."""

    def __init__(self, chunks: Iterator[str], stats: GenerationStats):
        self._chunks = chunks
        self.stats = stats
        self.text = ""
        self.token_ids: list[int] = []
        self.stopped: str | None = None  # "cancelled" / "timeout" when a Cancel ended it early

    def __iter__(self) -> Iterator[str]:
        try:
            for chunk in self._chunks:
                self.text += chunk
                yield chunk
        finally:
            # A reader that stops early (break, an exception, the iterator dropped) ends the generation
            # here and now, releasing the engine, instead of whenever the garbage collector gets to it.
            self._chunks.close()

    def consume(self) -> str:
        for _ in self:
            pass
        return self.text

    def close(self) -> None:
        """Stop generating now (the engine is freed; the session keeps what was computed)."""
        self._chunks.close()


class LocalEngine:
    """`Engine` over an in-process Hugging Face model (see assistant/core/types.py for the contract)."""

    def __init__(self, loaded: LoadedModel, cfg: ModelConfig | None = None):
        cfg = cfg or ModelConfig()
        self.loaded = loaded
        self.model = loaded.model
        self.processor = loaded.processor
        self.model_id = loaded.model_id
        self.revision = loaded.revision
        self.family = loaded.family
        self.device = loaded.device
        self.sees_images = loaded.sees_images
        quant = "" if loaded.quantization == "none" else f", {loaded.quantization}"
        self.description = f"{loaded.model_id} ({loaded.family}, {loaded.device}, {loaded.dtype}{quant})"
        if loaded.note:
            self.description += f" - {loaded.note}"
        settings = self._settings_hash()
        self.embed_cache = None
        if cfg.embed_cache_mb > 0:
            disk = cache_dir("embeddings") if cfg.embed_cache_disk else None
            self.embed_cache = EmbeddingCache(cfg.embed_cache_mb * 1024**2, disk_dir=disk)
        self.kv_cache = KVSessionCache(
            max_sessions=cfg.kv_cache_sessions, max_bytes=cfg.kv_cache_mb * 1024**2
        )
        prefix = f"{self.model_id}|{self.revision}|{settings}|v{FORMAT_VERSION}"
        self.adapter = ADAPTERS[loaded.family](self.model, self.processor, self.embed_cache, prefix)
        tok = self.adapter.tokenizer
        eos = self.model.generation_config.eos_token_id
        eos = eos if isinstance(eos, list) else [eos]
        self.eos_ids = {e for e in [*eos, tok.eos_token_id] if e is not None}
        self._lock = threading.Lock()  # one generation at a time: the model and caches are shared
        # The stream holding the lock (weakly: this must never keep it alive) and its thread.
        self._active: tuple[weakref.ref, int] | None = None
        limit = getattr(self.model.config.get_text_config(decoder=True), "max_position_embeddings", None)
        self.max_context = min(cfg.max_context, limit or cfg.max_context)
        self.decoder = Decoder(self.adapter, cfg.decode, self.max_context)
        # Raises when this transformers ignores the cache (checked once per model class and versions).
        self.cache_check_diff = checked_once(self.adapter, self.decoder, loaded.quantization)
        if self.decoder.path != "dynamic" or self.decoder.note:
            self.description += f"; {self.decoder.describe()}"

    def _settings_hash(self) -> str:
        ip = getattr(self.processor, "image_processor", None)
        blob = (
            ip.to_json_string() if ip is not None else ""
        ) + f"|{self.loaded.dtype}|{self.loaded.quantization}"
        return hashlib.sha256(blob.encode()).hexdigest()[:12]

    @property
    def supports_images(self) -> bool:
        return self.family != "text"

    def image_token_count(self, image: ImageInput) -> int:
        return self.adapter.image_token_count(image)

    def drop_session(self, session_id: str) -> None:
        self.kv_cache.drop(session_id)

    # --- the context limit ------------------------------------------------------------------------
    @property
    def tokenizer(self):
        """The model's text tokenizer: what the assistant counts a prompt's parts with to fit the context."""
        return self.adapter.tokenizer

    def count_tokens(self, messages: list[Message], images: list[ImageInput] = ()) -> int:
        """The positions these messages take against `max_context`, as `stream` counts them, without
        running the vision tower (prefix-family image tokens are counted from the image's size)."""
        n = len(self.adapter.render(messages))
        if self.family == "prefix":  # each image's one placeholder token becomes its image tokens
            n += sum(self.adapter.image_token_count(image) - 1 for image in images)
        return n

    def _check_context(self, prompt: Prompt) -> None:
        """A prompt must leave room for at least one generated token. The assistant fits its prompts
        (`assistant.window`), so this is reached only by images, a question or a caller that cannot fit."""
        if len(prompt.ids) >= self.max_context:
            raise BadInputError(
                f"the conversation is {len(prompt.ids)} tokens ({prompt.image_tokens} of them image tokens), "
                f"more than the context limit of {self.max_context}; send fewer or smaller images or a "
                "shorter question, or raise --max-context"
            )

    def stream(
        self,
        messages: list[Message],
        images: list[ImageInput],
        gen: GenerationConfig | None = None,
        session_id: str | None = None,
        ignore_eos: bool = False,
    ) -> LocalStream:
        """Stream the reply; `ignore_eos` (benchmarks) generates exactly `gen.max_new_tokens` tokens."""
        stats = GenerationStats()
        stream = LocalStream(iter(()), stats)
        gen = gen or GenerationConfig()
        stream._chunks = self._run(messages, list(images), gen, session_id, stream, ignore_eos)
        return stream

    def generate(self, messages, images=(), gen=None, session_id=None, ignore_eos=False) -> LocalStream:
        """Run to the end and return the finished stream (`.text`, `.stats`, `.token_ids`)."""
        s = self.stream(messages, list(images), gen, session_id, ignore_eos)
        s.consume()
        return s

    # --- the loop ---------------------------------------------------------------------------------
    def _run(
        self, messages, images, gen: GenerationConfig, session_id, stream: LocalStream, ignore_eos: bool
    ):
        stats = stream.stats
        cancel = _CANCEL.get()
        active = self._active
        if active is not None and active[1] == threading.get_ident() and active[0]() is not None:
            # This thread left an earlier stream unfinished; waiting for it would wait forever.
            active[0]().close()
        with self._hold(cancel, stream):
            if stream.stopped:
                return
            self._active = (weakref.ref(stream), threading.get_ident())
            t0 = time.perf_counter()
            prompt = self.adapter.prepare(messages, images, stats)
            self._check_context(prompt)
            gen = dataclasses.replace(
                gen, max_new_tokens=min(gen.max_new_tokens, self.max_context - len(prompt.ids))
            )
            stats.tokens_in = len(prompt.ids)
            stats.image_tokens = prompt.image_tokens
            cache, start = self._reuse(prompt, session_id)
            stats.kv_reused_tokens = start
            self.adapter.materialize(prompt, start, stats)
            with torch.inference_mode():
                logits = self.adapter.prefill(prompt, start, cache)
            if self.adapter.device.type == "cuda":
                torch.cuda.synchronize(self.adapter.device)  # prefill_s is GPU time, not launch time
            stats.prefill_s = time.perf_counter() - t0 - stats.vision_s
            fed: list[int] = []  # generated tokens whose keys/values are in the cache
            detok = _Detokenizer(self.adapter.tokenizer, gen.stop)
            eos = set() if ignore_eos else self.eos_ids
            t_first = None
            try:
                while True:
                    token = self._pick(logits, gen, stream.token_ids)
                    if t_first is None:
                        t_first = time.perf_counter()
                        stats.ttft_s = t_first - t0
                    if token in eos:
                        break
                    stream.token_ids.append(token)
                    stats.tokens_out += 1
                    chunk = detok.add(stream.token_ids)
                    if chunk:
                        yield chunk
                    if detok.stopped or stats.tokens_out >= gen.max_new_tokens:
                        break
                    if cancel is not None and (why := cancel.reason()):
                        stream.stopped = why  # the cache is consistent here: the session keeps it
                        break
                    with torch.inference_mode():
                        logits = self.decoder.step(token, prompt, cache)
                    fed.append(token)
                chunk = detok.finish(stream.token_ids)
                if chunk:
                    yield chunk
            except GeneratorExit:
                pass  # the reader stopped early: the cache is consistent between steps, keep it
            except BaseException:
                session_id = None  # a step failed midway: its cache may be half-updated, never reuse it
                raise
            finally:
                self._active = None
                t_end = time.perf_counter()
                stats.total_s = t_end - t0
                if t_first is not None and stats.tokens_out > 1:
                    stats.decode_tps = (stats.tokens_out - 1) / max(t_end - t_first, 1e-9)
                if session_id is not None:
                    keys = prompt.keys + fed
                    if self.adapter.seq_len(cache) == len(keys):
                        self.kv_cache.store(session_id, keys, cache)
                        cache = None
                if cache is not None:
                    self.decoder.release(cache)  # kept by no session: the next new turn reuses its buffers

    @contextlib.contextmanager
    def _hold(self, cancel: Cancel | None, stream: LocalStream):
        """The engine lock, released on every way out; a cancelled waiter gives up (stream.stopped)."""
        while not self._lock.acquire(timeout=0.05 if cancel is not None else -1):
            if why := cancel.reason():
                stream.stopped = why
                yield
                return
        try:
            yield
        finally:
            self._active = None
            self._lock.release()

    def _reuse(self, prompt: Prompt, session_id: str | None):
        """(cache, start): the session's cache cropped to the common prefix, or a fresh one and 0."""
        if session_id is not None:
            cache, n = self.kv_cache.lookup(session_id, prompt.keys)
            n = min(n, len(prompt.ids) - 1)  # at least one position must run to give logits
            if cache is not None and n > 0 and self.adapter.crop(cache, n):
                return cache, n
        return self.decoder.new_cache(), 0

    @torch.inference_mode()
    def _pick(self, logits: torch.Tensor, gen: GenerationConfig, generated: list[int]) -> int:
        logits = logits[0].float()
        if self.adapter.image_token_id is not None and self.adapter.image_token_id < logits.shape[-1]:
            logits[self.adapter.image_token_id] = float("-inf")  # the model must never write an image slot
        if gen.repetition_penalty != 1.0 and generated:
            # As in transformers (CTRL paper), but over this answer's tokens only, not the prompt.
            seen = torch.tensor(sorted(set(generated)), device=logits.device)
            picked = logits[seen]
            p = gen.repetition_penalty
            logits[seen] = torch.where(picked > 0, picked / p, picked * p)
        if gen.temperature <= 0:
            return int(torch.argmax(logits))
        probs = torch.softmax(logits / gen.temperature, dim=-1)
        if gen.top_p < 1.0:
            sorted_p, order = torch.sort(probs, descending=True)
            keep = torch.cumsum(sorted_p, dim=-1) - sorted_p < gen.top_p
            probs = torch.zeros_like(probs).scatter(0, order[keep], sorted_p[keep])
        return int(torch.multinomial(probs / probs.sum(), 1))


class _Detokenizer:
    """Incremental text from growing token ids: holds back a partial UTF-8 character and any tail
    that could be the start of a stop string, so streamed chunks never need to be taken back."""

    def __init__(self, tokenizer, stops: list[str]):
        self.tokenizer = tokenizer
        self.stops = [s for s in stops if s]
        self.holdback = max((len(s) for s in self.stops), default=1) - 1
        self.emitted = ""
        self.stopped = False

    def _text(self, ids: list[int]) -> str:
        text = self.tokenizer.decode(ids, skip_special_tokens=True)
        cut = _first_stop(text, self.stops)
        if cut is not None:
            self.stopped = True
            return text[:cut]
        return text

    def _emit(self, ready: str) -> str:
        if len(ready) > len(self.emitted) and ready.startswith(self.emitted):
            chunk, self.emitted = ready[len(self.emitted) :], ready
            return chunk
        return ""

    def add(self, ids: list[int]) -> str:
        text = self._text(ids)
        if not self.stopped:
            text = text[: len(text) - self.holdback] if self.holdback else text
            text = text.rstrip("\ufffd")
        return self._emit(text)

    def finish(self, ids: list[int]) -> str:
        return self._emit(self._text(ids))


def _first_stop(text: str, stops: list[str]) -> int | None:
    found = [i for i in (text.find(s) for s in stops if s) if i >= 0]
    return min(found) if found else None
