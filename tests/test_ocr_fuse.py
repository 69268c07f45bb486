"""The two OCR engines and their fusion: the neural engine (rapidocr-onnxruntime) and Tesseract, both real.

Unit tests of the fusion build the neural lines and Tesseract words by hand (what each engine would
return), so the rules are checked exactly; the rest read rendered images with both engines.
"""

from __future__ import annotations

import concurrent.futures as cf

import numpy as np
import pytest
from PIL import Image, ImageDraw

from synthetic import render as synth
from tools.base import ToolRegistry
from tools.errors import ToolError
from tools.images import ImageRef
from tools.ocr import OCRTool
from tools.ocr_fuse import FuseConfig, fuse, loose
from tools.ocr_layout import OcrWord
from tools.ocr_rapid import RapidEngine, TextLine
from tools.runner import ToolRunner

_cache: dict = {}


@pytest.fixture(scope="module")
def ocr() -> OCRTool:
    return OCRTool()


def read(ocr, image: Image.Image, **args):
    key = (image.tobytes(), image.size, tuple(sorted(args.items())))
    if key not in _cache:
        _cache[key] = ocr(ImageRef.from_pil(image), **args)
    return _cache[key]


def words(findings):
    return [f for f in findings if f.kind == "word"]


def lines(findings):
    return [f.text for f in findings if f.kind == "line"]


def line(text: str, box=(100, 50, 500, 90), conf: float = 0.95) -> TextLine:
    x0, y0, x1, y1 = box
    quad = np.array([[x0, y0], [x1, y0], [x1, y1], [x0, y1]], dtype=np.float32)
    return TextLine(quad, text=text, conf=conf, read=True)


def tess_words(li: TextLine, texts: list[str], conf: float | list[float]) -> list[OcrWord]:
    """Tesseract-like words laid out along `li` where the neural line's own words are (same order)."""
    confs = conf if isinstance(conf, list) else [conf] * len(texts)
    own = li.words()
    assert len(own) == len(texts)
    return [OcrWord(t, c, w.box, "page") for t, c, w in zip(texts, confs, own, strict=True)]


# ---- fusion rules ---------------------------------------------------------------------------------


def test_tesseract_noise_on_a_sure_neural_line_does_not_cut_its_words_or_boxes():
    li = line("LONDON", box=(40, 55, 369, 109), conf=0.998)
    tess = [OcrWord("Ke)", 0.83, (50.0, 63.0, 141.0, 101.0), "line")]  # blue letters Tesseract misread
    out = fuse([li], tess, dense=False, cfg=FuseConfig())
    assert [w.text for w in out] == ["LONDON"]
    assert out[0].box[0] < 45 and out[0].box[2] > 360  # the whole word's box, not the misread stretch's
    assert out[0].alts == [{"engine": "tesseract", "text": "Ke)", "confidence": 0.83}]
    # a Tesseract reading like the neural one still splits and settles the line as before
    li = line("TOTAL 8.85")
    assert {
        w.text for w in fuse([li], tess_words(li, ["TOTAL", "8.86"], 0.7), dense=False, cfg=FuseConfig())
    } == {
        "TOTAL",
        "8.85",
    }


def test_agreement_is_credited_to_both_engines_and_a_word_only_one_read_is_kept():
    li = line("TOTAL 8.85")
    tess = [tess_words(li, ["TOTAL", "8.85"], 0.9)[0]]  # Tesseract missed the far-right price
    out = fuse([li], tess, dense=False, cfg=FuseConfig())
    by_text = {w.text: w for w in out}
    assert set(by_text) == {"TOTAL", "8.85"}
    assert by_text["TOTAL"].agree == {"tesseract": 0.9, "rapid": 0.95} and by_text["TOTAL"].source == "page"
    assert by_text["TOTAL"].conf == pytest.approx(0.95)  # the more confident engine's
    assert by_text["8.85"].engine == "rapid" and by_text["8.85"].conf == pytest.approx(0.95)
    # The price's box lies at the right of the line, where its characters are.
    assert by_text["8.85"].box[0] > by_text["TOTAL"].box[2]


def test_dropped_spaces_and_punctuation_are_not_a_disagreement():
    li = line("Eppingen,Germany")  # the neural engine often drops spaces
    tess = [
        OcrWord("Eppingen,", 0.9, (100, 52, 300, 88), "page"),
        OcrWord("Germany", 0.9, (310, 52, 500, 88), "page"),
    ]
    out = fuse([li], tess, dense=False, cfg=FuseConfig())
    assert [w.text for w in out] == ["Eppingen,", "Germany"]  # Tesseract's word breaks and boxes
    assert all(list(w.agree) == ["tesseract", "rapid"] and not w.alts for w in out)


