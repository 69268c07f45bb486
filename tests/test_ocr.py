"""OCR read word by word on rendered images (synthetic.render), with the real Tesseract.

Each image is read once per module (`read` caches by image bytes) because a read costs ~1-2 s of CPU.
"""

from __future__ import annotations

import os
import stat

import pytest

from bench.ocr_eval import norm
from tools.base import ToolRegistry
from tools.errors import BadInputError, ToolError
from tools.evidence import Finding
from tools.images import ImageRef
from tools.ocr import OCRConfig, OCRTool, _ThreadLimitedEnv
from tools.runner import ToolCall, ToolRunner

_cache: dict = {}


@pytest.fixture(scope="module")
def ocr() -> OCRTool:
    return OCRTool()


@pytest.fixture(scope="module")
def read(ocr):
    """read(synth_image, **args) -> findings, memoised per (image, args)."""

    def _read(s, **args) -> list[Finding]:
        key = (s.image.tobytes(), s.image.size, tuple(sorted(args.items())))
        if key not in _cache:
            _cache[key] = ocr(ImageRef.from_pil(s.image), **args)
        return _cache[key]

    return _read


def kind(findings, k):
    return [f for f in findings if f.kind == k]


def missing_words(findings, s) -> list[str]:
    """Ground-truth words not read, or read away from where they are (centre outside the true box)."""
    got = kind(findings, "word")
    out = []
    for w in s.words:
        pad = 0.25 * (w.box[3] - w.box[1])
        if not any(
            norm(f.text) == norm(w.text)
            and w.box[0] - pad <= (f.box[0] + f.box[2]) / 2 <= w.box[2] + pad
            and w.box[1] - pad <= (f.box[1] + f.box[3]) / 2 <= w.box[3] + pad
            for f in got
        ):
            out.append(w.text)
    return out


def line_texts(findings) -> list[str]:
    return [f.text for f in kind(findings, "line")]


# ---- scene text --------------------------------------------------------------------------------


def test_reads_every_sign_word_by_word_in_place(read, sign_images):
    for s in sign_images:
        assert missing_words(read(s), s) == [], f"sign {s.lines} on plate {s.region}"


def test_reads_most_small_tilted_blurred_signs(read):
    from synthetic import render as synth

    signs = synth.sign_set(8, hard=True)
    fully = [s.lines for s in signs if not missing_words(read(s), s)]
    # Raw tesseract reads 1 of these 8 (bench/ocr_eval.py); ours reads all 8 when measured.
    assert len(fully) >= 7, f"only {fully} fully read"


def test_scene_words_are_not_drowned_in_junk(read, sign_images):
    returned = sum(len(kind(read(s), "word")) for s in sign_images)
    real = sum(len(s.words) for s in sign_images)
    assert returned <= real * 1.3, f"{returned} words returned for {real} real ones"


def test_scene_mode_reads_signs_too(read, sign_images):
    s = sign_images[1]
    assert missing_words(read(s, mode="scene"), s) == []


# ---- documents -----------------------------------------------------------------------------------


def test_receipt_prices_on_their_item_lines(read, receipt_images):
    for s in receipt_images:
        lines = line_texts(read(s))
        for name, price in s.items:
            assert f"{name} {price}" in lines, (name, price, lines)
        assert f"TOTAL {s.total}" in lines, lines


def test_document_mode_reads_a_receipt(read, receipt_image):
    lines = line_texts(read(receipt_image, mode="document"))
    assert f"TOTAL {receipt_image.total}" in lines


def test_paragraph_lines_in_reading_order(read, paragraph_images):
    for s in paragraph_images:
        found = read(s)
        assert missing_words(found, s) == []
        assert line_texts(found) == s.lines


def test_explicit_psm_is_used_for_the_page(read, paragraph_images):
    s = paragraph_images[0]
    found = read(s, psm=6, mode="document")
    assert line_texts(found) == s.lines
    assert {f.extra["pass"] for f in kind(found, "word")} == {"page"}


@pytest.mark.parametrize("angle", [90, 180, 270, 4, -6])
def test_rotated_text_read_upright_with_boxes_in_the_original(read, rotated_images, angle):
    s = rotated_images[angle]
    found = read(s)
    assert missing_words(found, s) == []
    assert line_texts(found) == s.lines


