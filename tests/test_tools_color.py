"""The colour tool names dominant colours as a person would, with their shares."""

from __future__ import annotations

import pytest
from PIL import Image, ImageDraw

from tools.color import ColorTool, color_name
from tools.images import ImageRef


@pytest.mark.parametrize(
    "rgb,name",
    [
        ((255, 255, 255), "white"),
        ((0, 0, 0), "black"),
        ((128, 128, 128), "gray"),
        ((200, 20, 20), "red"),
        ((120, 10, 10), "dark red"),
        ((173, 216, 230), "light blue"),
        ((20, 40, 200), "blue"),
        ((0, 0, 110), "dark blue"),
        ((30, 160, 40), "green"),
        ((250, 210, 20), "yellow"),
        ((255, 150, 0), "orange"),
        ((139, 69, 19), "brown"),
        ((150, 40, 170), "purple"),
        ((255, 192, 203), "pink"),
    ],
)
def test_names_a_person_would_use(rgb, name):
    assert color_name(rgb) == name


def _ref(im):
    return ImageRef.from_pil(im)


def test_a_solid_image_is_one_colour():
    found = ColorTool()(_ref(Image.new("RGB", (120, 80), (120, 10, 10))))
    assert len(found) == 1
    f = found[0]
    assert f.kind == "color" and f.text == "dark red" and f.extra["share"] == 1.0
    assert f.extra["rgb"] == [120, 10, 10] and f.box == (0.0, 0.0, 120.0, 80.0)


def test_stripes_split_the_shares_and_shades_merge_by_name():
    im = Image.new("RGB", (300, 100), (255, 255, 255))
    d = ImageDraw.Draw(im)
    for x in range(0, 300, 100):  # red stripes a third of the width, in two shades of red
        d.rectangle([x, 0, x + 32, 99], fill=(210, 20, 20) if x % 200 else (190, 30, 25))
    found = ColorTool()(_ref(im))
    shares = {f.text: f.extra["share"] for f in found}
    assert set(shares) == {"white", "red"}
    assert shares["red"] == pytest.approx(0.33, abs=0.03) and shares["white"] == pytest.approx(0.67, abs=0.03)
    assert [f.text for f in found] == ["white", "red"]  # largest first


def test_region_and_limits():
    im = Image.new("RGB", (200, 100), (255, 255, 255))
    ImageDraw.Draw(im).rectangle([100, 0, 199, 99], fill=(20, 40, 200))
    tool = ColorTool()
    right = tool(_ref(im), region=(100, 0, 200, 100))
    assert [f.text for f in right] == ["blue"] and right[0].box == (100.0, 0.0, 200.0, 100.0)
    assert len(tool(_ref(im), colors=1)) == 1
    assert tool(_ref(im), min_share=0.6) == []  # two halves: neither reaches 60 %
