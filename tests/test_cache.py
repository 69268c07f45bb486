"""The engine's caches: embedding cache (LRU in bytes, disk, keys) and KV reuse across turns.

The KV tests run the same conversation twice, once with a session (reuse) and once without, and
require token-for-token identical greedy outputs, while checking that reuse actually happened."""

from __future__ import annotations

import pytest
import torch
from PIL import Image

from assistant.core.cache import EmbeddingCache, KVSessionCache, common_prefix
from assistant.core.types import GenerationConfig, ImageInput
from tools.images import ImageRef

GEN = GenerationConfig(max_new_tokens=6)


def image(color) -> ImageInput:
    return ImageInput(ImageRef.from_pil(Image.new("RGB", (96, 72), color)))


RED, BLUE = image((220, 20, 20)), image((20, 20, 220))


# --- embedding cache, on its own -----------------------------------------------------------------
def test_embedding_cache_is_lru_bounded_in_bytes():
    cache = EmbeddingCache(max_bytes=3 * 400)
    for i in range(3):
        cache.put(f"k{i}", {"f": torch.zeros(100)})  # 400 bytes each
    assert cache.get("k0") is not None  # k0 is now the most recent
    cache.put("k3", {"f": torch.zeros(100)})
    assert cache.get("k1") is None and cache.get("k0") is not None and len(cache) == 3
    assert cache.nbytes == 1200 and cache.hits == 2 and cache.misses == 1


def test_embedding_cache_survives_restart_on_disk_and_checks_the_key(tmp_path):
    a = EmbeddingCache(max_bytes=10_000, disk_dir=tmp_path)
    a.put("model-a|img", {"f": torch.arange(6.0)})
    assert not list(tmp_path.glob("*.tmp")), "writes are atomic: no temp files left"
    b = EmbeddingCache(max_bytes=10_000, disk_dir=tmp_path)
    assert torch.equal(b.get("model-a|img")["f"], torch.arange(6.0))
    assert b.get("model-b|img") is None
    # A file whose stored key differs (another model's, or a hash collision) is never used.
    (tmp_path / b._path("model-c|img").name).write_bytes(b._path("model-a|img").read_bytes())
    assert b.get("model-c|img") is None
    b._path("model-a|img").write_bytes(b"truncated")
    assert EmbeddingCache(10_000, disk_dir=tmp_path).get("model-a|img") is None


def test_kv_session_cache_hands_over_evicts_and_isolates():
    kv = KVSessionCache(max_sessions=2, max_bytes=10**9, idle_ttl_s=3600)
    kv.store("a", [1, 2, 3], "cache-a")
    kv.store("b", [1, 2, 9], "cache-b")
    assert kv.lookup("a", [1, 2, 3, 4]) == ("cache-a", 3)
    assert kv.lookup("a", [1, 2, 3, 4]) == (None, 0), "handed over, not shared"
    assert kv.lookup("c", [1, 2, 9]) == (None, 0), "another session's cache is never used"
    kv.store("a", [5], "x")
    kv.store("c", [6], "y")
    assert "b" not in kv and len(kv) == 2
    kv.drop("a")
    assert "a" not in kv
    assert common_prefix([1, "img:x", 3], [1, "img:y", 3]) == 1


def test_kv_session_cache_expires_idle_sessions():
    kv = KVSessionCache(max_sessions=4, idle_ttl_s=0.0)
    kv.store("a", [1], "c")
    assert kv.lookup("a", [1, 2]) == (None, 0)


# --- embedding cache inside the engine -------------------------------------------------------------
@pytest.mark.parametrize("name, tower", [("tiny-llava", "vision_tower"), ("tiny-mllama", "vision_model")])
def test_repeated_image_skips_the_vision_tower(make_engine, name, tower):
    engine = make_engine(name)
    calls = []
    getattr(engine.model.model, tower).register_forward_hook(lambda *a: calls.append(1))
    msgs = [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "What is it?"}]}]
    first = engine.generate(msgs, [RED], GEN)
    # A fresh ImageRef with the same bytes: equal content hash, nothing decoded yet.
    again = ImageInput(ImageRef(data=RED.ref.data))
    second = engine.generate(msgs, [again], GEN)
    assert len(calls) == 1
    assert (first.stats.embed_cache_misses, second.stats.embed_cache_hits) == (1, 1)
    assert again.ref._image is None, "a hit must not even decode the image"
    assert first.token_ids == second.token_ids
    engine.generate(msgs, [ImageInput(RED.ref, max_side=48)], GEN)  # other settings: another entry
    assert len(calls) == 2


def test_disk_embedding_cache_is_used_across_engines_and_not_across_models(
    make_engine, local_model_dirs, tmp_path, monkeypatch
):
    # Models by path (already built); only the embeddings directory lands in the temporary home.
    monkeypatch.setenv("GROUNDED_VLM_HOME", str(tmp_path))
    llava, mllama = str(local_model_dirs["tiny-llava"]), str(local_model_dirs["tiny-mllama"])
    msgs = [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "Hi"}]}]
    make_engine(llava, embed_cache_disk=True).generate(msgs, [RED], GEN)
    assert list((tmp_path / "embeddings").glob("*.safetensors"))
    fresh = make_engine(llava, embed_cache_disk=True)
    assert fresh.generate(msgs, [RED], GEN).stats.embed_cache_hits == 1
    other = make_engine(mllama, embed_cache_disk=True)
    assert other.generate(msgs, [RED], GEN).stats.embed_cache_misses == 1