def test_disagreement_on_a_scene_keeps_the_neural_reading_and_records_tesseracts():
    li = line("BEWARE OF MAINTENANCE VEHICLES", box=(40, 100, 760, 150), conf=0.93)
    tess = tess_words(li, ["BEWARE", "OF", "NANCE", "VEHICLES"], [0.9, 0.92, 0.62, 0.88])
    out = fuse([li], tess, dense=False, cfg=FuseConfig())
    assert " ".join(w.text for w in out) == "BEWARE OF MAINTENANCE VEHICLES"
    fixed = next(w for w in out if w.text == "MAINTENANCE")
    assert fixed.engine == "rapid"
    assert fixed.alts == [{"engine": "tesseract", "text": "NANCE", "confidence": 0.62}]
    assert all(list(w.agree) == ["tesseract", "rapid"] for w in out if w is not fixed)


def test_disagreement_on_a_dense_page_keeps_confident_tesseract():
    li = line("Invoice nunber 6000", conf=0.9)
    tess = tess_words(li, ["Invoice", "number", "6000"], [0.95, 0.93, 0.95])
    out = fuse([li], tess, dense=True, cfg=FuseConfig())
    word = next(w for w in out if loose(w.text).startswith("nu"))
    assert word.text == "number" and word.engine == "tesseract"
    assert word.alts == [{"engine": "rapid", "text": "nunber", "confidence": 0.9}]
    # The same words on a scene, where the neural engine leads, go the other way.
    tess = tess_words(li, ["Invoice", "number", "6000"], [0.95, 0.93, 0.95])
    scene = fuse([li], tess, dense=False, cfg=FuseConfig())
    assert "nunber" in [w.text for w in scene]


def test_tesseract_words_outside_every_neural_line_are_kept():
    li = line("OPEN")
    far = OcrWord("Monday", 0.9, (100, 300, 220, 330), "page")
    out = fuse([li], [far], dense=True, cfg=FuseConfig())
    assert {w.text for w in out} == {"OPEN", "Monday"}


# ---- the engines on rendered images ----------------------------------------------------------------


def test_neural_engine_reads_a_rendered_sign_with_word_boxes(ocr):
    s = synth.render_sign(3, text="PLATFORM 2 EXIT", font_px=(36, 40))
    found = words(read(ocr, s.image, engine="rapid"))
    assert {loose(f.text) for f in found} >= {"platform", "2", "exit"}
    assert all(f.extra["engine"] == "rapid" for f in found)
    for truth in s.words:  # each word's box lies on the word (boxes come from character positions)
        f = next(f for f in found if loose(f.text) == loose(truth.text))
        cx, cy = (f.box[0] + f.box[2]) / 2, (f.box[1] + f.box[3]) / 2
        assert truth.box[0] - 8 <= cx <= truth.box[2] + 8 and truth.box[1] - 8 <= cy <= truth.box[3] + 8


def test_engine_input_selects_the_engine(ocr):
    s = synth.render_sign(5, text="NO PARKING", font_px=(40, 44))
    for engine in ("tesseract", "rapid"):
        found = words(read(ocr, s.image, engine=engine))
        assert found and {f.extra["engine"] for f in found} == {engine}, engine
    fused = words(read(ocr, s.image))  # the default is both, fused
    both = [f for f in fused if f.extra.get("engines") == ["tesseract", "rapid"]]
    assert both and all(0 < c <= 1 for f in both for c in f.extra["confidence_by_engine"].values())
    assert {loose(f.text) for f in fused} >= {"no", "parking"}


def _wide_receipt() -> tuple[Image.Image, list[tuple[str, str]]]:
    """A receipt whose prices sit far right of their items (a wide till roll, scanned)."""
    names = [
        "TEA",
        "SCONE",
        "JAM",
        "BUTTER",
        "COFFEE",
        "MUFFIN",
        "TOAST",
        "JUICE",
        "WATER",
        "BAGEL",
        "SOUP",
        "SALAD",
        "CAKE",
    ]
    items = [(n, f"{1 + k % 7}.{(17 * k) % 100:02d}") for k, n in enumerate(names)]
    items.append(("TOTAL", f"{sum(float(p) for _, p in items):.2f}"))
    im = Image.new("RGB", (1400, 80 + 40 * len(items)), (250, 248, 240))
    d = ImageDraw.Draw(im)
    fnt = synth.font("mono", 22)
    d.text((40, 20), "CORNER CAFE", font=fnt, fill=(20, 20, 20))
    for i, (name, price) in enumerate(items):
        y = 70 + 40 * i
        d.text((40, y), name, font=fnt, fill=(20, 20, 20))
        d.text((1400 - 40 - d.textlength(price, font=fnt), y), price, font=fnt, fill=(20, 20, 20))
    return im, items


def test_default_reading_keeps_far_right_prices_on_their_item_lines(ocr):
    im, items = _wide_receipt()
    for args in ({}, {"mode": "document"}):  # the mode hint never drops text
        got = [loose(t) for t in lines(read(ocr, im, **args))]
        for name, price in items:
            assert loose(f"{name} {price}") in got, (args, name, got)


# ---- failures and concurrency ----------------------------------------------------------------------


