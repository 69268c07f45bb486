"""Words across boxes (`tools.ocr_words`): tight letter spacing, a word set in another size, a word in two
boxes.

The rules are checked exactly on hand-built boxes and ink; each case is also rendered here (DejaVu fonts,
as `synthetic.render` draws them) and read through both real engines by the OCR tool.
"""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image, ImageDraw

from synthetic import render as synth
from tools.images import ImageRef
from tools.ocr import OCRTool
from tools.ocr_fuse import FuseConfig, _fuse_line, fuse, loose
from tools.ocr_image import Ink
from tools.ocr_layout import OcrWord
from tools.ocr_rapid import TextLine
from tools.ocr_words import WordsConfig, join_halves, respace

_cache: dict = {}


@pytest.fixture(scope="module")
def ocr() -> OCRTool:
    return OCRTool()


def read(ocr, image: Image.Image):
    key = (image.tobytes(), image.size)
    if key not in _cache:
        _cache[key] = ocr(ImageRef.from_pil(image))
    return _cache[key]


def lines(findings) -> list[str]:
    return [f.text for f in findings if f.kind == "line"]


def words(findings) -> list:
    return [f for f in findings if f.kind == "word"]


# ---- renders -------------------------------------------------------------------------------------


def tight_sign(text: str, face: str, px: int, tracking: int) -> Image.Image:
    """Light letters on a red plate, drawn one by one with `tracking` pixels added after each (negative:
    tighter than the font sets them, as sign makers squeeze a long name onto a plate)."""
    im = Image.new("RGB", (640, 240), (200, 200, 190))
    d = ImageDraw.Draw(im)
    fnt = synth.font(face, px)
    width = sum(d.textlength(c, font=fnt) + tracking for c in text)
    x = (640 - width) / 2
    d.rounded_rectangle((x - 30, 60, x + width + 30, 60 + px * 1.6), radius=8, fill=(170, 20, 30))
    for c in text:
        if c != " ":
            d.text((x, 60 + px * 0.25), c, font=fnt, fill=(255, 255, 255))
        x += d.textlength(c, font=fnt) + tracking
    return im


def two_sizes(big_px: int, small_px: int, gap: int, face: str, small: str = "xtraX") -> Image.Image:
    """A brand in big letters and a smaller word right after it on one baseline ("PRO xtraX")."""
    im = Image.new("RGB", (640, 240), (225, 222, 215))
    d = ImageDraw.Draw(im)
    big, little = synth.font(face, big_px), synth.font(face, small_px)
    d.text((150, 140 - big.getmetrics()[0]), "PRO", font=big, fill=(150, 30, 40))
    x = 150 + d.textlength("PRO", font=big) + gap
    d.text((x, 140 - little.getmetrics()[0]), small, font=little, fill=(150, 30, 40))
    return im


# ---- tight letter spacing ------------------------------------------------------------------------


def _w(text, box, conf=0.9, source="rapid") -> OcrWord:
    return OcrWord(text, conf, tuple(float(v) for v in box), source)


def line_of(text: str, cols: list[float], box=(0, 0, 300, 40)) -> TextLine:
    x0, y0, x1, y1 = box
    quad = np.array([[x0, y0], [x1, y0], [x1, y1], [x0, y1]], dtype=np.float32)
    return TextLine(quad, text=text, conf=0.95, cols=cols, read=True)


def ink_of(letters: list[tuple[int, int]], width: int, top: int = 5, bottom: int = 35) -> Ink:
    """Ink with a letter over each (first column, end column) span."""
    tops, bottoms = [-1] * width, [0] * width
    for a, b in letters:
        for x in range(a, b):
            tops[x], bottoms[x] = top, bottom
    return Ink(tops, bottoms)


def test_a_dropped_space_is_put_back_where_the_ink_has_a_word_gap():
    # "FRESHBREAD": ten letters 20 columns apart that touch, but for a 6-column gap after "FRESH".
    spans = [(20 * k, 20 * k + 20) if k < 5 else (20 * k + 6, 20 * k + 26) for k in range(10)]
    ink = ink_of(spans, 300)
    li = line_of("FRESHBREAD", [((a + b) / 2) / 300 for a, b in spans])
    respace(li, ink, WordsConfig())
    assert li.text == "FRESH BREAD" and len(li.cols) == len(li.text)
    # The same gap between letters at their usual pitch is a letter's shape (an italic "Lo|ndon"), not a space.
    spans = [(20 * k, 20 * k + 20 - (6 if k == 4 else 0)) for k in range(10)]
    li = line_of("FRESHBREAD", [(20 * k + 10) / 300 for k in range(10)])
    respace(li, ink_of(spans, 300), WordsConfig())
    assert li.text == "FRESHBREAD"
    # Letters spaced wide all along: no gap stands out.
    spans = [(30 * k, 30 * k + 20) for k in range(10)]
    li = line_of("GREENSTEAD", [(30 * k + 10) / 300 for k in range(10)])
    respace(li, ink_of(spans, 300), WordsConfig())
    assert li.text == "GREENSTEAD"


