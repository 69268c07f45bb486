"""How the engine holds KV state and runs a decode step: cache kind, attention backend, CUDA graphs.

- Attention backend: every forward runs under `torch.nn.attention.sdpa_kernel` with flash, memory-
  efficient and math attention but not cuDNN. cuDNN's SDPA builds a new plan for every new (query,
  key) length (~2.6 ms of CPU per call on an H100), which a cached decode hits at every step: it made
  KV reuse slower than recomputing. Scoped to our calls, so nothing global changes for the user.
- Cache argument: transformers renamed `forward(past_key_values=)` to `cache=` (5.2x keeps the old name
  as a deprecated alias; 5.17 knows only the old one and silently ignores `cache=`). The name is read
  from the model's signature; `check_cache` proves at load that the cache is honoured.
- Decode path (`ModelConfig.decode`): "dynamic" (a transformers DynamicCache that grows per token),
  "static" (a StaticCache of `max_context` positions: fixed shapes, the same tokens), or "cuda-graph"
  (static, and each decode step replayed from a CUDA graph captured once per cache: the GPU no longer
  waits for Python to launch ~1,000 small kernels per token). Sessions and common-prefix cropping work
  the same on all three; a path that cannot run here falls back with the reason in `note`.
"""

from __future__ import annotations

import inspect

import torch
from torch.nn.attention import SDPBackend, sdpa_kernel

from assistant.core.types import Prompt
from tools.errors import ModelLoadError

# Not cuDNN: see the module docstring. Order is preference; SDPA picks the first that fits the inputs.
SDPA_BACKENDS = [SDPBackend.FLASH_ATTENTION, SDPBackend.EFFICIENT_ATTENTION, SDPBackend.MATH]
PATHS = ("auto", "dynamic", "static", "cuda-graph")
STATIC_FAMILIES = ("text", "prefix")  # Mllama's cross-attention layers keep image states, not positions


def attention_backends():
    """Context for a model call: SDPA without cuDNN (no plan rebuilt per sequence length)."""
    return sdpa_kernel(SDPA_BACKENDS)


def cache_argument(model) -> str:
    """The name `model.forward` takes its KV cache under: "cache" (transformers >= 5.2x) or "past_key_values"."""
    params = inspect.signature(model.forward).parameters
    for name in ("cache", "past_key_values"):
        if name in params:
            return name
    raise ModelLoadError(
        f"{type(model).__name__}.forward takes neither `cache` nor `past_key_values`; this transformers "
        "version is not supported (use transformers >= 5.17)"
    )


def _lengths(cache) -> list[torch.Tensor]:
    return [layer.cumulative_length.clone() for layer in cache.layers]


@torch.inference_mode()  # the cache's tensors were made in inference mode
def _set_lengths(cache, lengths: list[torch.Tensor]) -> None:
    for layer, n in zip(cache.layers, lengths, strict=True):
        layer.cumulative_length.copy_(n)  # in place: a captured graph holds this tensor's address


class _GraphStep:
    """One decode step of one StaticCache, captured as a CUDA graph; `run(token)` replays it."""

    def __init__(self, adapter, cache, pool):
        dev = adapter.device
        self.token = torch.zeros((1, 1), dtype=torch.long, device=dev)
        saved = _lengths(cache)
        side = torch.cuda.Stream(dev)
        side.wait_stream(torch.cuda.current_stream(dev))
        try:
            with torch.cuda.stream(side):  # warm-up off the capture stream, as the CUDA graph docs ask
                for _ in range(2):
                    eager = adapter.step_ids(self.token, cache).clone()
                    _set_lengths(cache, saved)
            torch.cuda.current_stream(dev).wait_stream(side)
            self.graph = torch.cuda.CUDAGraph()
            with torch.cuda.graph(self.graph, pool=pool):
                self.logits = adapter.step_ids(self.token, cache)
            self.graph.replay()  # capture ran nothing: one replay must give what the eager step gave
            diff = float((self.logits.float() - eager.float()).abs().max())
            scale = float(eager.float().abs().max()) + 1e-6
            if diff > 1e-2 * scale:
                raise RuntimeError(
                    f"the captured step's logits differ from the eager step's by {diff / scale:.1%}"
                )
        finally:
            _set_lengths(cache, saved)

    def run(self, token: int) -> torch.Tensor:
        self.token.fill_(token)
        self.graph.replay()
        return self.logits  # overwritten by the next replay; the engine reads it before then


