"""Memory estimate before loading: weights at their stored precision plus the KV cache for the context.

Counting parameters on the meta device costs no memory and no download beyond config.json, so a model
that cannot fit is refused with the numbers (OutOfMemoryBudget) instead of dying halfway through loading.
"""

from __future__ import annotations

import json
import math
import struct
from dataclasses import dataclass
from pathlib import Path

from tools.errors import OutOfMemoryBudget

GIB = 1024**3
# Modules that stay unquantized under bitsandbytes (vision tower, projector, output head); the names
# cover LLaVA(-NeXT/-OneVision) and Mllama.
SKIP_QUANT_MODULES = ["vision_tower", "vision_model", "multi_modal_projector", "lm_head", "image_newline"]
# NF4 stores 4 bits per weight plus one absmax per 64-weight block (double-quantised: ~0.127 bit/weight).
_BYTES_PER_WEIGHT = {"4bit": 0.5 + 0.127 / 8, "8bit": 1.0 + 4 / 4096}
# Activations, allocator slack and the CUDA context: a fixed floor plus a share of the weights.
_OVERHEAD_FIXED = 0.5 * GIB
_OVERHEAD_SHARE = 0.10


@dataclass
class MemoryEstimate:
    weights_bytes: int  # parameters at their loaded precision
    kv_bytes_per_token: int  # keys + values of all self-attention layers for one token
    context_tokens: int  # tokens the KV cache is sized for
    overhead_bytes: int  # activations, allocator slack, runtime

    @property
    def kv_bytes(self) -> int:
        return self.kv_bytes_per_token * self.context_tokens

    @property
    def total_bytes(self) -> int:
        return self.weights_bytes + self.kv_bytes + self.overhead_bytes

    def describe(self) -> str:
        return (
            f"{self.total_bytes / GIB:.2f} GiB = weights {self.weights_bytes / GIB:.2f} GiB + KV "
            f"{self.kv_bytes_per_token / 1024:.0f} KiB/token x {self.context_tokens} tokens "
            f"({self.kv_bytes / GIB:.2f} GiB) + overhead {self.overhead_bytes / GIB:.2f} GiB"
        )


def kv_bytes_per_token(config, dtype_bytes: int) -> int:
    text = config.get_text_config(decoder=True)
    layers = text.num_hidden_layers
    cross = getattr(text, "cross_attention_layers", None) or []
    heads = text.num_attention_heads
    kv_heads = getattr(text, "num_key_value_heads", None) or heads
    head_dim = getattr(text, "head_dim", None) or text.hidden_size // heads
    return 2 * (layers - len(cross)) * kv_heads * head_dim * dtype_bytes


def stored_parameters(path: str | Path | None) -> int | None:
    """Parameters in a local model directory, counted from its safetensors headers (no model is built);
    None when there is no such directory. Tied weights are stored once, as they are counted once."""
    files = sorted(Path(path).glob("*.safetensors")) if path and Path(path).is_dir() else []
    if not files:
        return None
    total = 0
    for f in files:
        with f.open("rb") as fh:
            (size,) = struct.unpack("<Q", fh.read(8))
            header = json.loads(fh.read(size))
        total += sum(math.prod(v["shape"]) for k, v in header.items() if k != "__metadata__")
    return total


def estimate(
    config, family: str, quantization: str, dtype_bytes: int, context_tokens: int, path: str | None = None
) -> MemoryEstimate:
    """Estimate the memory `config` needs when loaded with `quantization` ("4bit" | "8bit" | "none").

    Unquantized weights of a local safetensors model are counted from the file headers (milliseconds);
    otherwise the model is built on the meta device to see which Linears quantize."""
    stored = stored_parameters(path) if quantization == "none" else None
    if stored is not None:
        weights = stored * dtype_bytes
        return MemoryEstimate(
            weights_bytes=weights,
            kv_bytes_per_token=kv_bytes_per_token(config, dtype_bytes),
            context_tokens=context_tokens,
            overhead_bytes=int(_OVERHEAD_FIXED + _OVERHEAD_SHARE * weights),
        )
    import torch
    from accelerate import init_empty_weights
    from transformers import AutoModelForCausalLM, AutoModelForImageTextToText

    auto = AutoModelForCausalLM if family == "text" else AutoModelForImageTextToText
    with init_empty_weights(include_buffers=False):
        model = auto.from_config(config)
    # Outside the context: inside it, registering the tied parameter would make a new meta tensor.
    model.tie_weights()  # tied input/output embeddings are one tensor, counted once
    weights = 0.0
    seen: set[int] = set()
    for name, module in model.named_modules():
        quantizable = (
            quantization in _BYTES_PER_WEIGHT
            and isinstance(module, torch.nn.Linear)
            and not any(skip in name for skip in SKIP_QUANT_MODULES)
        )
        for pname, p in module.named_parameters(recurse=False):
            if id(p) in seen:
                continue
            seen.add(id(p))
            if quantizable and pname == "weight":
                weights += p.numel() * _BYTES_PER_WEIGHT[quantization]
            else:
                weights += p.numel() * dtype_bytes
    return MemoryEstimate(
        weights_bytes=int(weights),
        kv_bytes_per_token=kv_bytes_per_token(config, dtype_bytes),
        context_tokens=context_tokens,
        overhead_bytes=int(_OVERHEAD_FIXED + _OVERHEAD_SHARE * weights),
    )


def available_bytes(device: str) -> int:
    """Free memory where the model would live: free GPU memory on CUDA, available RAM on CPU."""
    if device.startswith("cuda"):
        import torch

        free, _total = torch.cuda.mem_get_info(torch.device(device))
        return int(free)
    import psutil

    return int(psutil.virtual_memory().available)


def check_fits(est: MemoryEstimate, budget_bytes: int, model_id: str, device: str) -> None:
    if est.total_bytes > budget_bytes:
        raise OutOfMemoryBudget(
            f"{model_id} would need about {est.describe()}, but the budget on {device} is "
            f"{budget_bytes / GIB:.2f} GiB; try --quantization 4bit, a smaller --max-context, "
            "a smaller model, or raise --memory-budget-gb"
        )
