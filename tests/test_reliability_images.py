"""Issue 12 on image input: every PIL mode decodes to the right 8-bit RGB (16-bit text no longer turns
white), a tiny JPEG declaring a huge image is decoded small by the JPEG decoder itself, a request's
images are bounded together, and a multi-page file says it was read from its first page."""

from __future__ import annotations

import base64
import io
import subprocess
import sys
import time

import numpy as np
import pytest
from PIL import Image, ImageDraw, ImageFont

from frontends.openai_format import RequestLimits, parse_request
from tools.errors import BadInputError
from tools.images import MAX_DECODE_PIXELS, ImageRef


def _sign_l(size=(240, 80)) -> Image.Image:
    """A dark word on a light ground, 8-bit greyscale, with mid-grey anti-aliasing."""
    im = Image.new("L", size, 235)
    font = ImageFont.truetype("DejaVuSans-Bold.ttf", size[1] // 2)
    ImageDraw.Draw(im).text((size[0] // 10, size[1] // 5), "OPEN", fill=20, font=font)
    return im


def _encode(im: Image.Image, fmt: str = "PNG", **kw) -> bytes:
    buf = io.BytesIO()
    im.save(buf, fmt, **kw)
    return buf.getvalue()


def _grey(ref: ImageRef) -> np.ndarray:
    im = ref.image
    assert im.mode == "RGB"
    return np.asarray(im.convert("L")).astype(int)


def test_16_bit_greyscale_is_scaled_not_clipped():
    eight = _sign_l()
    a = np.asarray(eight).astype(np.uint16) * 257  # the same picture over the full 16-bit range
    for mode_bytes in (a, a.astype(">u2")):
        sixteen = Image.fromarray(mode_bytes)
        assert sixteen.mode in ("I;16", "I;16B")
        data = _encode(sixteen, "TIFF") if sixteen.mode == "I;16B" else _encode(sixteen)
        got = _grey(ImageRef(data))
        assert np.abs(got - np.asarray(eight)).max() <= 1  # was all white (255) before
    # 12-bit data stored in 16 bits keeps its contrast too
    twelve = Image.fromarray((np.asarray(eight).astype(np.uint16) * 16).astype(np.uint16))
    got = _grey(ImageRef(_encode(twelve)))
    assert got.min() < 40 and got.max() > 215


def test_32_bit_integer_and_float_images():
    eight = np.asarray(_sign_l()).astype(np.float64)
    as_i = Image.fromarray((eight * 257).astype(np.int32), "I")
    assert np.abs(_grey(ImageRef(_encode(as_i, "TIFF"))) - eight).max() <= 1
    for scale in (1 / 255, 1.0):  # floats in 0-1 and in 0-255
        as_f = Image.fromarray((eight * scale).astype(np.float32), "F")
        assert np.abs(_grey(ImageRef(_encode(as_f, "TIFF"))) - eight).max() <= 1
    odd = Image.fromarray((eight * 10 - 1000).astype(np.float32), "F")  # negative, odd range
    got = _grey(ImageRef(_encode(odd, "TIFF")))
    assert got.min() == 0 and got.max() == 255


@pytest.mark.parametrize("mode", ["LA", "PA", "RGBA", "P-transparent"])
def test_transparency_is_laid_over_white(mode):
    rgba = Image.new("RGBA", (20, 10), (0, 0, 0, 0))
    ImageDraw.Draw(rgba).rectangle((5, 2, 14, 7), fill=(0, 0, 0, 255))
    if mode == "P-transparent":
        im = rgba.convert("P", palette=Image.Palette.ADAPTIVE)
        im.info["transparency"] = im.getpixel((0, 0))
    else:
        im = rgba.convert(mode)
    from tools.images import _to_rgb

    got = _to_rgb(im) if mode == "PA" else ImageRef(_encode(im)).image  # no file format stores PA
    assert got.getpixel((0, 0)) == (255, 255, 255) and got.getpixel((10, 5)) == (0, 0, 0)


@pytest.mark.parametrize("mode", ["1", "L", "P", "CMYK", "YCbCr", "LAB", "HSV", "RGB", "I;16"])
def test_every_mode_gives_rgb_of_the_same_size(mode):
    from tools.images import _to_rgb

    im = Image.new("RGB", (13, 7), (200, 30, 90)).convert(mode) if mode not in ("LAB", "I;16") else None
    if mode == "LAB":
        im = Image.new("LAB", (13, 7), (50, 128, 128))
    if mode == "I;16":
        im = Image.new("I;16", (13, 7), 40000)
    out = _to_rgb(im)
    assert out.mode == "RGB" and out.size == (13, 7)


def _bomb(side: int = 6300) -> bytes:
    """A valid few-hundred-byte JPEG whose header declares side x side pixels."""
    data = bytearray(_encode(Image.new("RGB", (8, 8), "white"), "JPEG"))
    i = data.find(b"\xff\xc0")
    data[i + 5 : i + 9] = side.to_bytes(2, "big") + side.to_bytes(2, "big")
    return bytes(data)


def test_a_jpeg_declaring_a_huge_image_is_decoded_small_and_says_so():
    ref = ImageRef(_bomb(), source="bomb.jpg")
    assert ref.decoded_pixels() == 3150 * 3150 <= MAX_DECODE_PIXELS  # from the header alone
    assert ref.image.size == (3150, 3150) and ref.original_size == (6300, 6300)
    assert any("decoded at 3150x3150 from 6300x6300" in n for n in ref.notes)
    # Peak memory of a fresh process decoding it: the 6300x6300 raster (119 MB) never exists.
    code = (
        "import resource, sys; from tools.images import ImageRef; "
        "r0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss; "
        "ImageRef(sys.stdin.buffer.read()).image; "
        "print((resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - r0) // 1024)"
    )
    grown = subprocess.run([sys.executable, "-c", code], input=_bomb(), capture_output=True, check=True)
    assert int(grown.stdout) < 80, f"decoding grew RSS by {int(grown.stdout)} MB"


def test_a_request_of_eight_bombs_is_refused_before_decoding():
    url = "data:image/jpeg;base64," + base64.b64encode(_bomb()).decode()
    body = {"messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": url}}] * 8}]}
    t0 = time.perf_counter()
    with pytest.raises(BadInputError, match="together they decode to 79380000 pixels"):
        parse_request(body, RequestLimits())
    assert time.perf_counter() - t0 < 5
    one = {"messages": [{"role": "user", "content": body["messages"][0]["content"][:1]}]}
    assert parse_request(one, RequestLimits()).images[0].size == (3150, 3150)


def test_a_multi_page_tiff_says_only_the_first_page_is_read():
    pages = [Image.new("RGB", (30, 20), c) for c in ("red", "green", "blue")]
    buf = io.BytesIO()
    pages[0].save(buf, "TIFF", save_all=True, append_images=pages[1:])
    ref = ImageRef(buf.getvalue())
    assert ref.image.getpixel((0, 0)) == (255, 0, 0)
    assert ref.notes == ["TIFF file with 3 pages: only the first is read"]
    from tools.metadata import MetadataTool

    facts = [f.text for f in MetadataTool()(ref)]  # the evidence says so too
    assert "decoding: TIFF file with 3 pages: only the first is read" in facts


def test_16_bit_sign_is_read_by_ocr(tmp_path):
    from tools.ocr import OCRTool

    eight = _sign_l((480, 160))
    sixteen = Image.fromarray(np.asarray(eight).astype(np.uint16) * 257)
    words = [f.text for f in OCRTool()(ImageRef(_encode(sixteen)))]
    assert "OPEN" in " ".join(words).upper()