def test_a_tesseract_word_run_over_a_neural_space_is_split_there():
    li = TextLine(
        np.array([[100, 50], [400, 50], [400, 90], [100, 90]], dtype=np.float32),
        text="OPEN DAILY",
        conf=0.95,
        read=True,
    )
    tess = [OcrWord("OPENDAILY", 0.9, (104.0, 55.0, 396.0, 85.0), "line:0")]
    out = fuse([li], tess, dense=False, cfg=FuseConfig())
    assert [w.text for w in out] == ["OPEN", "DAILY"]
    assert out[0].box[2] <= out[1].box[0] and 200 < out[0].box[2] < 260  # cut at the space
    assert all(w.agree for w in out)  # both engines read each


def test_a_space_only_the_ink_shows_splits_an_unsure_tesseract_word_only():
    def fused(conf):
        li = TextLine(
            np.array([[100, 50], [400, 50], [400, 90], [100, 90]], dtype=np.float32),
            text="OPENDAILY",
            conf=0.95,
            cols=[(k + 0.5) / 9 for k in range(9)],
            read=True,
        )
        li.text, li.cols = "OPEN DAILY", [*li.cols[:4], 4 / 9, *li.cols[4:]]  # as `respace` puts it back
        tess = [OcrWord("OPENDAILY", conf, (104.0, 55.0, 396.0, 85.0), "line:0")]
        return [w.text for w in _fuse_line(li, tess, False, FuseConfig(), None, soft={4})]

    assert fused(0.85) == ["OPEN", "DAILY"]
    assert fused(0.95) == ["OPENDAILY"]  # a word Tesseract is sure of stands


@pytest.mark.parametrize(
    "text,face,tracking",
    [
        ("FRESH BREAD DAILY", "serif-bold", -6),
        ("OPEN DAILY", "serif-bold", -5),
        ("FISH AND CHIPS", "sans-bold", -7),
        ("FISH AND CHIPS", "serif-bold", -6),
        ("FISH AND CHIPS", "sans", -7),  # both engines run "FISHAND" together; the ink splits it
        ("HOT COFFEE", "serif-bold", -6),
    ],
)
def test_words_tracked_tight_are_read_as_words(ocr, text, face, tracking):
    found = read(ocr, tight_sign(text, face, 44, tracking))
    assert lines(found) == [text]
    assert [w.text for w in words(found)] == text.split()


# ---- a word set in another size --------------------------------------------------------------------


@pytest.mark.parametrize(
    "face,small_px,gap", [("serif", 36, 2), ("sans", 36, 2), ("sans", 30, 2), ("serif", 30, -2)]
)
def test_a_smaller_word_glued_to_a_bigger_one_is_a_word_of_its_own(ocr, face, small_px, gap):
    found = read(ocr, two_sizes(64, small_px, gap, face))
    got = [w.text for w in words(found)]
    assert got[0] == "PRO" and [loose(t) for t in got[1:]] == ["xtrax"], got


# ---- a word in two boxes ---------------------------------------------------------------------------


def test_a_word_whose_halves_were_detected_as_two_lines_is_one_word():
    cfg = WordsConfig()

    def line(text, x0, x1):
        li = TextLine(
            np.array([[x0, 10], [x1, 10], [x1, 50], [x0, 50]], dtype=np.float32), text=text, read=True
        )
        return li, [_w(text, (x0 + 2, 16, x1 - 2, 44))]

    left, right, far = line("Compe", 100, 200), line("titive", 201, 320), line("market", 340, 460)
    out = join_halves([left, right, far], cfg)
    assert [w.text for w in out] == ["Competitive", "market"]
    assert out[0].box[0] == 102 and out[0].box[2] == 318
    # a space apart, or a capital after it: two words
    assert [w.text for w in join_halves([line("Compe", 100, 200), line("Titive", 201, 320)], cfg)] == [
        "Compe",
        "Titive",
    ]
    assert len(join_halves([line("Compe", 100, 200), line("titive", 216, 320)], cfg)) == 2
