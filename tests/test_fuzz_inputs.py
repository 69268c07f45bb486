"""Fuzzing the two doors hostile input comes through: the image loader and the API request parser.

Whatever the bytes or the JSON, the only outcomes allowed are a usable result (an 8-bit RGB image of
the declared size or smaller; a `ChatRequest`) or a `BadInputError` with a one-line message.
Anything else (a crash, a RecursionError, a multi-line traceback text) is a bug."""

from __future__ import annotations

import base64
import io
import json

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from frontends.openai_format import ChatRequest, RequestLimits, parse_request
from tools.errors import BadInputError
from tools.images import MAX_DECODE_PIXELS, ImageRef

FUZZ = settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
TRIED = {"images": 0, "requests": 0}  # how many inputs were tried, for the report

MODES_FORMATS = [
    ("RGB", "PNG"),
    ("RGBA", "PNG"),
    ("L", "PNG"),
    ("LA", "PNG"),
    ("P", "PNG"),
    ("1", "PNG"),
    ("I;16", "PNG"),
    ("I", "TIFF"),
    ("F", "TIFF"),
    ("CMYK", "JPEG"),
    ("RGB", "JPEG"),
    ("L", "JPEG"),
    ("CMYK", "TIFF"),
    ("RGB", "WEBP"),
    ("RGBA", "WEBP"),
    ("P", "GIF"),
    ("RGB", "BMP"),
    ("LAB", "TIFF"),
]  # YCbCr TIFF is left out: Pillow cannot read back its own tiny YCbCr TIFFs ("image file is truncated")


def _valid(mode: str, fmt: str, w: int, h: int, seed: int) -> bytes:
    import numpy as np

    rng = np.random.default_rng(seed)
    im = Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8), "RGB")
    if mode == "I;16":
        im = Image.fromarray(rng.integers(0, 65536, (h, w), dtype=np.uint16))
    elif mode == "F":
        im = Image.fromarray(rng.normal(0, 100, (h, w)).astype(np.float32), "F")
    elif mode == "LAB":
        im = Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8), "LAB")
    else:
        im = im.convert(mode)
    buf = io.BytesIO()
    im.save(buf, fmt)
    return buf.getvalue()


def _check_image(data: bytes) -> None:
    TRIED["images"] += 1
    ref = ImageRef(data, source="fuzz")
    try:
        im = ref.image
    except BadInputError as e:
        assert "\n" not in str(e) and str(e)
        return
    assert im.mode == "RGB" and im.size[0] * im.size[1] <= MAX_DECODE_PIXELS
    assert im.size[0] >= 1 and im.size[1] >= 1


@FUZZ
@given(st.binary(max_size=2048))
def test_random_bytes_never_crash_the_loader(data):
    _check_image(data)


@FUZZ
@given(
    st.sampled_from(MODES_FORMATS),
    st.integers(1, 40),
    st.integers(1, 40),
    st.integers(0, 2**16),
    st.lists(st.tuples(st.integers(0, 10**6), st.integers(0, 255)), max_size=6),
    st.integers(0, 10**6),
)
def test_valid_images_of_every_mode_and_their_corruptions(mf, w, h, seed, flips, cut):
    data = _valid(mf[0], mf[1], w, h, seed)
    ref = ImageRef(data)
    assert ref.image.mode == "RGB" and ref.image.size == (w, h)  # the intact file decodes whole
    TRIED["images"] += 1
    broken = bytearray(data)
    for at, value in flips:
        broken[at % len(broken)] = value
    _check_image(bytes(broken))
    _check_image(data[: cut % (len(data) + 1)])


# ---- the request parser -----------------------------------------------------------------------------

_png = base64.b64encode(_valid("RGB", "PNG", 4, 3, 0)).decode()
json_leaf = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20)
json_any = st.recursive(
    json_leaf,
    lambda kids: st.lists(kids, max_size=4) | st.dictionaries(st.text(max_size=8), kids, max_size=4),
    max_leaves=20,
)
part = st.one_of(
    st.fixed_dictionaries({"type": st.just("text"), "text": st.text(max_size=30)}),
    st.fixed_dictionaries(
        {
            "type": st.just("image_url"),
            "image_url": st.fixed_dictionaries(
                {
                    "url": st.sampled_from(
                        [
                            "data:image/png;base64," + _png,
                            "data:image/png;base64," + _png[:-7],
                            "data:text/html;base64,PGgxPg==",
                            "http://127.0.0.1:9/x.png",
                            "file:///etc/passwd",
                            "data:image/png," + _png,
                            "",
                        ]
                    )
                }
            ),
        }
    ),
    st.fixed_dictionaries({"type": st.text(max_size=12)}),
    json_any,
)
message = st.fixed_dictionaries(
    {
        "role": st.sampled_from(["user", "assistant", "system", "developer", "tool", "robot", ""]),
        "content": st.one_of(st.text(max_size=40), st.lists(part, max_size=4), st.none(), json_any),
    }
)
request = st.fixed_dictionaries(
    {"messages": st.one_of(st.lists(message, max_size=4), json_any)},
    optional={
        "model": st.one_of(st.text(max_size=10), json_any),
        "stream": json_any,
        "max_tokens": st.one_of(st.integers(-5, 10**7), json_any),
        "temperature": st.one_of(st.floats(-1, 3, allow_nan=False), json_any),
        "stop": json_any,
        "conversation_id": st.one_of(st.text(max_size=140), st.sampled_from(["../../x", "/etc/x", "ok-1"])),
        "n": json_any,
    },
)


def _check_request(body) -> None:
    TRIED["requests"] += 1
    try:
        req = parse_request(body, RequestLimits(max_images=3))
    except BadInputError as e:
        assert "\n" not in str(e) and str(e)
        return
    assert isinstance(req, ChatRequest) and req.question.role == "user"
    assert req.conversation_id is None or (
        "/" not in req.conversation_id and ".." not in req.conversation_id[:2]
    )


@FUZZ
@given(request)
def test_structured_requests_parse_or_fail_with_one_line(body):
    _check_request(body)
    _check_request(json.dumps(body).encode())


@FUZZ
@given(st.binary(max_size=512) | st.text(max_size=200).map(str.encode))
def test_raw_bodies_parse_or_fail_with_one_line(raw):
    _check_request(raw)


@settings(max_examples=30, deadline=None)
@given(st.integers(500, 200_000), st.sampled_from(["[", '{"a":', '[{"messages":']))
def test_deep_nesting_is_a_one_line_error(depth, opener):
    _check_request((opener * depth).encode())


def test_report_how_many_inputs_were_tried():
    print(f"fuzz: {TRIED['images']} image inputs, {TRIED['requests']} request bodies")