def test_neural_engine_failure_leaves_tesseracts_reading(monkeypatch):
    def broken(self, rgb):
        raise RuntimeError("onnxruntime exploded")

    monkeypatch.setattr(RapidEngine, "detect", broken)
    s = synth.render_sign(5, text="NO PARKING", font_px=(40, 44))
    reg = ToolRegistry()
    reg.register(OCRTool())
    res = ToolRunner(reg).run_one("ocr", ImageRef.from_pil(s.image))
    assert res.ok, res.error
    assert {loose(f.text) for f in words(res.findings)} >= {"no", "parking"}
    notes = [f for f in res.findings if f.kind == "note"]
    assert len(notes) == 1 and "onnxruntime exploded" in notes[0].text
    # Asked for the neural engine alone, the failure is the tool's error (a result, not a crash).
    res = ToolRunner(reg).run_one("ocr", ImageRef.from_pil(s.image), engine="rapid")
    assert not res.ok and "onnxruntime exploded" in res.error


def test_tesseract_failure_leaves_the_neural_reading(monkeypatch):
    import tools.ocr as ocr_module

    def stuck(self, *a, **k):
        raise ToolError("ocr", "Tesseract did not finish within 0.1 s")

    monkeypatch.setattr(ocr_module._Reader, "read", stuck)
    monkeypatch.setattr(ocr_module._Reader, "read_lines", stuck)
    s = synth.render_sign(5, text="NO PARKING", font_px=(40, 44))
    found = OCRTool()(ImageRef.from_pil(s.image))
    assert {loose(f.text) for f in words(found)} >= {"no", "parking"}
    assert all(f.extra["engine"] == "rapid" for f in words(found))
    assert any(f.kind == "note" and "Tesseract" in f.text for f in found)


def test_concurrent_calls_read_what_a_single_call_reads(ocr):
    signs = [synth.render_sign(k, text=t, font_px=(36, 40)) for k, t in enumerate(("GATE 12", "EXIT ONLY"))]
    alone = [sorted(f.text for f in words(ocr(ImageRef.from_pil(s.image), engine="rapid"))) for s in signs]
    with cf.ThreadPoolExecutor(4) as pool:
        futures = [pool.submit(ocr, ImageRef.from_pil(signs[k % 2].image), engine="rapid") for k in range(6)]
        got = [sorted(f.text for f in words(fu.result(timeout=120))) for fu in futures]
    assert got == [alone[k % 2] for k in range(6)]


def test_zoom_reads_its_crop_with_the_same_engines():
    from tools.zoom import ZoomTool

    s = synth.render_sign(5, text="NO PARKING", font_px=(40, 44))
    box = (min(w.box[0] for w in s.words), min(w.box[1] for w in s.words))
    box += (max(w.box[2] for w in s.words), max(w.box[3] for w in s.words))
    found = ZoomTool()(ImageRef.from_pil(s.image), box=box, engine="rapid")
    read = [f for f in found if f.kind == "word"]
    assert {loose(f.text) for f in read} >= {"no", "parking"}
    assert all(f.extra["engine"] == "rapid" and f.extra["via"] == "zoom" for f in read)


def test_tesseract_does_not_overrule_a_script_it_cannot_read():
    li = line("杭州东 G7512次 上海", conf=0.8)
    tess = [OcrWord("512%", 0.97, li.span(5, 9).box, "page")]  # Tesseract (eng) on the Chinese line
    out = fuse([li], tess, dense=True, cfg=FuseConfig())
    assert "G7512次" in [w.text for w in out]
    assert next(w for w in out if w.text == "G7512次").alts[0]["text"] == "512%"


def test_amounts_with_their_sign_are_words():
    from tools.ocr_layout import plausible

    for text in ("5%", "$5", "¥73", "12,50"):
        assert plausible(OcrWord(text, 0.9, (0, 0, 30, 20), "rapid"), 0.5), text
    assert not plausible(OcrWord("%%", 0.9, (0, 0, 30, 20), "rapid"), 0.5)


def test_a_word_tesseract_broke_apart_is_the_neural_engines_whole_word():
    li = line("Greenstead", box=(100, 50, 400, 90))
    parts = [("Gree", 0, 4), ("nstea", 4, 9), ("d", 9, 10)]
    tess = [OcrWord(t, 0.9, li.span(a, b).box, "page") for t, a, b in parts]
    out = fuse([li], tess, dense=False, cfg=FuseConfig())
    assert [w.text for w in out] == ["Greenstead"]
    assert out[0].box[0] <= 105 and out[0].box[2] >= 390
    # Words a real space apart stay apart.
    li = line("Eppingen,Germany")
    tess = [
        OcrWord("Eppingen,", 0.9, (100, 52, 290, 88), "page"),
        OcrWord("Germany", 0.9, (310, 52, 500, 88), "page"),
    ]
    assert [w.text for w in fuse([li], tess, dense=False, cfg=FuseConfig())] == ["Eppingen,", "Germany"]
