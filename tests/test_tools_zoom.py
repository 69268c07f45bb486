"""Zoom: crop with a margin, enlarge, re-read; what it finds maps back to original-image pixels."""

from __future__ import annotations

import pytest
from PIL import Image

from synthetic.render import render_small_text
from tools.errors import BadInputError
from tools.evidence import iou
from tools.images import ImageRef
from tools.zoom import ZoomTool, crop


def _union(boxes):
    return (
        min(b[0] for b in boxes),
        min(b[1] for b in boxes),
        max(b[2] for b in boxes),
        max(b[3] for b in boxes),
    )


def test_zoom_reads_small_text_and_maps_words_back_to_the_original():
    """8-px text: the enlarged crop is read, and each word's box lands on that word in the full image."""
    sample = render_small_text(seed=1, size=8)
    ref = ImageRef.from_pil(sample.image)
    found = ZoomTool()(ref, box=_union([w.box for w in sample.words]))
    crops = [f for f in found if f.kind == "crop"]
    words = [f for f in found if f.kind == "word"]
    assert len(crops) == 1 and crops[0].extra["scale"] == pytest.approx(4.0, abs=0.05)
    assert all(f.extra["via"] == "zoom" and "line_id" in f.extra for f in words)
    hits = 0
    for truth in sample.words:
        match = [f for f in words if iou(f.box, truth.box) >= 0.5]
        hits += bool(match) and match[0].text == truth.text
    assert hits >= 3, f"{hits}/4 words read in place: {[(f.text, f.box) for f in words]}"
    # Every box is inside the crop region, in original pixels (not the 4x enlarged frame).
    cx0, cy0, cx1, cy1 = crops[0].box
    assert all(cx0 <= f.box[0] and f.box[2] <= cx1 and cy0 <= f.box[1] and f.box[3] <= cy1 for f in words)


def test_crop_margin_scale_and_clipping():
    im = Image.new("RGB", (200, 100))
    up, cbox, scale = crop(im, (50, 20, 100, 40), margin=0.2, scale=2.0)
    assert cbox == (40, 16, 110, 44) and up.size == (140, 56) and scale == 2.0
    _, cbox, scale = crop(im, (0, 0, 40, 20), margin=1.0)  # clipped at the image edge; auto scale capped
    assert cbox == (0, 0, 80, 40) and scale == 4.0
    with pytest.raises(BadInputError, match="outside"):
        crop(im, (300, 300, 400, 400))


def test_zoom_without_ocr_is_just_the_crop():
    ref = ImageRef.from_pil(Image.new("RGB", (200, 100), (9, 9, 9)))
    found = ZoomTool()(ref, box=(10, 10, 60, 30), ocr=False, margin=0.0, scale=3.0)
    assert [(f.kind, f.box) for f in found] == [("crop", (10, 10, 60, 30))]
    assert found[0].extra["size"] == [150, 60]