class Decoder:
    """Makes the engine's KV caches and runs its decode steps on the chosen path."""

    def __init__(self, adapter, requested: str, max_len: int):
        if requested not in PATHS:
            raise ModelLoadError(f"unknown decode path {requested!r}; use one of {', '.join(PATHS)}")
        self.adapter = adapter
        self.max_len = max_len
        self.requested = requested
        cuda = adapter.device.type == "cuda"
        path = ("cuda-graph" if cuda else "dynamic") if requested == "auto" else requested
        self.note = ""
        if path != "dynamic" and adapter.family not in STATIC_FAMILIES:
            path, self.note = "dynamic", f"no static cache for the {adapter.family} family"
        elif path == "cuda-graph" and not cuda:
            path, self.note = "static", "CUDA graphs need a CUDA device"
        self.path = path
        self._pool = torch.cuda.graph_pool_handle() if path == "cuda-graph" else None
        self._spare: list = []  # static caches of finished sessionless turns, reused (with their graphs)

    def describe(self) -> str:
        text = {"dynamic": "dynamic KV", "static": "static KV", "cuda-graph": "static KV + CUDA graph"}
        return f"decode: {text[self.path]}" + (f" ({self.note})" if self.note else "")

    @torch.inference_mode()
    def new_cache(self):
        if self.path == "dynamic":
            return self.adapter.new_cache()
        if self._spare:
            cache = self._spare.pop()
            _set_lengths(cache, [torch.zeros_like(n) for n in _lengths(cache)])
            return cache
        return self.adapter.new_cache(static_len=self.max_len)

    def release(self, cache) -> None:
        """A cache no session keeps: a static one (and its graph) serves the next new conversation."""
        if self.path != "dynamic" and not self._spare:
            self._spare.append(cache)

    def step(self, token: int, prompt, cache) -> torch.Tensor:
        if self.path != "cuda-graph":
            return self.adapter.step(token, prompt, cache)
        graph = getattr(cache, "_graph_step", None)
        if graph is None:
            try:
                graph = cache._graph_step = _GraphStep(self.adapter, cache, self._pool)
            except Exception as e:  # decode still works, eagerly, and the description says why
                self.path, self.note = "static", f"CUDA graph capture failed: {str(e).splitlines()[0][:160]}"
                return self.adapter.step(token, prompt, cache)
        return graph.run(token)


def checked_once(adapter, decoder: Decoder, quantization: str) -> float:
    """`check_cache`, run once per model class, library versions, device, dtype and decode path (the
    things that decide whether the cache is honoured); later loads read the verdict from the model cache.
    Start-up on a CPU pays three forwards otherwise."""
    import hashlib
    import json

    import transformers

    from tools.paths import cache_dir

    emb = adapter.model.get_input_embeddings().weight
    what = (
        f"{type(adapter.model).__name__}|{transformers.__version__}|{torch.__version__}|{adapter.cache_arg}|"
        f"{emb.device.type}|{emb.dtype}|{quantization}|{decoder.path}|{decoder.max_len}"
    )
    stamp = cache_dir("checks") / f"kv-{hashlib.sha256(what.encode()).hexdigest()[:16]}.json"
    try:
        return float(json.loads(stamp.read_text())["rel_diff"])
    except (OSError, ValueError, KeyError):
        pass
    diff = check_cache(adapter, decoder)  # raises when the cache is not honoured: nothing is stored
    stamp.write_text(json.dumps({"checked": what, "rel_diff": diff}))
    return diff


def check_cache(adapter, decoder: Decoder) -> float:
    """Fail loudly when the KV cache is not honoured: logits of prefix + 1 token through the cache must
    equal a full prefill's. Returns the relative difference (0 when exact)."""
    import transformers

    ids = adapter.tokenizer("A cache must give what recomputing gives.", add_special_tokens=False)[
        "input_ids"
    ]
    ids = ids[:6]  # six tokens: enough to see a cache ignored, cheap at load
    prompt = Prompt(ids=ids, keys=list(ids))
    with torch.inference_mode():
        full = adapter.prefill(prompt, 0, adapter.new_cache()).float()
        cache = decoder.new_cache()
        adapter.prefill(Prompt(ids=ids[:-1], keys=list(ids[:-1])), 0, cache)
        stepped = decoder.step(ids[-1], prompt, cache).float()
    held = adapter.seq_len(cache)
    diff = float((stepped - full).abs().max()) / (float(full.abs().max()) + 1e-6)
    tol = 1e-3 if adapter.model.get_input_embeddings().weight.dtype == torch.float32 else 5e-2
    if held != len(ids) or diff > tol:
        raise ModelLoadError(
            f"the KV cache is not honoured by transformers {transformers.__version__} ({decoder.describe()}): "
            f"after {len(ids)} tokens it holds {held}, and its next-token logits differ from a full "
            f"prefill by {diff:.1%} (tolerance {tol:.1%}); install a transformers version this project "
            "supports (>= 5.17) or use --decode dynamic"
        )
    decoder.release(cache)
    return diff
