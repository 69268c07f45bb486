"""Decode paths and the cache contract: the static KV cache gives the dynamic cache's tokens (with
sessions and common-prefix cropping), the attention backend is scoped and harmless, the cache argument
follows the transformers version, and an ignored cache fails at load instead of silently."""

from __future__ import annotations

import pytest
import torch
from PIL import Image

from assistant.core.decoding import Decoder, cache_argument, check_cache
from assistant.core.types import GenerationConfig, ImageInput
from tools.errors import ModelLoadError
from tools.images import ImageRef

GEN = GenerationConfig(max_new_tokens=12)
PHOTO = ImageInput(ImageRef.from_pil(Image.new("RGB", (96, 72), (30, 160, 40))))


def _user(text, image=False):
    parts = ([{"type": "image"}] if image else []) + [{"type": "text", "text": text}]
    return {"role": "user", "content": parts}


def _play(engine, session_id):
    """Three turns, then an edit of turn 3's question (the cache is cropped to the common prefix)."""
    messages, outs = [], []
    for i, q in enumerate(["What is in the picture?", "What colour is it?", "Say it in one word."]):
        messages.append(_user(q, image=i == 0))
        outs.append(engine.generate(messages, [PHOTO], GEN, session_id=session_id, ignore_eos=True))
        messages.append({"role": "assistant", "content": outs[-1].text})
    edited = [*messages[:-2], _user("Really? Look again.")]
    outs.append(engine.generate(edited, [PHOTO], GEN, session_id=session_id, ignore_eos=True))
    return outs


@pytest.fixture(scope="module")
def static_engine(make_engine):
    return make_engine("smollm2-llava", decode="static", max_context=1024)


def test_static_cache_gives_the_dynamic_caches_tokens_with_sessions_and_cropping(
    static_engine, smollm2_llava_engine
):
    assert static_engine.decoder.path == "static" and smollm2_llava_engine.decoder.path == "dynamic"
    static = _play(static_engine, "static-session")
    dynamic = _play(smollm2_llava_engine, "dynamic-session")
    for turn, (a, b) in enumerate(zip(static, dynamic, strict=True), start=1):
        assert a.token_ids == b.token_ids, f"turn {turn}: static and dynamic caches disagree"
        assert a.stats.kv_reused_tokens == b.stats.kv_reused_tokens
    assert all(o.stats.kv_reused_tokens > 0 for o in static[1:])
    # The edit reuses up to turn 3's question only: the cache was cropped, not rebuilt.
    assert static[1].stats.tokens_in <= static[3].stats.kv_reused_tokens < static[2].stats.tokens_in


def test_sessionless_turns_reuse_one_static_cache(static_engine):
    msgs = [_user("Name a colour.", image=True)]
    a = static_engine.generate(msgs, [PHOTO], GEN, ignore_eos=True)
    spare = list(static_engine.decoder._spare)
    b = static_engine.generate(msgs, [PHOTO], GEN, ignore_eos=True)
    assert spare and static_engine.decoder._spare == spare, "the same preallocated cache serves each turn"
    assert a.token_ids == b.token_ids and b.stats.kv_reused_tokens == 0


def test_forward_calls_run_without_cudnn_attention_and_give_the_same_logits(smollm2_engine):
    adapter = smollm2_engine.adapter
    seen = []
    handle = adapter.model.register_forward_pre_hook(
        lambda *a: seen.append(torch.backends.cuda.cudnn_sdp_enabled())
    )
    ids = adapter.render([_user("What is the capital of France?")])
    try:
        with torch.inference_mode():
            ours = adapter._forward(adapter.new_cache(), input_ids=torch.tensor([ids]))
            kwargs = {adapter.cache_arg: adapter.new_cache(), "use_cache": True, "logits_to_keep": 1}
            plain = adapter.model(input_ids=torch.tensor([ids]), **kwargs).logits[:, -1]
    finally:
        handle.remove()
    assert seen == [False, True], "cuDNN SDPA off inside our calls only, the user's setting untouched"
    assert torch.equal(ours, plain)


