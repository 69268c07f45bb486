"""OCR read word by word on rendered images (tools.synth), with real Tesseract."""

from __future__ import annotations

import pytest

from bench.ocr_eval import norm
from tools.errors import BadInputError
from tools.images import ImageRef
from tools.ocr import OCRTool


@pytest.fixture(scope="module")
def ocr() -> OCRTool:
    return OCRTool()


def words(findings):
    return [f for f in findings if f.kind == "word"]


def read_words(ocr, synth_image, **args) -> set[str]:
    return {norm(f.text) for f in words(ocr(ImageRef.from_pil(synth_image.image), **args))}


def missing(ocr, synth_image, **args) -> list[str]:
    got = read_words(ocr, synth_image, **args)
    return [w.text for w in synth_image.words if norm(w.text) not in got]


def test_reads_every_sign_word_by_word(ocr, sign_images):
    for s in sign_images:
        assert missing(ocr, s) == [], f"sign {s.lines} at {s.region}"


def test_sign_word_boxes_sit_on_the_plate(ocr, sign_images):
    s = sign_images[0]
    found = {f.text: f.box for f in words(ocr(ImageRef.from_pil(s.image)))}
    for w in s.words:
        box = found[w.text]
        cx, cy = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2
        assert w.box[0] - 3 <= cx <= w.box[2] + 3 and w.box[1] - 3 <= cy <= w.box[3] + 3, (w, box)


def test_receipt_prices_on_their_item_lines(ocr, receipt_images):
    for s in receipt_images:
        lines = [f.text for f in ocr(ImageRef.from_pil(s.image)) if f.kind == "line"]
        for name, price in s.items:
            assert f"{name} {price}" in lines, (name, price, lines)
        assert f"TOTAL {s.total}" in lines, lines


def test_bad_region_is_a_user_error(ocr, sign_images):
    with pytest.raises(BadInputError, match="outside"):
        ocr(ImageRef.from_pil(sign_images[0].image), region=[5000, 5000, 5100, 5100])


def test_bus_photo_boxes_inside_image(ocr, bus_image_path):
    ref = ImageRef.from_path(bus_image_path)
    w, h = ref.size
    found = ocr(ref)
    assert found, "no text at all on bus.jpg"
    for f in found:
        x0, y0, x1, y1 = f.box
        assert 0 <= x0 < x1 <= w and 0 <= y0 < y1 <= h, f
