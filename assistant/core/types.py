"""The contract between the model core and everything above it.

Everything here is plain data or a Protocol, so the assistant loop, the budget planner and the front
ends can be written (and tested) against it without loading a model.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Protocol

from tools.evidence import Box
from tools.images import ImageRef

if TYPE_CHECKING:
    import torch

# Message format: Hugging Face chat messages. Content is a string or a list of parts
# {"type": "text", "text": ...} / {"type": "image"}; the i-th {"type": "image"} part consumes images[i].
Message = dict


@dataclass(frozen=True)
class ImageInput:
    """How one image enters the model this turn: the image, optionally a crop and a resolution cap.

    The budget planner produces these; the engine turns them into pixels. `key()` is what the
    embedding cache keys on together with the model id and processor settings.
    """

    ref: ImageRef
    crop: Box | None = None  # region of the original image (pixels) to show instead of the whole image
    max_side: int | None = None  # downscale so the longer side is at most this (fewer AnyRes tiles)

    def key(self) -> str:
        crop = "" if self.crop is None else ",".join(f"{v:.1f}" for v in self.crop)
        return f"{self.ref.sha256}|crop={crop}|max_side={self.max_side or ''}"


@dataclass
class GenerationConfig:
    max_new_tokens: int = 256  # upper bound on generated tokens
    temperature: float = 0.0  # 0 means greedy decoding (deterministic)
    top_p: float = 1.0  # nucleus sampling when temperature > 0
    stop: list[str] = field(default_factory=list)  # stop strings, checked on decoded text
    # >1 makes tokens already generated in this answer less likely (small models loop when greedy);
    # 1.0 is off. Deterministic: it only reshapes logits before the argmax.
    repetition_penalty: float = 1.0


@dataclass
class GenerationStats:
    """What one generation cost; filled in as the stream runs, complete when it ends."""

    tokens_in: int = 0  # prompt tokens, image tokens included
    image_tokens: int = 0  # tokens standing for images (prefix family) or image states (cross-attention)
    tokens_out: int = 0
    kv_reused_tokens: int = 0  # prompt tokens whose keys/values came from the KV cache
    embed_cache_hits: int = 0
    embed_cache_misses: int = 0
    vision_s: float = 0.0  # decode + preprocess + vision tower + projector
    prefill_s: float = 0.0
    ttft_s: float = 0.0  # request start -> first generated token
    total_s: float = 0.0
    decode_tps: float = 0.0  # tokens/s after the first token

    def to_dict(self) -> dict:
        return {k: (round(v, 4) if isinstance(v, float) else v) for k, v in asdict(self).items()}


class GenerationStream(Protocol):
    """Iterate to get text chunks as they are decoded; `text` and `stats` are complete afterwards."""

    text: str
    stats: GenerationStats

    def __iter__(self) -> Iterator[str]: ...


@dataclass
class Prompt:
    """A prompt as token ids, ready for an adapter to prefill (the model core's working form)."""

    ids: list[int]  # token ids, image placeholders expanded for the prefix family
    keys: list  # per-position identity for KV reuse: token id, or "img:<key>" at image positions
    image_tokens: int = 0
    images: list[ImageInput] = field(default_factory=list)
    spans: list[tuple[int, int]] = field(default_factory=list)  # prefix: (first position, length) per image
    features: torch.Tensor | None = None  # prefix: features of the image positions being prefilled
    cross_states: torch.Tensor | None = None  # cross-attention: vision states of all images (full prefill)
    cross_mask: torch.Tensor | None = None  # cross-attention: [1, seq, images, tiles]
    ready: dict = field(default_factory=dict)  # image key -> vision tensors computed while preparing


class Engine(Protocol):
    model_id: str  # hub id or local path
    revision: str  # commit hash or content hash of the weights ("" when unknown)
    family: str  # "prefix" | "cross_attention" | "text" | "remote"
    device: str  # "cpu" | "cuda" | "remote"
    # one line for banners and stderr: what runs, where, and whether it is an offline stand-in
    description: str
    # Whether its image input is real vision: False for text-only models and for the offline stand-ins
    # built here (random vision towers: they take image tokens but cannot see). A draft about what no
    # tool can check is shown, marked unverified, only from an engine that sees (assistant/answer.py).
    sees_images: bool

    @property
    def supports_images(self) -> bool: ...

    def image_token_count(self, image: ImageInput) -> int:
        """Tokens (or cross-attended states) this image would cost, without running the vision tower."""
        ...

    def stream(
        self,
        messages: list[Message],
        images: list[ImageInput],
        gen: GenerationConfig | None = None,
        session_id: str | None = None,
    ) -> GenerationStream:
        """Generate the assistant's reply to `messages`. With a `session_id`, the KV cache of the
        longest common prefix with that session's previous call is reused."""
        ...

    def drop_session(self, session_id: str) -> None: ...