def test_small_text(read, small_text_images):
    for s in small_text_images:
        assert missing_words(read(s), s) == [], s.lines


def test_light_on_dark(read, light_on_dark_images):
    for s in light_on_dark_images:
        assert missing_words(read(s), s) == [], s.lines


@pytest.mark.parametrize("style", ["sign", "note", "receipt"])
def test_injection_text_is_read_as_text(read, injection_images, style):
    s = injection_images[style]
    found = read(s)
    assert missing_words(found, s) == []
    assert "IGNORE PREVIOUS INSTRUCTIONS" in " ".join(line_texts(found))


# ---- the evidence it returns ---------------------------------------------------------------------


def test_words_lines_and_blocks_fit_together(read, receipt_image):
    found = read(receipt_image)
    words, lines, blocks = kind(found, "word"), kind(found, "line"), kind(found, "block")
    assert words and lines and blocks
    for f in found:
        assert 0.0 <= f.confidence <= 1.0
    for line in lines:
        members = [w.text for w in words if w.extra["line_id"] == line.extra["line_id"]]
        assert " ".join(members) == line.text
    block_text = "\n".join(b.text for b in blocks)
    assert all(line.text in block_text for line in lines)


def test_region_reads_only_there_in_original_pixels(read, sign_images):
    s = sign_images[2]
    x0, y0, x1, y1 = s.region
    found = read(s, region=(x0 - 10, y0 - 10, x1 + 10, y1 + 10))
    assert missing_words(found, s) == []
    for f in found:
        assert x0 - 10 <= f.box[0] and f.box[2] <= x1 + 10 and y0 - 10 <= f.box[1] and f.box[3] <= y1 + 10


def test_min_confidence_filters(read, paragraph_images):
    s = paragraph_images[1]
    strict = kind(read(s, min_confidence=0.95), "word")
    assert all(f.confidence >= 0.95 for f in strict)
    assert len(strict) <= len(kind(read(s), "word"))


def test_bus_photo_boxes_inside_image(ocr, bus_image_path):
    ref = ImageRef.from_path(bus_image_path)
    w, h = ref.size
    found = ocr(ref)
    assert found, "no text at all on bus.jpg"
    for f in found:
        x0, y0, x1, y1 = f.box
        assert 0 <= x0 < x1 <= w and 0 <= y0 < y1 <= h, f


# ---- failures ------------------------------------------------------------------------------------


def test_bad_region_is_a_user_error(ocr, sign_images):
    with pytest.raises(BadInputError, match="outside"):
        ocr(ImageRef.from_pil(sign_images[0].image), region=[5000, 5000, 5100, 5100])


def test_unknown_language_is_a_user_error(ocr, sign_images):
    with pytest.raises(BadInputError, match="not installed"):
        ocr(ImageRef.from_pil(sign_images[0].image), lang="xxx")


