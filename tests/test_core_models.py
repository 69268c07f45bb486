"""The model core on real (tiny or small) models loaded from disk: both fusion families, the text path,
greedy determinism, streaming, image-token accounting, the grafted LLaVA, and clear load errors."""

from __future__ import annotations

import pytest
import torch
from PIL import Image

from assistant.core.types import GenerationConfig, ImageInput
from tools.errors import BadInputError, ModelLoadError
from tools.images import ImageRef


def image(color=(200, 30, 30), size=(120, 90)) -> ImageInput:
    return ImageInput(ImageRef.from_pil(Image.new("RGB", size, color)))


def ask(text: str, n_images: int = 0) -> list[dict]:
    return [{"role": "user", "content": [{"type": "image"}] * n_images + [{"type": "text", "text": text}]}]


GREEDY = GenerationConfig(max_new_tokens=8)


@pytest.mark.parametrize("name", ["tiny-llava", "tiny-mllama"])
def test_both_families_load_from_disk_and_generate(make_engine, local_model_dirs, name):
    engine = make_engine(name)
    assert engine.family == {"tiny-llava": "prefix", "tiny-mllama": "cross_attention"}[name]
    assert engine.supports_images
    # Loaded through from_pretrained from the saved directory, as a downloaded model would be.
    assert engine.model.name_or_path == str(local_model_dirs[name])
    out = engine.generate(ask("What is in the picture?", 1), [image()], GREEDY)
    assert out.stats.tokens_out == len(out.token_ids) > 0
    assert out.stats.image_tokens > 0
    assert out.stats.ttft_s > 0 and out.stats.total_s >= out.stats.ttft_s


@pytest.mark.parametrize("fixture", ["tiny_llava_engine", "tiny_mllama_engine", "smollm2_engine"])
def test_greedy_is_deterministic_and_matches_plain_generate(request, fixture):
    engine = request.getfixturevalue(fixture)
    n_images = 1 if engine.supports_images else 0
    msgs, images = ask("Describe it.", n_images), [image()] * n_images
    # ignore_eos: generate the full length, so there is more to compare
    a = engine.generate(msgs, images, GREEDY, ignore_eos=True).token_ids
    b = engine.generate(msgs, images, GREEDY, ignore_eos=True).token_ids
    assert a == b and len(a) == GREEDY.max_new_tokens
    # Our loop agrees with transformers' own generate on the same inputs.
    if images:
        proc = engine.processor
        text = proc.apply_chat_template(msgs, add_generation_prompt=True, tokenize=False)
        inputs = proc(text=text, images=[i.ref.image for i in images], return_tensors="pt")
    else:
        inputs = {"input_ids": torch.tensor([engine.adapter.render(msgs)])}
    with torch.inference_mode():
        ref = engine.model.generate(**inputs, max_new_tokens=8, min_new_tokens=8, do_sample=False)
    assert ref[0, inputs["input_ids"].shape[1] :].tolist() == a


def test_closing_a_stream_early_frees_the_engine_and_keeps_the_session(smollm2_engine):
    msgs = ask("Count from one to twenty.")
    s = smollm2_engine.stream(msgs, [], GenerationConfig(max_new_tokens=40), session_id="close-early")
    it = iter(s)
    next(it)
    s.close()
    again = smollm2_engine.generate(msgs, [], GenerationConfig(max_new_tokens=2), session_id="close-early")
    assert again.stats.kv_reused_tokens == again.stats.tokens_in - 1


def test_streaming_yields_chunks_that_add_up(smollm2_engine):
    s = smollm2_engine.stream(ask("Name three colours."), [], GenerationConfig(max_new_tokens=24))
    chunks = list(s)
    assert len(chunks) > 1, "the answer should arrive in several pieces"
    assert "".join(chunks) == s.text
    assert s.stats.tokens_out > 1 and s.stats.decode_tps > 0


