"""Resolve which model to run and load it: device, dtype, bitsandbytes quantization, memory check.

`resolve_model` turns "auto", an alias, a path or a hub id into something `from_pretrained` takes, with
a note saying what was chosen and why. `load_model` checks the memory estimate first and then loads
model and processor through the Auto classes, as for any Hugging Face model.
"""

from __future__ import annotations

import hashlib
import os
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

from assistant.core import local_models, memory
from assistant.core.config import ModelConfig
from assistant.core.families import family_of
from tools.errors import ModelLoadError

# Real pretrained defaults (README: "Default models"). GPU: the 7B OneVision fits in ~6 GiB at 4 bit
# and reads text and charts far better than LLaVA-1.5; CPU: the 0.5B OneVision is the only
# LLaVA-family model that answers in seconds rather than minutes on a laptop CPU.
DEFAULT_GPU_MODEL = "llava-hf/llava-onevision-qwen2-7b-ov-hf"
DEFAULT_CPU_MODEL = "llava-hf/llava-onevision-qwen2-0.5b-ov-hf"
OFFLINE_DEFAULT = "smollm2-llava"
_DTYPES = {
    "float32": "float32",
    "fp32": "float32",
    "bfloat16": "bfloat16",
    "bf16": "bfloat16",
    "float16": "float16",
}


@dataclass
class LoadedModel:
    model: object
    processor: object  # AutoProcessor for image models, the tokenizer for text-only ones
    family: str
    model_id: str
    revision: str
    device: str
    dtype: str
    quantization: str
    note: str  # how the model was chosen (offline stand-in, cached default, ...)
    load_s: float
    estimate: memory.MemoryEstimate | None
    sees_images: bool = False  # real vision: an image model not built here with a random tower


def pick_device(device: str) -> str:
    import torch

    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise ModelLoadError(f"--device {device} asked for, but CUDA is not available here; use --device cpu")
    if device != "cpu" and not device.startswith("cuda"):
        raise ModelLoadError(f"unknown device {device!r}; use cpu, cuda, cuda:N or auto")
    return device


def hub_reachable(timeout_s: float = 1.5) -> bool:
    """Quick check; HF_HUB_OFFLINE short-circuits it so offline machines never wait."""
    offline = ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")
    if any(os.environ.get(v, "").lower() in ("1", "true", "yes", "on") for v in offline):
        return False
    try:
        import httpx
        from huggingface_hub import constants

        httpx.head(constants.ENDPOINT, timeout=timeout_s)
        return True
    except Exception:
        return False


def hub_cached(repo_id: str) -> str | None:
    """The local snapshot directory of `repo_id` when its config is in the HF cache, else None."""
    try:
        from huggingface_hub import try_to_load_from_cache

        hit = try_to_load_from_cache(repo_id, "config.json")
    except Exception:
        return None
    return str(Path(hit).parent) if isinstance(hit, str) else None


def resolve_model(cfg: ModelConfig) -> tuple[str, str]:
    """(hub id or local path, note). The note is empty unless something was chosen for the user."""
    path, _name, note = _resolve(cfg)
    return path, note


def _resolve(cfg: ModelConfig) -> tuple[str, str, str]:
    """(what from_pretrained takes, the name to show and key caches on, note)."""
    name = cfg.model
    if name.startswith(("http://", "https://")):
        return name, name, "remote OpenAI-compatible server"
    if name in local_models.LOCAL_MODELS:
        spec = local_models.LOCAL_MODELS[name]
        return str(local_models.ensure(name)), name, f"offline local model {name}: {spec.description}"
    if name != "auto":
        if Path(name).expanduser().exists():
            return str(Path(name).expanduser()), name, ""
        return name, name, ""
    device = pick_device(cfg.device)
    candidate = DEFAULT_GPU_MODEL if device.startswith("cuda") else DEFAULT_CPU_MODEL
    cached = hub_cached(candidate)
    if cached:
        return cached, candidate, f"default for {device}: {candidate} (from the local Hugging Face cache)"
    if hub_reachable():
        return candidate, candidate, f"default for {device}: {candidate} (downloaded once from the model hub)"
    spec = local_models.LOCAL_MODELS[OFFLINE_DEFAULT]
    return (
        str(local_models.ensure(OFFLINE_DEFAULT)),
        OFFLINE_DEFAULT,
        (
            f"no model hub reachable and {candidate} is not cached: using the OFFLINE STAND-IN "
            f"{OFFLINE_DEFAULT} ({spec.description}); its text is SmolLM2's, its image features are random, "
            "so it cannot really see images"
        ),
    )


def _revision(path: str, config) -> str:
    commit = getattr(config, "_commit_hash", None)
    if commit:
        return commit
    p = Path(path)
    if not p.is_dir():
        return ""
    # Content fingerprint of local weights: names, sizes and the first MiB of each file (headers + data).
    h = hashlib.sha256()
    for f in sorted(p.glob("*.safetensors")) + sorted(p.glob("*.bin")):
        h.update(f"{f.name}:{f.stat().st_size}".encode())
        with f.open("rb") as fh:
            h.update(fh.read(1 << 20))
    return h.hexdigest()[:16]