# --- KV reuse across turns -------------------------------------------------------------------------
def _conversation(engine, session_id, turns):
    """Run user turns [(content parts, images)], feeding each answer back; returns per-turn results."""
    messages, images, results = [], [], []
    for parts, new_images in turns:
        messages.append({"role": "user", "content": parts})
        images = images + new_images
        out = engine.generate(messages, images, GEN, session_id=session_id)
        results.append(out)
        messages.append({"role": "assistant", "content": out.text})
    return results


def _text(t):
    return {"type": "text", "text": t}


IMG = {"type": "image"}
THREE_TURNS = [
    ([IMG, _text("What colour is this?")], [RED]),
    ([_text("Are you sure?")], []),
    ([_text("Say it in one word.")], []),
]
NEW_IMAGE_TURNS = [
    ([IMG, _text("What colour is this?")], [RED]),
    ([IMG, _text("And this one?")], [BLUE]),
    ([_text("Which is darker?")], []),
]


def _assert_identical(with_reuse, without):
    for i, (a, b) in enumerate(zip(with_reuse, without, strict=True)):
        assert a.token_ids == b.token_ids, f"turn {i + 1} differs with KV reuse"
        assert b.stats.kv_reused_tokens == 0


@pytest.mark.parametrize("fixture", ["smollm2_llava_engine", "tiny_mllama_engine"])
def test_kv_reuse_gives_identical_greedy_outputs_over_three_turns(request, fixture):
    engine = request.getfixturevalue(fixture)
    reused = _conversation(engine, f"kv-3turns-{fixture}", THREE_TURNS)
    plain = _conversation(engine, None, THREE_TURNS)
    _assert_identical(reused, plain)
    assert reused[0].stats.kv_reused_tokens == 0
    for turn in reused[1:]:
        # Everything up to the previous answer is reused; only the new turn is prefilled.
        assert turn.stats.kv_reused_tokens > turn.stats.tokens_in // 2


def test_prefix_family_new_image_mid_conversation_reuses_up_to_it(smollm2_llava_engine):
    engine = smollm2_llava_engine
    reused = _conversation(engine, "kv-new-image-prefix", NEW_IMAGE_TURNS)
    _assert_identical(reused, _conversation(engine, None, NEW_IMAGE_TURNS))
    t1, t2 = reused[0].stats, reused[1].stats
    assert t1.tokens_in <= t2.kv_reused_tokens < t2.tokens_in - t2.image_tokens // 2
    assert reused[2].stats.kv_reused_tokens > t2.tokens_in


def test_cross_attention_new_image_recomputes(tiny_mllama_engine):
    engine = tiny_mllama_engine
    reused = _conversation(engine, "kv-new-image-mllama", NEW_IMAGE_TURNS)
    _assert_identical(reused, _conversation(engine, None, NEW_IMAGE_TURNS))
    assert reused[1].stats.kv_reused_tokens == 0, (
        "a changed image set invalidates every cross-attention state"
    )
    assert reused[2].stats.kv_reused_tokens > 0


@pytest.mark.parametrize("fixture", ["smollm2_llava_engine", "tiny_mllama_engine"])
def test_edited_history_falls_back_to_the_first_difference(request, fixture):
    engine = request.getfixturevalue(fixture)
    sid = f"kv-edit-{fixture}"
    first = _conversation(engine, sid, THREE_TURNS[:2])
    # The user edits turn 2's question: the cache is reused up to the edit only.
    edited = [
        {"role": "user", "content": THREE_TURNS[0][0]},
        {"role": "assistant", "content": first[0].text},
        {"role": "user", "content": [_text("Really? Think again.")]},
    ]
    a = engine.generate(edited, [RED], GEN, session_id=sid)
    b = engine.generate(edited, [RED], GEN)
    assert a.token_ids == b.token_ids
    assert first[0].stats.tokens_in <= a.stats.kv_reused_tokens < first[1].stats.tokens_in
    # History truncated back to turn 1: still correct.
    c = engine.generate(edited[:1], [RED], GEN, session_id=sid)
    assert c.token_ids == first[0].token_ids and c.stats.kv_reused_tokens > 0


def test_sessions_never_share_kv(tiny_mllama_engine):
    engine = tiny_mllama_engine
    msgs = [{"role": "user", "content": [_text("Hello there")]}]
    engine.generate(msgs, [], GEN, session_id="alice")
    out = engine.generate(msgs, [], GEN, session_id="bob")
    assert out.stats.kv_reused_tokens == 0
    engine.drop_session("alice")
    assert engine.generate(msgs, [], GEN, session_id="alice").stats.kv_reused_tokens == 0


@pytest.mark.parametrize("name, tower", [("tiny-llava", "vision_tower"), ("tiny-mllama", "vision_model")])
def test_kv_reuse_alone_skips_the_vision_tower_for_earlier_images(make_engine, name, tower):
    engine = make_engine(name, embed_cache_mb=0)  # no embedding cache: only the KV prefix can save work
    calls = []
    getattr(engine.model.model, tower).register_forward_hook(lambda *a: calls.append(1))
    reused = _conversation(engine, "kv-only", THREE_TURNS)
    assert len(calls) == 1 and reused[2].stats.vision_s < reused[0].stats.vision_s
    plain = _conversation(engine, None, THREE_TURNS)
    assert len(calls) == 4  # without reuse every turn runs the tower again
    _assert_identical(reused, plain)