def test_smollm2_knows_the_capital_of_france(smollm2_engine):
    out = smollm2_engine.generate(
        ask("What is the capital of France?"), [], GenerationConfig(max_new_tokens=16)
    )
    assert "Paris" in out.text


def test_stop_strings_cut_the_answer(smollm2_engine):
    out = smollm2_engine.generate(
        ask("What is the capital of France?"), [], GenerationConfig(max_new_tokens=16, stop=["Paris"])
    )
    assert "Paris" not in out.text and out.text.strip()


@pytest.mark.parametrize("size", [(64, 64), (300, 120)])
def test_prefix_image_tokens_match_what_the_processor_reports(smollm2_llava_engine, size):
    engine = smollm2_llava_engine
    img = image(size=size)
    msgs = ask("What is this?", 1)
    out = engine.generate(msgs, [img], GenerationConfig(max_new_tokens=1))
    proc = engine.processor
    text = proc.apply_chat_template(msgs, add_generation_prompt=True, tokenize=False)
    ids = proc(text=text, images=[img.ref.image], return_tensors="pt")["input_ids"][0]
    n_proc = int((ids == engine.model.config.image_token_id).sum())
    assert out.stats.image_tokens == n_proc == engine.image_token_count(img) == 49
    assert out.stats.tokens_in == len(ids)


def test_grafted_llava_text_logits_equal_smollm2(smollm2_engine, smollm2_llava_engine):
    msgs = ask("What is the capital of France?")
    ids = torch.tensor([smollm2_engine.adapter.render(msgs)])
    assert smollm2_llava_engine.adapter.render(msgs) == ids[0].tolist()
    with torch.inference_mode():
        a = smollm2_engine.model(input_ids=ids).logits
        b = smollm2_llava_engine.model(input_ids=ids).logits
    n = a.shape[-1]
    assert b.shape[-1] == n + 1  # the added <image> token
    assert torch.equal(a, b[..., :n])


def test_text_engine_refuses_images(smollm2_engine):
    with pytest.raises(BadInputError, match="text-only"):
        smollm2_engine.generate(ask("What is this?", 1), [image()], GREEDY)


def test_image_count_mismatch_is_a_clear_error(tiny_llava_engine):
    with pytest.raises(BadInputError, match="2 image placeholders but 1 images"):
        tiny_llava_engine.generate(ask("Compare.", 2), [image()], GREEDY)


def test_unsupported_family_names_the_supported_ones(make_engine, tmp_path):
    from transformers import Blip2Config

    Blip2Config().save_pretrained(tmp_path)
    with pytest.raises(ModelLoadError, match="unsupported model family 'blip-2'.*LLaVA.*Mllama"):
        make_engine(str(tmp_path))


def test_missing_model_is_a_clear_error(make_engine):
    with pytest.raises(ModelLoadError, match="cannot load model config"):
        make_engine("no-such-org/no-such-model")


def test_auto_falls_back_to_the_offline_model_and_says_so(monkeypatch, local_model_dirs):
    from assistant.core import loader, resolve_model
    from assistant.core.config import ModelConfig

    monkeypatch.setattr(loader, "hub_cached", lambda repo: None)
    path, note = resolve_model(ModelConfig(device="cpu"))
    assert path == str(local_model_dirs["smollm2-llava"])
    assert "OFFLINE STAND-IN" in note and "no model hub" in note


def test_auto_prefers_cached_real_model(monkeypatch, tmp_path):
    from assistant.core import loader, resolve_model
    from assistant.core.config import ModelConfig

    monkeypatch.setattr(
        loader, "hub_cached", lambda repo: str(tmp_path) if repo == loader.DEFAULT_CPU_MODEL else None
    )
    path, note = resolve_model(ModelConfig(device="cpu"))
    assert path == str(tmp_path) and loader.DEFAULT_CPU_MODEL in note


