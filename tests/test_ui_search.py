"""The UI's Search tab and `ask --search`: hits with reasons from the index, a click that puts a
byte-for-byte copy of the hit in the chat box, and the top hits as the turn's images."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from assistant.search.indexer import IndexConfig, index_folder
from assistant.search.store import IndexStore
from frontends.ask_search import add_search_args, search_images
from frontends.ui_search import build_search_tab, open_hit, search_hits
from tests.frontends_util import sign_png
from tools.errors import BadInputError


@pytest.fixture(scope="module")
def index(tmp_path_factory):
    images = tmp_path_factory.mktemp("imgs")
    for i, t in enumerate(["EMERGENCY EXIT", "HOTEL"]):
        sign_png(images, f"s{i}.png", text=t, seed=40 + i)
    path = tmp_path_factory.mktemp("index") / "images.sqlite"
    store = IndexStore(path)
    index_folder(images, store, IndexConfig(tools=["ocr", "metadata"]), progress=False)
    store.close()
    return str(path)


def test_search_tab_shows_hits_with_reasons_and_opens_one_in_the_chat(index):
    import gradio as gr

    gallery, reasons, hits = search_hits("emergency exit", index, top=5)
    assert hits and Path(hits[0]["path"]).name == "s0.png" and len(gallery) == len(hits)
    assert "s0.png" in gallery[0][1] and "text:" in reasons and "ocr:" in reasons
    value = open_hit(hits, 0)
    copy = Path(value["files"][0])
    assert value["text"] == "" and copy.read_bytes() == Path(hits[0]["path"]).read_bytes()
    assert search_hits("", index)[2] == []
    assert "no index" in search_hits("exit", str(Path(index).with_name("missing.sqlite")))[1]
    with gr.Blocks() as demo:
        box = gr.MultimodalTextbox()
        build_search_tab(box, index)
    assert "/search" in demo.get_api_info()["named_endpoints"]


def test_ask_search_gives_the_top_hits_as_the_turns_images(index):
    p = argparse.ArgumentParser()
    add_search_args(p)
    images = search_images(p.parse_args(["--search", "hotel", "--index", index, "--search-top", "1"]))
    assert [Path(i.source).name for i in images] == ["s1.png"]
    assert search_images(p.parse_args([])) == []
    with pytest.raises(BadInputError, match="no index at"):
        search_images(p.parse_args(["--search", "hotel", "--index", index + ".missing"]))
