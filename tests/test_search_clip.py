"""The CLIP modality of search, on a tiny random CLIP built from config (no weights ship offline): image
embeddings stored per image, the query's text embedding ranks them, and the hits carry a `clip` score."""

from __future__ import annotations

import numpy as np
import pytest

from assistant.search.clip import ClipEmbedder
from assistant.search.indexer import IndexConfig, index_folder
from assistant.search.retrieve import SearchConfig, Searcher
from assistant.search.store import IndexStore
from tests.frontends_util import sign_png
from tools.images import ImageRef


def tiny_clip(folder):
    """A CLIP with 2 layers of width 32 per tower and a character-level tokenizer, saved to `folder`."""
    import torch
    from tokenizers.pre_tokenizers import ByteLevel
    from transformers import CLIPConfig, CLIPImageProcessor, CLIPModel, CLIPProcessor, CLIPTokenizer

    chars = sorted(ByteLevel.alphabet())
    vocab = {
        t: i for i, t in enumerate(["<|startoftext|>", "<|endoftext|>"] + chars + [c + "</w>" for c in chars])
    }
    tokenizer = CLIPTokenizer(vocab=vocab, merges=[])
    images = CLIPImageProcessor(size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32})
    CLIPProcessor(image_processor=images, tokenizer=tokenizer).save_pretrained(folder)
    small = {"hidden_size": 32, "intermediate_size": 37, "num_hidden_layers": 2, "num_attention_heads": 2}
    config = CLIPConfig(
        text_config={**small, "vocab_size": len(vocab), "max_position_embeddings": 64},
        vision_config={**small, "image_size": 32, "patch_size": 8},
        projection_dim=16,
    )
    torch.manual_seed(0)
    CLIPModel(config).eval().save_pretrained(folder)
    return str(folder)


@pytest.fixture(scope="module")
def clip_dir(tmp_path_factory):
    return tiny_clip(tmp_path_factory.mktemp("tiny-clip"))


def test_clip_embeddings_join_search_as_a_modality(tmp_path, clip_dir):
    images = tmp_path / "imgs"
    images.mkdir()
    for i, t in enumerate(["HOTEL", "EXIT"]):
        sign_png(images, f"s{i}.png", text=t, seed=30 + i)
    store = IndexStore(tmp_path / "index.sqlite")
    cfg = IndexConfig(tools=["metadata"], clip_model=clip_dir)
    summary = index_folder(images, store, cfg, progress=False)
    assert summary.indexed == 2 and not summary.errors
    assert store.meta("clip_model") == clip_dir and store.meta("clip_dim") == "16"
    assert all("clip" in t for t in store.tools_of().values())

    embedder = ClipEmbedder(clip_dir)
    result = Searcher(store, SearchConfig(modalities=("clip",)), clip=embedder).search("a hotel sign")
    assert len(result.hits) == 2 and all(set(h.scores) == {"clip"} for h in result.hits)
    assert all(-1.0 <= h.scores["clip"] <= 1.0 for h in result.hits)
    fused = Searcher(store, clip=embedder).search("a hotel sign")
    assert any("clip" in h.scores for h in fused.hits)
    # the same image embeds the same way at search time: its own embedding is its nearest
    own = embedder.image(ImageRef.from_path(images / "s1.png"))
    nearest = store.nearest(np.asarray(own, dtype=np.float32).tobytes(), 1, table="clip")
    assert store.docs([nearest[0][0]])[nearest[0][0]][0].path.endswith("s1.png")
    assert index_folder(images, store, cfg, progress=False).indexed == 0
    store.close()
