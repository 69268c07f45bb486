"""Issue 21, items 9 and 11: a multi-page TIFF is read page by page (the pages are images 1..N, so "what
does page two say?" is answered from page two), and an animated GIF's distinct frames are read, named
as frames of the file, never its first frame alone in silence."""

from __future__ import annotations

import io

import pytest

from assistant import scope
from assistant.session import Assistant, AssistantConfig
from synthetic.render import render_sign
from tests.scripted_engine import ScriptedEngine
from tools.images import MAX_PAGES, ImageRef, pages
from tools.registry import default_registry
from tools.runner import ToolRunner

TEXTS = ["OPEN DAILY", "CLOSED SUNDAY", "EXIT ONLY"]


def _multi(fmt: str, texts: list[str]) -> ImageRef:
    frames = [render_sign(seed=i + 1, text=t).image.convert("RGB") for i, t in enumerate(texts)]
    if fmt == "GIF":
        frames = [f.resize(frames[0].size).convert("P") for f in frames]
    buf = io.BytesIO()
    frames[0].save(buf, format=fmt, save_all=True, append_images=frames[1:], duration=100)
    return ImageRef(data=buf.getvalue(), source=f"doc.{fmt.lower()}")


def test_a_tiff_becomes_one_image_per_page():
    refs = pages(_multi("TIFF", TEXTS))
    assert [r.source for r in refs] == [f"doc.tiff, page {i} of 3" for i in (1, 2, 3)]
    assert len({r.id for r in refs}) == 3
    assert pages(ImageRef.from_pil(render_sign(seed=1, text="ONE").image))[0].source == "<pil>"


def test_an_animated_gif_reads_its_distinct_frames_and_says_how_many_of_how_many():
    refs = pages(_multi("GIF", TEXTS))
    assert [r.source for r in refs] == [f"doc.gif, frame {i} of 3" for i in (1, 2, 3)]
    assert len({r.id for r in refs}) == 3
    long = pages(_multi("GIF", [f"SIGN {i}" for i in range(20)]))
    assert (
        len(long) == MAX_PAGES
        and long[-1].source == f"doc.gif, frame 20 of 20; {MAX_PAGES} of its 20 frames read"
    )


@pytest.mark.parametrize(
    "question, picked",
    [
        ("What does page two say?", [2]),
        ("what is on page 3", [3]),
        ("the second page", [2]),
        ("frame 1?", [1]),
    ],
)
def test_a_page_or_frame_named_in_the_question_is_that_image(question, picked):
    assert scope.named(question, 3, [1, 2, 3], []) == picked


def test_what_page_two_says_is_read_from_page_two(tmp_path):
    runner = ToolRunner(default_registry(enabled=["ocr"]))
    conv = Assistant(ScriptedEngine(), runner, AssistantConfig(trace_dir=str(tmp_path))).conversation()
    r = conv.ask("What does page two say?", [_multi("TIFF", TEXTS)])
    assert [im.source for im in conv.images] == [f"doc.tiff, page {i} of 3" for i in (1, 2, 3)]
    assert "CLOSED SUNDAY" in r.answer.upper() and "OPEN DAILY" not in r.answer.upper(), r.answer


def test_a_request_counts_every_page_against_its_pixel_budget():
    import base64

    from frontends.openai_format import RequestLimits, parse_request
    from tools.errors import BadInputError

    ref = _multi("TIFF", TEXTS)
    one = ref.decoded_pixels()
    url = "data:image/tiff;base64," + base64.b64encode(ref.data).decode()
    body = {"messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": url}}]}]}
    assert parse_request(body, RequestLimits(max_request_pixels=3 * one)).images
    with pytest.raises(BadInputError, match="decode to"):
        parse_request(body, RequestLimits(max_request_pixels=2 * one))  # three pages are read, not one
