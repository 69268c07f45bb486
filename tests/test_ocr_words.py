"""Words across boxes (`tools.ocr_words`): tight letter spacing, a word set in another size, a big initial
letter, a word hyphenated at a line's end, a word in two boxes.

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
from tools.ocr_words import WordsConfig, join_across_boxes, join_halves, respace

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


def initial(word: str, scale: float) -> tuple[Image.Image, float]:
    """A word whose first letter is set `scale` times bigger in red bold (a menu's or a shop's initial),
    the rest in plain serif on one baseline; returns the image and the middle of the initial."""
    im = Image.new("RGB", (640, 240), (250, 245, 230))
    d = ImageDraw.Draw(im)
    big, body = synth.font("serif-bold", int(40 * scale)), synth.font("serif", 40)
    d.text((150, 150 - big.getmetrics()[0]), word[0], font=big, fill=(160, 40, 20))
    box = d.textbbox((150, 150 - big.getmetrics()[0]), word[0], font=big)
    d.text(
        (152 + d.textlength(word[0], font=big), 150 - body.getmetrics()[0]),
        word[1:],
        font=body,
        fill=(30, 30, 30),
    )
    return im, (box[0] + box[2]) / 2


HYPHENATED = [
    "The club holds a friendly but competi-",
    "tive match for juniors every week,",
    "and the organisers welcome volun-",
    "teers from the whole neighbourhood.",
]


def paragraph(text_lines: list[str], face: str = "serif", size: int = 22) -> Image.Image:
    """Dark body text on a light page, the lines as given (broken where a typesetter broke them)."""
    fnt = synth.font(face, size)
    probe = ImageDraw.Draw(Image.new("RGB", (1, 1)))
    im = Image.new(
        "RGB",
        (
            int(max(probe.textlength(t, font=fnt) for t in text_lines)) + 60,
            int(size * 1.5) * len(text_lines) + 60,
        ),
        (252, 252, 250),
    )
    d = ImageDraw.Draw(im)
    for i, t in enumerate(text_lines):
        d.text((30, 30 + i * int(size * 1.5)), t, font=fnt, fill=(25, 25, 25))
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


# ---- a big initial letter --------------------------------------------------------------------------


@pytest.mark.parametrize("word", ["Burger", "Welcome"])
@pytest.mark.parametrize("scale", [1.8, 2.5, 3.2])
def test_a_big_initial_letter_joins_its_word(ocr, word, scale):
    im, middle = initial(word, scale)
    found = read(ocr, im)
    assert lines(found) == [word]
    (w,) = words(found)
    assert w.text == word and w.box[0] < middle  # the word's box takes the initial in
    assert len(w.extra["parts"]) == 2


def test_initial_rules_on_boxes():
    cfg = WordsConfig()
    # a raised initial (baselines shared) and a drop cap beside two lines: the word it starts
    out = join_across_boxes([_w("B", (100, 20, 160, 100)), _w("urger", (164, 64, 260, 100))], cfg=cfg)
    assert [w.text for w in out] == ["Burger"] and out[0].box == (100.0, 64.0, 260.0, 100.0)
    drop = [_w("T", (100, 20, 170, 110)), _w("he", (176, 22, 210, 50)), _w("story", (176, 70, 260, 100))]
    assert [w.text for w in join_across_boxes(drop, cfg=cfg)] == ["The", "story"]
    # a capital of the body's size is a word ("I am"); so is a big letter a space away, or before a capital
    assert len(join_across_boxes([_w("I", (100, 20, 110, 50)), _w("am", (124, 28, 160, 50))], cfg=cfg)) == 2
    assert (
        len(join_across_boxes([_w("B", (100, 20, 160, 100)), _w("urger", (200, 64, 296, 100))], cfg=cfg)) == 2
    )
    assert (
        len(join_across_boxes([_w("B", (100, 20, 160, 100)), _w("URGER", (164, 64, 260, 100))], cfg=cfg)) == 2
    )


# ---- a word broken at a line's end -----------------------------------------------------------------


def test_a_word_hyphenated_at_a_line_end_is_one_word_on_the_first_line(ocr):
    found = read(ocr, paragraph(HYPHENATED))
    got = lines(found)
    assert got[0].endswith("but competitive") and got[1].startswith("match")
    assert got[2].endswith("welcome volunteers") and got[3].startswith("from")
    w = next(w for w in words(found) if w.text == "competitive")
    assert [p["text"] for p in w.extra["parts"]] == ["competi-", "tive"]
    assert w.extra["parts"][1]["box"][1] > w.box[3]  # the second piece lies on the next line


def test_hyphenation_rules_on_boxes():
    cfg = WordsConfig()
    page = [
        _w("a", (10, 10, 20, 30)),
        _w("competi-", (30, 10, 110, 30)),
        _w("tive", (10, 40, 50, 60)),
        _w("match", (60, 40, 120, 60)),
    ]
    assert [w.text for w in join_across_boxes(page, cfg=cfg)] == ["a", "competitive", "match"]
    # A capital on the next line starts a new sentence or a name: the hyphen was junk, and is dropped.
    page[2] = _w("Tive", (10, 40, 50, 60))
    assert [w.text for w in join_across_boxes(page, cfg=cfg)] == ["a", "competi", "Tive", "match"]
    # Two columns: the word goes on at the start of its own column's next line, not the other column's.
    cols = [
        _w("the", (10, 10, 40, 30)),
        _w("competi-", (50, 10, 130, 30)),
        _w("shall", (300, 10, 350, 30)),
        _w("apply", (360, 10, 410, 30)),
        _w("tive", (10, 40, 50, 60)),
        _w("service", (60, 40, 130, 60)),
        _w("under", (300, 40, 350, 60)),
    ]
    assert [w.text for w in join_across_boxes(cols, cfg=cfg)] == [
        "the",
        "competitive",
        "shall",
        "apply",
        "service",
        "under",
    ]


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
