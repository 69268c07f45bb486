"""Precision and memory: bitsandbytes 4-bit/8-bit loading (it runs on CPU here), and the memory estimate
that refuses a model before loading it."""

from __future__ import annotations

import importlib.util

import pytest
import torch
from PIL import Image

from assistant.core import memory
from assistant.core.types import GenerationConfig, ImageInput
from tools.errors import OutOfMemoryBudget
from tools.images import ImageRef

needs_bnb = pytest.mark.skipif(
    importlib.util.find_spec("bitsandbytes") is None,
    reason="bitsandbytes is not installed (pip install bitsandbytes)",
)


def _onevision_7b_config():
    """The architecture of llava-onevision-qwen2-7b (the GPU default), built from numbers: no download."""
    from transformers import LlavaOnevisionConfig, Qwen2Config, SiglipVisionConfig

    text = Qwen2Config(
        hidden_size=3584,
        intermediate_size=18944,
        num_hidden_layers=28,
        num_attention_heads=28,
        num_key_value_heads=4,
        vocab_size=152064,
    )
    vision = SiglipVisionConfig(
        hidden_size=1152,
        intermediate_size=4304,
        num_hidden_layers=26,
        num_attention_heads=16,
        image_size=384,
        patch_size=14,
    )
    return LlavaOnevisionConfig(text_config=text, vision_config=vision)


def test_estimate_of_a_7b_model_at_4bit_and_bf16():
    config = _onevision_7b_config()
    q4 = memory.estimate(config, "prefix", "4bit", 2, 4096)
    bf16 = memory.estimate(config, "prefix", "none", 2, 4096)
    gib = memory.GIB
    # ~7.6B parameters: ~15 GiB in bf16; NF4 quantizes the LM's linear layers only.
    assert 13.5 * gib < bf16.weights_bytes < 16 * gib
    assert 4 * gib < q4.weights_bytes < 6.5 * gib
    assert q4.kv_bytes_per_token == 2 * 28 * 4 * 128 * 2  # K and V, 28 layers, 4 KV heads of 128, bf16
    assert q4.total_bytes == q4.weights_bytes + q4.kv_bytes + q4.overhead_bytes
    with pytest.raises(OutOfMemoryBudget, match=r"would need about .* GiB .*budget .* 4.00 GiB"):
        memory.check_fits(q4, 4 * gib, "llava-onevision-7b", "cuda")
    memory.check_fits(q4, 12 * gib, "llava-onevision-7b", "cuda")  # fits a 12 GiB card at 4 bit


def test_estimate_matches_the_loaded_weights(smollm2_engine):
    from transformers import AutoConfig

    config = AutoConfig.from_pretrained(smollm2_engine.model.name_or_path)
    est = memory.estimate(config, "text", "none", 4, 1024)
    real = sum(p.numel() * p.element_size() for p in smollm2_engine.model.parameters())
    assert abs(est.weights_bytes - real) / real < 0.01


def test_load_refuses_before_loading_when_the_estimate_exceeds_the_budget(make_engine, monkeypatch):
    from transformers import AutoModelForImageTextToText

    def never(*a, **k):
        raise AssertionError("weights must not be loaded when the estimate does not fit")

    monkeypatch.setattr(AutoModelForImageTextToText, "from_pretrained", never)
    with pytest.raises(OutOfMemoryBudget, match="smollm2-llava would need about .*budget on cpu is 0.20 GiB"):
        make_engine("smollm2-llava", memory_budget_gb=0.2)


@needs_bnb
@pytest.mark.parametrize("name", ["tiny-llava", "tiny-mllama"])
def test_4bit_quantizes_the_language_model_only(make_engine, name):
    import bitsandbytes as bnb

    engine = make_engine(name, quantization="4bit")
    quantized = {n for n, m in engine.model.named_modules() if isinstance(m, bnb.nn.Linear4bit)}
    assert quantized and all(".language_model." in n for n in quantized)
    assert all(
        m.weight.quant_state.quant_type == "nf4" for n, m in engine.model.named_modules() if n in quantized
    )
    plain = [n for n, m in engine.model.named_modules() if type(m) is torch.nn.Linear]
    assert any("vision" in n for n in plain) and any("multi_modal_projector" in n for n in plain)
    img = ImageInput(ImageRef.from_pil(Image.new("RGB", (80, 60), (30, 160, 60))))
    msgs = [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "What is it?"}]}]
    a = engine.generate(msgs, [img], GenerationConfig(max_new_tokens=4))
    b = engine.generate(msgs, [img], GenerationConfig(max_new_tokens=4))
    assert a.token_ids == b.token_ids and a.stats.image_tokens > 0
    assert "4bit" in engine.description


@needs_bnb
def test_8bit_option(make_engine):
    import bitsandbytes as bnb

    engine = make_engine("tiny-llava", quantization="8bit")
    assert any(isinstance(m, bnb.nn.Linear8bitLt) for m in engine.model.modules())
    msgs = [{"role": "user", "content": "Hello"}]
    assert engine.generate(msgs, [], GenerationConfig(max_new_tokens=3)).stats.tokens_out >= 0


@pytest.mark.parametrize("name", ["smollm2", "smollm2-llava", "tiny-mllama"])
def test_weights_counted_from_file_headers_equal_the_meta_model_count(local_model_dirs, name):
    from transformers import AutoConfig

    from assistant.core import memory
    from assistant.core.families import family_of

    path = str(local_model_dirs[name])
    config = AutoConfig.from_pretrained(path)
    family = family_of(config)
    built = memory.estimate(config, family, "none", 4, 1024)
    from_files = memory.estimate(config, family, "none", 4, 1024, path)
    assert memory.stored_parameters(path) * 4 == from_files.weights_bytes == built.weights_bytes
    assert from_files.total_bytes == built.total_bytes
    assert memory.stored_parameters(path + "/no-such-dir") is None
