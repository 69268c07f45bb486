"""Evidence ids and the one coordinate frame: round trips (property-based), EXIF rotation and crops."""

from __future__ import annotations

import io

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image, ImageDraw

from tools.evidence import (
    Evidence,
    EvidenceStore,
    Finding,
    clip_box,
    crop_to_original,
    from_1000,
    from_normalized,
    from_resized,
    iou,
    to_1000,
    to_normalized,
    to_resized,
)
from tools.images import ImageRef

sizes = st.tuples(st.integers(1, 8000), st.integers(1, 8000))


@st.composite
def box_in(draw, size):
    w, h = size
    x0 = draw(st.floats(0, w, allow_nan=False))
    y0 = draw(st.floats(0, h, allow_nan=False))
    x1 = draw(st.floats(x0, w, allow_nan=False))
    y1 = draw(st.floats(y0, h, allow_nan=False))
    return (x0, y0, x1, y1)


@st.composite
def size_and_box(draw):
    size = draw(sizes)
    return size, draw(box_in(size))


def _close(a, b, tol):
    return all(abs(x - y) <= tol for x, y in zip(a, b, strict=True))


@given(size_and_box())
def test_normalized_and_1000_round_trip(sb):
    size, box = sb
    n = to_normalized(box, size)
    assert all(0.0 <= v <= 1.0 + 1e-9 for v in n)
    assert _close(from_normalized(n, size), box, 1e-6 * max(size))
    k = to_1000(box, size)
    assert all(0.0 <= v <= 1000.0 + 1e-6 for v in k)
    assert _close(from_1000(k, size), box, 1e-6 * max(size))


@given(size_and_box(), sizes)
def test_resized_frame_round_trip_and_proportions(sb, resized):
    size, box = sb
    r = to_resized(box, size, resized)
    assert _close(from_resized(r, size, resized), box, 1e-6 * max(size))
    # The same relative place in both frames.
    assert _close(to_normalized(r, resized), to_normalized(box, size), 1e-9)


@given(size_and_box(), st.floats(1.0, 8.0), st.data())
def test_crop_maps_back_to_the_original(sb, scale, data):
    """A box inside a crop, found in the upscaled crop, maps back to where it is in the original."""
    size, crop = sb
    ox, oy = crop[0], crop[1]
    cw, ch = crop[2] - crop[0], crop[3] - crop[1]
    inner = data.draw(box_in((max(cw, 1e-9), max(ch, 1e-9))))  # crop-local, unscaled
    up = tuple(v * scale for v in inner)  # what a tool reports on the enlarged crop
    back = crop_to_original(up, (ox, oy), scale)
    expected = (inner[0] + ox, inner[1] + oy, inner[2] + ox, inner[3] + oy)
    assert _close(back, expected, 1e-6 * max(size))


@given(size_and_box(), size_and_box())
@settings(max_examples=200)
def test_iou_is_symmetric_bounded_and_one_for_itself(a, b):
    (_, ba), (_, bb) = a, b
    assert 0.0 <= iou(ba, bb) <= 1.0 + 1e-9
    assert iou(ba, bb) == pytest.approx(iou(bb, ba))
    if (ba[2] - ba[0]) * (ba[3] - ba[1]) > 1e-6:
        assert iou(ba, ba) == pytest.approx(1.0)


def test_clip_box_keeps_boxes_inside():
    assert clip_box((-5, -5, 50, 500), (40, 30)) == (0.0, 0.0, 40, 30)


# ---- ids -----------------------------------------------------------------------------------------


def test_ids_are_per_prefix_and_stable_for_the_same_call():
    store = EvidenceStore()
    words = [Finding("word", "OPEN", 0.9, (1, 2, 3, 4)), Finding("word", "24", 0.8, (5, 6, 7, 8))]
    a = store.add("ocr", "img1", words, call_key="k1", prefix="ocr")
    d = store.add("detect", "img1", [Finding("detection", "bus", 0.7, (0, 0, 9, 9))], "k2", prefix="det")
    again = store.add("ocr", "img1", words, call_key="k1", prefix="ocr")
    other = store.add("ocr", "img2", words[:1], call_key="k1", prefix="ocr")
    assert [e.id for e in a] == ["ocr:1", "ocr:2"] and [e.id for e in again] == ["ocr:1", "ocr:2"]
    assert [e.id for e in d] == ["det:1"] and [e.id for e in other] == ["ocr:3"]
    assert len(store) == 4 and store.get("det:1").label == "bus" and "ocr:3" in store
    assert [e.id for e in store.all("img2")] == ["ocr:3"]
    rec = store.get("det:1").to_dict()
    assert rec["label"] == "bus" and rec["box"] == [0, 0, 9, 9] and rec["confidence"] == 0.7
    assert Evidence.from_dict(rec).to_dict() == rec
    assert store.get("ocr:1").short() == '[ocr:1] word "OPEN" (0.90) box=[1,2,3,4]'


# ---- EXIF rotation and crops, end to end ---------------------------------------------------------


def _stored_sideways(upright: Image.Image, orientation: int) -> bytes:
    """Encode `upright` the way a camera would store it with this EXIF orientation."""
    # exif_transpose applies the inverse of these to get back to upright.
    stored = {
        3: upright.transpose(Image.Transpose.ROTATE_180),
        6: upright.transpose(Image.Transpose.ROTATE_90),
        8: upright.transpose(Image.Transpose.ROTATE_270),
    }[orientation]
    exif = Image.Exif()
    exif[0x0112] = orientation
    buf = io.BytesIO()
    stored.save(buf, format="PNG", exif=exif)
    return buf.getvalue()


def _scene():
    im = Image.new("RGB", (300, 200), (255, 255, 255))
    ImageDraw.Draw(im).rectangle([200, 40, 259, 79], fill=(220, 20, 20))  # a red block, top right
    return im, (200.0, 40.0, 260.0, 80.0)


@pytest.mark.parametrize("orientation", [3, 6, 8])
def test_boxes_are_in_the_upright_frame_after_exif_rotation(orientation):
    from tools.color import ColorTool

    upright, red_box = _scene()
    ref = ImageRef(_stored_sideways(upright, orientation))
    assert ref.size == (300, 200)  # upright, whatever the stored sides are
    # The colour tool looking at the upright box of the red block sees red there, nothing else.
    found = ColorTool()(ref, region=red_box)
    assert [f.text for f in found] == ["red"] and found[0].box == red_box
    # And the pixels at that box are the red ones, so every tool shares the frame.
    assert ref.image.getpixel((230, 60)) == (220, 20, 20)


def test_zoom_crop_boxes_map_back_through_exif_rotation():
    from tools.zoom import crop

    upright, red_box = _scene()
    ref = ImageRef(_stored_sideways(upright, 6))
    up, cbox, scale = crop(ref.image, red_box, margin=0.5, scale=3.0)
    assert cbox == (170, 20, 290, 100) and scale == pytest.approx(3.0)
    # Find the red block in the enlarged crop and map it back.
    px = up.load()
    reds = [
        (x, y) for y in range(up.height) for x in range(up.width) if px[x, y][0] > 200 and px[x, y][1] < 60
    ]
    xs, ys = [p[0] for p in reds], [p[1] for p in reds]
    found = (min(xs), min(ys), max(xs) + 1, max(ys) + 1)
    assert iou(crop_to_original(found, cbox[:2], scale), red_box) > 0.95
