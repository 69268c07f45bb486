"""Issue 21, item 10: one OCR engine failing never discards the other's reading, and an image far wider
than tall (a strip) is read in tiles, which the neural detector would otherwise see shrunk to specks."""

from __future__ import annotations

import pytesseract
import pytest
from PIL import Image, ImageDraw, ImageFont

from synthetic.render import render_sign
from tools import ocr_pipeline
from tools.images import ImageRef
from tools.ocr_pipeline import tiles
from tools.registry import default_registry
from tools.runner import ToolRunner

WORDS = ["ALPHA", "BRAVO", "CHARLIE", "DELTA", "ECHO", "FOXTROT", "GOLF", "HOTEL"]


@pytest.fixture(scope="module")
def runner():
    return ToolRunner(default_registry(enabled=["ocr"]))


def _draw(width: int, step: int, size: int):
    import subprocess

    path = subprocess.run(["fc-match", "-f", "%{file}", "DejaVu Sans"], capture_output=True, text=True).stdout
    font = ImageFont.truetype(path, size)
    im = Image.new("RGB", (width, 30), "white")
    draw, said = ImageDraw.Draw(im), []
    for i, x in enumerate(range(50, width - 300, step)):
        said.append(WORDS[i % 8])
        draw.text((x, 8), said[-1], fill="black", font=font)
    return ImageRef.from_pil(im, "strip.png"), said


def _read(runner, ref, **args) -> str:
    r = runner.run_one("ocr", ref, **args)
    assert r.ok, r.error
    return " ".join(f.text for f in r.findings if f.kind == "line").upper()


def test_tiles_cover_a_strip_and_own_each_stretch_once():
    spans = tiles((20000, 30), 1280)
    assert spans[0][1][0] == 0 and spans[-1][1][1] == 20000
    assert all(a[1][1] == b[1][0] for a, b in zip(spans, spans[1:], strict=False))  # owned end to end
    assert all(box[2] - box[0] <= 1280 for box, _ in spans)
    assert tiles((1600, 1200), 1280) == [] and tiles((1000, 30), 1280) == []


def test_a_long_strip_is_read_in_tiles(runner):
    ref, said = _draw(8000, 250, 12)
    text = _read(runner, ref)
    found = sum(w in text for w in set(said))
    read = len(text.split())
    print(f"{read} words read of {len(said)}")
    assert found == len(set(said)) and read >= 0.8 * len(said), text


def test_tesseract_failing_keeps_the_neural_reading(runner, monkeypatch):
    def too_large(*a, **kw):
        raise pytesseract.TesseractError(1, "Image too large: (40000, 30) Error during processing.")

    monkeypatch.setattr(pytesseract, "image_to_data", too_large)
    ref = ImageRef.from_pil(render_sign(seed=3, text="OPEN DAILY").image, "sign.png")
    r = runner.run_one("ocr", ref, engine="auto")
    assert r.ok, r.error
    lines = " ".join(f.text for f in r.findings if f.kind == "line").upper()
    notes = [f.text for f in r.findings if f.kind == "note"]
    assert "OPEN" in lines and "DAILY" in lines
    assert any("Tesseract failed" in n and "too large" in n for n in notes), notes


def test_tiling_is_what_reads_the_strip(monkeypatch):
    ref, said = _draw(8000, 250, 12)
    monkeypatch.setattr("tools.ocr.tiles", lambda size, side: [])
    whole = _read(ToolRunner(default_registry(enabled=["ocr"])), ref)  # a runner of its own: no cache
    assert len(whole.split()) < 0.5 * len(said), "the strip reads whole as well: this test shows nothing"
    assert ocr_pipeline.TESSERACT_MAX_SIDE == 32767