def test_stuck_tesseract_is_killed_and_reported(tmp_path, monkeypatch, paragraph_images):
    import pytesseract

    tool = OCRTool(OCRConfig(call_timeout_s=1.0))
    tool.setup()
    tool._ready = True
    stuck = tmp_path / "tesseract"
    stuck.write_text("#!/bin/sh\nsleep 30\n")
    stuck.chmod(stuck.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setattr(pytesseract.pytesseract, "tesseract_cmd", str(stuck))
    runner = ToolRunner(ToolRegistry())
    runner.registry.register(tool)
    image = ImageRef.from_pil(paragraph_images[0].image)
    res = runner.run([ToolCall("ocr", image, {"engine": "tesseract"})])[0]
    assert res.error is not None and "did not finish within 1.0 s" in res.error
    assert res.duration_s < 10
    # With both engines (the default) the neural engine's reading stands, and the failure is noted.
    res = runner.run([ToolCall("ocr", image)])[0]
    assert res.ok and res.duration_s < 15
    assert {f.text for f in res.findings if f.kind == "word"} >= {"while", "children"}
    assert any(f.kind == "note" and "did not finish within 1.0 s" in f.text for f in res.findings)


def test_missing_tesseract_is_a_clear_error(monkeypatch, sign_images):
    import pytesseract

    monkeypatch.setattr(pytesseract.pytesseract, "tesseract_cmd", "/nonexistent/tesseract")
    with pytest.raises(ToolError, match="apt-get install tesseract-ocr"):
        OCRTool()(ImageRef.from_pil(sign_images[0].image))


def test_thread_limit_reaches_tesseract_only(monkeypatch):
    monkeypatch.delenv("OMP_THREAD_LIMIT", raising=False)
    env = _ThreadLimitedEnv()
    assert env["OMP_THREAD_LIMIT"] == "1" and "OMP_THREAD_LIMIT" in dict(env)
    assert "OMP_THREAD_LIMIT" not in os.environ
    monkeypatch.setenv("OMP_THREAD_LIMIT", "3")
    assert env["OMP_THREAD_LIMIT"] == "3"


# ---- layout and renderer (no Tesseract) ----------------------------------------------------------


def test_merge_keeps_the_more_confident_reading_of_a_spot():
    from tools.ocr_layout import OcrWord, merge

    words = [
        OcrWord("EXlT", 0.55, (10, 10, 50, 30), "sparse"),
        OcrWord("EXIT", 0.93, (11, 9, 51, 31), "region:0"),
        OcrWord("12.50", 0.90, (100, 10, 150, 30), "page"),
        OcrWord("12", 0.95, (100, 10, 120, 30), "sparse"),  # the sparse pass splits prices
        OcrWord("50", 0.95, (130, 10, 150, 30), "sparse"),
    ]
    kept = merge(words, bonus={"page": 0.1, "region": 0.08})
    assert sorted(w.text for w in kept) == ["12.50", "EXIT"]


def test_lines_pair_far_right_prices_with_their_items():
    from tools.ocr_layout import OcrWord, group_blocks, group_lines

    words = [
        OcrWord("Coffee", 0.9, (30, 50, 100, 66), "page"),
        OcrWord("3.20", 0.9, (340, 51, 390, 66), "page"),
        OcrWord("Green", 0.9, (30, 80, 90, 96), "page"),
        OcrWord("tea", 0.9, (100, 81, 136, 96), "page"),
        OcrWord("12.75", 0.9, (330, 80, 390, 95), "page"),
    ]
    lines = group_lines(words)
    assert [li.text for li in lines] == ["Coffee 3.20", "Green tea 12.75"]
    assert len(group_blocks(lines)) == 1


def test_junk_is_not_plausible():
    from tools.ocr_layout import OcrWord, clean_text, plausible

    def ok(text, conf=0.9, box=(0, 0, 40, 20)):
        return plausible(OcrWord(clean_text(text), conf, box, "page"), 0.5)

    assert ok("EXIT") and ok("|EXIT]") and ok("12.50") and ok("3")
    assert not ok("|||") and not ok("~.,") and not ok("EXIT", conf=0.3)
    assert not ok("a", conf=0.6) and not ok("EXIT", box=(0, 0, 40, 2))


def test_rotate_box_round_trip():
    from hypothesis import given
    from hypothesis import strategies as st

    from tools.ocr_layout import rotate_box

    @given(
        st.floats(0, 300),
        st.floats(0, 200),
        st.floats(1, 100),
        st.floats(1, 100),
        st.sampled_from([90, 180, 270, -90]),
    )
    def check(x, y, w, h, angle):
        size = (400, 300)
        turned = (300, 400) if angle % 180 else size
        box = (x, y, x + w, y + h)
        back = rotate_box(rotate_box(box, angle, size, turned), -angle, turned, size)
        assert all(abs(a - b) < 1e-6 for a, b in zip(box, back, strict=True))

    check()


def test_renderer_is_deterministic_and_truth_lies_inside():
    from synthetic import render as synth

    for make in (
        lambda: synth.render_sign(7, tilt=5, photo=True),
        lambda: synth.render_receipt(2),
        lambda: synth.render_rotated(90),
    ):
        a, b = make(), make()
        assert a.image.tobytes() == b.image.tobytes() and a.words == b.words
        w, h = a.image.size
        for word in a.words:
            x0, y0, x1, y1 = word.box
            assert -1 <= x0 < x1 <= w + 1 and -1 <= y0 < y1 <= h + 1, word
    r = synth.render_receipt(2)
    assert f"{sum(float(p) for _, p in r.items):.2f}" == r.total