@pytest.mark.parametrize("size", [(100, 60), (40, 130)])
def test_onevision_anyres_tokens_match_processor_and_generate(make_engine, size):
    """LLaVA-OneVision (the family of the real defaults): AnyRes tiles + newline tokens, per aspect ratio."""
    engine = make_engine("tiny-llava-onevision")
    img = image(size=size)
    msgs = ask("What is this?", 1)
    out = engine.generate(msgs, [img], GenerationConfig(max_new_tokens=4), ignore_eos=True)
    proc = engine.processor
    text = proc.apply_chat_template(msgs, add_generation_prompt=True, tokenize=False)
    inputs = proc(text=text, images=[img.ref.image], return_tensors="pt")
    n_proc = int((inputs["input_ids"] == engine.model.config.image_token_id).sum())
    assert out.stats.image_tokens == n_proc == engine.image_token_count(img)
    with torch.inference_mode():
        ref = engine.model.generate(**inputs, max_new_tokens=4, min_new_tokens=4, do_sample=False)
    assert ref[0, inputs["input_ids"].shape[1] :].tolist() == out.token_ids


def test_repetition_penalty_demotes_generated_tokens_and_never_picks_the_image_token(tiny_llava_engine):
    engine = tiny_llava_engine
    logits = torch.full((1, engine.model.config.text_config.vocab_size), -1.0)
    logits[0, 5], logits[0, 7] = 3.0, 2.0
    logits[0, engine.model.config.image_token_id] = 10.0
    assert engine._pick(logits.clone(), GenerationConfig(), []) == 5
    assert engine._pick(logits.clone(), GenerationConfig(), [5]) == 5  # off by default
    assert engine._pick(logits.clone(), GenerationConfig(repetition_penalty=2.0), [5]) == 7


def test_context_limit_is_a_clear_error_and_caps_the_answer(make_engine):
    engine = make_engine("tiny-llava", max_context=64)
    with pytest.raises(
        BadInputError, match=r"is \d+ tokens \(16 of them image tokens\), more than the context limit of 64"
    ):
        engine.generate(ask("Describe it in detail. " * 8, 1), [image()], GREEDY)
    out = engine.generate(ask("Hi"), [], GenerationConfig(max_new_tokens=100), ignore_eos=True)
    assert out.stats.tokens_in + out.stats.tokens_out == 64


def test_offline_mode_never_touches_the_network(monkeypatch):
    import httpx

    from assistant.core import loader

    def no_network(*a, **k):
        raise AssertionError("HF_HUB_OFFLINE must short-circuit the hub check")

    monkeypatch.setattr(httpx, "head", no_network)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    assert loader.hub_reachable() is False


def test_device_flag_is_checked(make_engine):
    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA; the error path is for machines without it")
    with pytest.raises(ModelLoadError, match="CUDA is not available"):
        make_engine("tiny-llava", device="cuda")
    with pytest.raises(ModelLoadError, match="unknown device 'tpu'"):
        make_engine("tiny-llava", device="tpu")


def test_an_abandoned_stream_does_not_block_the_next_one(tiny_llava_engine):
    import threading

    engine = tiny_llava_engine
    first = engine.stream(
        ask("Hello"), [], GenerationConfig(max_new_tokens=20), session_id="abandon", ignore_eos=True
    )
    reading = iter(first)  # kept: dropping the iterator would end the generation (and free the engine)
    next(reading)  # started, holds the engine, not finished or closed
    done = []
    t = threading.Thread(target=lambda: done.append(engine.generate(ask("Hi"), [], GREEDY).stats.tokens_out))
    t.start()
    t.join(2)
    assert not done, "another thread must wait for the running stream"
    first.close()
    t.join(30)
    assert done
    # In the same thread, starting a new stream finishes the abandoned one instead of deadlocking.
    again = engine.stream(ask("Hello"), [], GenerationConfig(max_new_tokens=20), ignore_eos=True)
    next(iter(again))
    assert engine.generate(ask("Hi"), [], GREEDY).stats.tokens_out > 0