def _dtype(cfg: ModelConfig, device: str) -> str:
    if cfg.dtype == "auto":
        return "bfloat16" if device.startswith("cuda") else "float32"
    if cfg.dtype not in _DTYPES:
        raise ModelLoadError(f"unknown dtype {cfg.dtype!r}; use float32, bfloat16, float16 or auto")
    return _DTYPES[cfg.dtype]


def quantization_config(quantization: str, compute_dtype: str):
    """bitsandbytes settings: NF4 with double quantisation, vision tower and projector left as they are."""
    import torch
    from transformers import BitsAndBytesConfig

    # transformers matches these from the start of the module path, so let them match at any depth.
    skip = [f".*{name}" for name in memory.SKIP_QUANT_MODULES]

    if quantization == "4bit":
        return BitsAndBytesConfig(
            load_in_4bit=True,
            bnb_4bit_quant_type="nf4",
            bnb_4bit_use_double_quant=True,
            bnb_4bit_compute_dtype=getattr(torch, compute_dtype),
            llm_int8_skip_modules=skip,
        )
    # bitsandbytes warns on every 8-bit matmul that it casts fp32 inputs to fp16; once is plenty.
    warnings.filterwarnings("once", message=".*MatMul8bitLt.*")
    return BitsAndBytesConfig(load_in_8bit=True, llm_int8_skip_modules=skip)


def load_model(cfg: ModelConfig) -> LoadedModel:
    import torch
    from transformers import AutoConfig

    path, model_id, note = _resolve(cfg)
    device = pick_device(cfg.device)
    try:
        config = AutoConfig.from_pretrained(path)
    except Exception as e:  # no hub, wrong id, missing files: all the user can act on
        raise ModelLoadError(f"cannot load model config for {path!r}: {str(e).splitlines()[0]}") from None
    family = family_of(config)
    quant = cfg.quantization
    if quant == "auto":
        quant = "4bit" if device.startswith("cuda") else "none"
    if quant not in ("4bit", "8bit", "none"):
        raise ModelLoadError(f"unknown quantization {quant!r}; use 4bit, 8bit, none or auto")
    dtype = _dtype(cfg, device)
    if quant == "4bit" and dtype == "float32" and device.startswith("cuda"):
        dtype = "bfloat16"  # NF4 computes in bf16 on GPU
    dtype_bytes = torch.tensor([], dtype=getattr(torch, dtype)).element_size()
    est = memory.estimate(config, family, quant, dtype_bytes, cfg.max_context, path)
    budget = (
        int(cfg.memory_budget_gb * memory.GIB) if cfg.memory_budget_gb else memory.available_bytes(device)
    )
    memory.check_fits(est, budget, model_id, device)

    t0 = time.perf_counter()
    kwargs = {"dtype": getattr(torch, dtype)}
    if quant != "none":
        kwargs["quantization_config"] = quantization_config(quant, dtype)
    # device_map places the weights as they load; a quantized model must never be moved with .to().
    kwargs["device_map"] = {"": device if device != "cuda" else 0}
    try:
        if family == "text":
            from transformers import AutoModelForCausalLM, AutoTokenizer

            model = AutoModelForCausalLM.from_pretrained(path, **kwargs)
            processor = AutoTokenizer.from_pretrained(path)
        else:
            from transformers import AutoModelForImageTextToText, AutoProcessor

            model = AutoModelForImageTextToText.from_pretrained(path, **kwargs)
            processor = AutoProcessor.from_pretrained(path)
    except (OSError, ValueError, ImportError) as e:
        raise ModelLoadError(f"cannot load {path!r}: {str(e).splitlines()[0]}") from None
    model.eval()
    return LoadedModel(
        model=model,
        processor=processor,
        family=family,
        model_id=model_id,
        revision=_revision(path, config),
        device=device,
        dtype=dtype,
        quantization=quant,
        note=note,
        load_s=time.perf_counter() - t0,
        estimate=est,
        sees_images=family != "text" and not local_models.built_here(path),
    )


def info(cfg: ModelConfig) -> dict:
    """What `load_model(cfg)` would do, without loading weights: model, family, device, estimate, budget."""
    import torch
    from transformers import AutoConfig

    path, model_id, note = _resolve(cfg)
    if path.startswith(("http://", "https://")):
        return {"model": model_id, "family": "remote", "note": note}
    device = pick_device(cfg.device)
    try:
        config = AutoConfig.from_pretrained(path)
    except Exception as e:
        raise ModelLoadError(f"cannot load model config for {path!r}: {str(e).splitlines()[0]}") from None
    family = family_of(config)
    quant = (
        cfg.quantization if cfg.quantization != "auto" else ("4bit" if device.startswith("cuda") else "none")
    )
    dtype = _dtype(cfg, device)
    dtype_bytes = torch.tensor([], dtype=getattr(torch, dtype)).element_size()
    est = memory.estimate(config, family, quant, dtype_bytes, cfg.max_context, path)
    budget = (
        int(cfg.memory_budget_gb * memory.GIB) if cfg.memory_budget_gb else memory.available_bytes(device)
    )
    return {
        "model": model_id,
        "path": path,
        "family": family,
        "device": device,
        "dtype": dtype,
        "quantization": quant,
        "estimate": est.describe(),
        "budget": f"{budget / memory.GIB:.2f} GiB",
        "fits": est.total_bytes <= budget,
        "note": note or "-",
    }