def test_cache_argument_follows_the_transformers_signature(smollm2_engine):
    import transformers

    class Old(torch.nn.Module):  # transformers 5.17: no `cache`, only `past_key_values`
        def forward(self, input_ids=None, past_key_values=None, **kwargs): ...

    class Neither(torch.nn.Module):
        def forward(self, input_ids=None, **kwargs): ...

    assert cache_argument(Old()) == "past_key_values"
    with pytest.raises(ModelLoadError, match="neither `cache` nor `past_key_values`"):
        cache_argument(Neither())
    expected = "cache" if int(transformers.__version__.split(".")[1]) >= 20 else "past_key_values"
    assert smollm2_engine.adapter.cache_arg == expected


def test_an_ignored_cache_fails_loudly_at_load(smollm2_engine, monkeypatch):
    adapter = smollm2_engine.adapter
    assert check_cache(adapter, smollm2_engine.decoder) < 1e-3
    # What transformers 5.17 does with `cache=`: the keyword lands in **kwargs and nothing is cached.
    monkeypatch.setattr(adapter, "cache_arg", "an_argument_nobody_reads")
    with pytest.raises(ModelLoadError, match=r"KV cache is not honoured.*after \d+ tokens it holds 0"):
        check_cache(adapter, smollm2_engine.decoder)


def test_decode_paths_fall_back_with_a_stated_reason(smollm2_engine, tiny_mllama_engine):
    graph = Decoder(smollm2_engine.adapter, "cuda-graph", 256)
    assert graph.path == "static" and "CUDA graphs need a CUDA device" in graph.describe()
    mllama = Decoder(tiny_mllama_engine.adapter, "static", 256)
    assert mllama.path == "dynamic" and "cross_attention" in mllama.note
    assert Decoder(smollm2_engine.adapter, "auto", 256).path == "dynamic"  # CPU default
    with pytest.raises(ModelLoadError, match="unknown decode path 'fast'"):
        Decoder(smollm2_engine.adapter, "fast", 256)


@pytest.mark.gpu
@pytest.mark.skipif(
    not torch.cuda.is_available(),
    reason="needs a CUDA GPU: CUDA graphs exist only there (the CPU fallback is tested above); "
    "run `pytest -m gpu` on a GPU machine",
)
def test_cuda_graph_decode_matches_dynamic_on_gpu(make_engine):
    graph = make_engine("smollm2-llava", device="cuda", quantization="none", decode="cuda-graph")
    dynamic = make_engine("smollm2-llava", device="cuda", quantization="none", decode="dynamic")
    assert graph.decoder.path == "cuda-graph", graph.decoder.note
    for a, b in zip(_play(graph, "g"), _play(dynamic, "d"), strict=True):
        assert a.token_ids == b.token_ids


def test_the_cache_check_runs_once_per_library_setup(smollm2_engine, monkeypatch, tmp_path):
    from assistant.core import decoding

    monkeypatch.setenv("GROUNDED_VLM_HOME", str(tmp_path))
    calls = []
    real = decoding.check_cache
    monkeypatch.setattr(decoding, "check_cache", lambda *a: calls.append(1) or real(*a))
    adapter, decoder = smollm2_engine.adapter, smollm2_engine.decoder
    first = decoding.checked_once(adapter, decoder, "none")
    assert decoding.checked_once(adapter, decoder, "none") == first < 1e-3 and len(calls) == 1
    decoding.checked_once(adapter, Decoder(adapter, "static", 128), "none")  # another path: checked anew
    assert len(calls) == 2
    # A failed check leaves no verdict behind: the next load checks (and fails) again.
    monkeypatch.setattr(adapter, "cache_arg", "an_argument_nobody_reads")
    for _ in range(2):
        with pytest.raises(ModelLoadError, match="not honoured"):
            decoding.checked_once(adapter, decoder, "8bit")
    assert len(calls) == 4
