"""The UI's Search tab: find indexed images by what they show, see why each matched, open one in the chat.

The hits come from the same index and search as `launch.py search` (default index, or the file named
in the tab). The gallery shows thumbnails with each hit's fused score; below it, every hit's reasons per
modality with their evidence ids. Clicking a hit puts a copy of the image (same bytes, so the same
content hash, tool cache and evidence ids) in the chat's message box, ready for a question.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

THUMB = 320


def default_index() -> str:
    from assistant.search.store import default_path

    return str(default_path())


def search_hits(query: str, index: str, top: int = 12) -> tuple[list, str, list[dict]]:
    """(gallery items: (thumbnail, caption), the reasons as Markdown, the hits as dicts)."""
    from assistant.search.retrieve import Searcher
    from assistant.search.store import IndexStore
    from tools.errors import UserError
    from tools.images import ImageRef

    if not query.strip():
        return [], "_Type what you are looking for._", []
    try:
        store = IndexStore(index or default_index(), readonly=True)
    except UserError as e:
        return [], f"**{e}**", []
    try:
        result = Searcher(store).search(query, top=int(top))
    finally:
        store.close()
    gallery, lines = [], [f"**{len(result.hits)} hit(s)** in {result.seconds * 1000:.0f} ms"]
    for n, hit in enumerate(result.hits, 1):
        try:
            thumb = ImageRef.from_path(hit.path).image.copy()
            thumb.thumbnail((THUMB, THUMB))
        except (UserError, OSError):
            continue  # moved or deleted since it was indexed
        gallery.append((thumb, f"{n}. {Path(hit.path).name} ({hit.score:.3f})"))
        mods = ", ".join(f"{m} {hit.scores[m]:.2f} (#{hit.ranks[m]})" for m in hit.scores)
        lines.append(f"{n}. `{Path(hit.path).name}`: {mods}")
        for r in hit.reasons:
            ids = f" [{', '.join(r.ids[:6])}]" if r.ids else ""
            lines.append(f"    - {r.modality}: {r.text[:160]}{ids}")
    return gallery, "\n".join(lines), [h.to_dict() for h in result.hits]


def open_hit(hits: list[dict], index: int) -> dict:
    """The chat box's value for hit `index`: no text yet, a byte-for-byte copy of the image attached
    (Gradio serves files from its temp folder, not from wherever the images live)."""
    src = Path(hits[index]["path"])
    folder = Path(tempfile.mkdtemp(prefix="search-hit-"))
    dst = folder / src.name
    shutil.copyfile(src, dst)
    return {"text": "", "files": [str(dst)]}


def build_search_tab(chat_box, index: str | None = None) -> None:
    """A 'Search images' tab inside the current Blocks; a click on a hit fills `chat_box`."""
    import gradio as gr

    with gr.Tab("Search images"):
        with gr.Row():
            query = gr.Textbox(
                label="Find images by what they show",
                placeholder="the sign that says EXIT · a receipt over 20 · two people and a dog · photos from 2014",
                scale=4,
            )
            top = gr.Slider(1, 48, value=12, step=1, label="Hits", scale=1)
        with gr.Row():
            index_box = gr.Textbox(
                value=index or default_index(), label="Index file (launch.py index DIR)", scale=4
            )
            go = gr.Button("Search", variant="primary", scale=1)
        gallery = gr.Gallery(
            label="Hits: click one to ask about it in the chat", columns=4, height=420, allow_preview=False
        )
        reasons = gr.Markdown("")
        hits = gr.State([])

        def pick(found: list[dict], evt: gr.SelectData):
            value = open_hit(found, evt.index)
            note = f"Opened `{Path(found[evt.index]['path']).name}` in the chat's message box: ask your question there."
            return gr.MultimodalTextbox(value=value), note

        pick.__annotations__["evt"] = gr.SelectData  # Gradio reads the live type; this module's are strings
        for trigger in (go.click, query.submit):
            trigger(
                search_hits,
                [query, index_box, top],
                [gallery, reasons, hits],
                api_name="search" if trigger == go.click else False,
            )
        gallery.select(pick, [hits], [chat_box, reasons], api_name=False)
