"""The colour tool: dominant colours of an image or a region, named as a person would name them.

Pixels are reduced to a small palette by PIL's median-cut quantiser; each palette colour gets a
plain name ("dark red", "white", "light blue") from its hue, saturation and brightness, and colours
with the same name are merged, so the shares answer "what colour is it?" the way a person would.

A `region` is an object's box (a detection): the object is separated from the background inside it
(OpenCV's GrabCut, started from the box with a margin of the image around it as sure background) and
the colours named are the object's; the mask's share of the box is kept (`coverage`). Text boxes
(`text_boxes`) are measured apart: the letters' ink and the background around them (a sign's colour).
"""

from __future__ import annotations

import colorsys

from tools.base import Tool
from tools.errors import BadInputError
from tools.evidence import Finding
from tools.images import ImageRef

# Hue ranges in degrees (upper bound exclusive) -> basic colour names.
HUES = [
    (15, "red"),
    (40, "orange"),
    (68, "yellow"),
    (160, "green"),
    (190, "teal"),
    (255, "blue"),
    (320, "purple"),
]
HUES += [(345, "pink"), (360, "red")]

# Pixels analysed: enough for shares to 1 %, few enough to stay fast on large photos.
SAMPLE_SIDE = 160


def color_name(rgb) -> str:
    """A name a person would use for an sRGB colour."""
    r, g, b = (c / 255.0 for c in rgb[:3])
    hue, light, _ = colorsys.rgb_to_hls(r, g, b)
    value = max(r, g, b)
    chroma = value - min(r, g, b)
    if chroma < 0.12 or (value > 0 and chroma / value < 0.15):  # greys: no hue worth naming
        for limit, name in ((0.14, "black"), (0.38, "dark gray"), (0.64, "gray"), (0.86, "light gray")):
            if light < limit:
                return name
        return "white"
    if value < 0.16:
        return "black"
    base = _hue_name(hue * 360)
    if base == "orange" and value < 0.7:
        return "brown" if value > 0.3 else "dark brown"
    if base == "yellow" and value < 0.6:
        return "olive"
    if base == "red" and light > 0.72:
        return "pink"
    if value < 0.55:
        return f"dark {base}"
    if light > 0.7 and base != "pink":
        return f"light {base}"
    return base


def area_box(area: str, width: float, height: float) -> tuple[float, float, float, float]:
    """The pixels a position names: a quarter band at an edge, a corner, or the middle half."""
    x0, y0, x1, y1 = 0.0, 0.0, float(width), float(height)
    parts = area.split()
    if "top" in parts:
        y1 = height * 0.25
    if "bottom" in parts:
        y0 = height * 0.75
    if "left" in parts:
        x1 = width * 0.25 if len(parts) == 1 else width * 0.5
    if "right" in parts:
        x0 = width * 0.75 if len(parts) == 1 else width * 0.5
    if len(parts) == 2:  # a corner: the quarter of the image there
        y1 = height * 0.5 if "top" in parts else y1
        y0 = height * 0.5 if "bottom" in parts else y0
    if area in ("center", "centre", "middle"):
        x0, y0, x1, y1 = width * 0.25, height * 0.25, width * 0.75, height * 0.75
    return (x0, y0, x1, y1)


class ColorTool(Tool):
    name = "color"
    # 2: a text box's background is read just outside it; 3: a region's object, not its box; 4: grayscale;
    # 5: `rows`, a band of the object (a person's shirt is the upper middle of the person); GrabCut seeded;
    # 6: a black's tint; 7: the mask is the majority of three seeded GrabCut runs
    version = "7"
    description = (
        "Dominant colours of the image or of a region, as names ('dark red', 'white') with their share "
        "of the pixels. Use to answer questions about colour."
    )
    inputs = {
        "region": {
            "type": "box",
            "description": "An object's box: the colours of the object in it, apart from its background.",
            "default": None,
        },
        "rows": {
            "type": "array",
            "description": "With `region`: only this band of the object, as [from, to] fractions of the box's "
            "height (0 top, 1 bottom), e.g. [0.15, 0.55] for a standing person's shirt or jacket.",
            "default": None,
        },
        "area": {
            "type": "string",
            "description": "Only look at this part of the image: top, bottom, left, right, center, top left...",
            "default": None,
        },
        "text_boxes": {
            "type": "array",
            "description": "Boxes of text read there (OCR lines): measure the ink of the letters, apart from "
            "the background around them.",
            "default": None,
        },
        "colors": {
            "type": "integer",
            "description": "At most this many colours.",
            "default": 5,
            "minimum": 1,
        },
        "min_share": {
            "type": "number",
            "description": "Leave out colours covering less than this fraction.",
            "default": 0.05,
            "minimum": 0,
            "maximum": 1,
        },
    }
    evidence_prefix = "color"
    timeout_s = 10.0

    def forward(
        self, image: ImageRef, region=None, area=None, text_boxes=None, colors=5, min_share=0.05, rows=None
    ) -> list[Finding]:
        band = _rows(rows, region)
        found = self._measure(image.image, region, area, text_boxes, colors, min_share, band)
        if grayscale(image.image):  # a black-and-white photo: its shades of gray say nothing of colour
            for f in found:
                f.extra["grayscale"] = True
        return found

    def _measure(self, im, region, area, text_boxes, colors, min_share, band=None) -> list[Finding]:
        if text_boxes:
            return _ink(im, text_boxes, colors, min_share)
        box = (0.0, 0.0, float(im.width), float(im.height))
        extra = {}
        if area:
            unknown = set(str(area).lower().split()) - {
                "top",
                "bottom",
                "left",
                "right",
                "center",
                "centre",
                "middle",
            }
            if unknown:
                raise BadInputError(
                    f"area {area!r}: use top, bottom, left, right, center or a corner like 'top left'"
                )
            box, extra = area_box(area, im.width, im.height), {"area": area}
        if region is not None:
            box = tuple(float(v) for v in region)
            found = _object(im, box, colors, min_share, band)
            if found is not None:
                return found
        crop = box
        if band is not None:  # no mask: the band of the box itself
            crop = (
                box[0],
                box[1] + band[0] * (box[3] - box[1]),
                box[2],
                box[1] + band[1] * (box[3] - box[1]),
            )
            extra = {**extra, "rows": list(band)}
        if crop != (0.0, 0.0, float(im.width), float(im.height)):
            im = im.crop(tuple(round(v) for v in crop))
        return [Finding("color", n, 1.0, box, {**x, **extra}) for n, x in _named(im, colors, min_share)]


def _rows(rows, region) -> tuple[float, float] | None:
    """The `rows` argument checked: a band [from, to] of a region's height, 0 <= from < to <= 1."""
    if rows is None:
        return None
    if region is None:
        raise BadInputError("rows: a band of an object's box needs the box (`region`)")
    try:
        a, b = (float(v) for v in rows)
    except (TypeError, ValueError):
        raise BadInputError(f"rows {rows!r}: give [from, to], fractions of the box's height") from None
    if not 0.0 <= a < b <= 1.0:
        raise BadInputError(f"rows {rows!r}: need 0 <= from < to <= 1 (0 is the box's top)")
    return (a, b)


# A pixel whose channels differ by more than this (of 255) has a colour; an image where fewer than
# GRAY_PIXELS of them do is black-and-white (a JPEG's compression leaves a few tinted pixels in a gray one).
GRAY_SPREAD = 24
GRAY_PIXELS = 0.005


def grayscale(im) -> bool:
    """Whether an image is black-and-white: a gray mode, or RGB whose channels (nearly) never differ."""
    import numpy as np
    from PIL import Image

    if im.mode in ("1", "L", "LA", "I", "I;16", "F"):
        return True
    small = im.convert("RGB")
    small.thumbnail((SAMPLE_SIDE, SAMPLE_SIDE), Image.Resampling.BOX)
    px = np.asarray(small, dtype=np.int16)
    spread = px.max(axis=2) - px.min(axis=2)
    return float((spread > GRAY_SPREAD).mean()) < GRAY_PIXELS


def _named(im, colors: int, min_share: float) -> list[tuple[str, dict]]:
    """Dominant named colours of an image: (name, {share, rgb, hex}), largest first."""
    from PIL import Image

    im = im.copy()
    im.thumbnail((SAMPLE_SIDE, SAMPLE_SIDE), Image.Resampling.BOX)
    # A palette larger than the answer, so that two shades of one named colour do not steal a slot.
    pal = im.quantize(colors=max(8, 3 * colors), method=Image.Quantize.MEDIANCUT)
    palette = pal.getpalette()
    total = im.width * im.height
    merged: dict[str, list[float]] = {}  # name -> [pixel count, sum r, sum g, sum b]
    for count, idx in pal.getcolors(maxcolors=256) or []:
        rgb = palette[3 * idx : 3 * idx + 3]
        acc = merged.setdefault(color_name(rgb), [0, 0.0, 0.0, 0.0])
        acc[0] += count
        for i in range(3):
            acc[i + 1] += count * rgb[i]
    out = []
    for name, (count, *sums) in sorted(merged.items(), key=lambda kv: -kv[1][0])[:colors]:
        share = count / total
        if share >= min_share:
            rgb = [round(v / count) for v in sums]
            extra = {"share": round(share, 4), "rgb": rgb, "hex": "#{:02x}{:02x}{:02x}".format(*rgb)}
            if name == "black" and tint(rgb):  # a dark green sign in a dim photo: black, but tinted
                extra["tint"] = tint(rgb)
            out.append((name, extra))
    return out  # the share is in extra, not a doubt: confidence stays 1


# A "black" whose brightest channel is at least TINT_RATIO above its darkest (relative to the brightest)
# has a hue a person may see as the thing's colour in a dim photo (a dark green sign at dusk measures
# (15, 25, 23)): its name stays black, with the tint noted, and no answer states it as the colour.
TINT_RATIO = 0.35
TINT_MIN = 12  # channels this dark (of 255) are noise: no tint is read from them


def tint(rgb) -> str:
    """The hue name of a nearly black colour that still has one ("teal"), or ""."""
    hi, lo = max(rgb[:3]), min(rgb[:3])
    if hi < TINT_MIN or (hi - lo) / hi < TINT_RATIO:
        return ""
    return _hue_name(colorsys.rgb_to_hls(*(c / 255.0 for c in rgb[:3]))[0] * 360)


def hue(rgb) -> str:
    """The basic hue name of a colour ("orange" for brown, dark brown, and a black tinted orange), or ""
    for a gray: what tells the shades of one colour apart from another colour."""
    r, g, b = (c / 255.0 for c in rgb[:3])
    if max(r, g, b) - min(r, g, b) < 1e-6:
        return ""
    return _hue_name(colorsys.rgb_to_hls(r, g, b)[0] * 360)


def _hue_name(degrees: float) -> str:
    """The basic colour name of a hue in degrees (HUES)."""
    return next(name for limit, name in HUES if degrees < limit)


# GrabCut: the image around an object's box it sees (a share of the box's size, as sure background), the
# side it works at (speed), its iterations; a mask covering less than MIN_COVERAGE of the box is a failed
# separation (the box is measured whole instead).
CONTEXT = 0.25
CUT_SIDE = 160
CUT_ITERATIONS = 4
MIN_COVERAGE = 0.08
CUT_SEEDS = (0, 1, 2)  # GrabCut's runs per object (their majority is the mask); 0: a fresh process's start


def _object(im, box, colors: int, min_share: float, band=None) -> list[Finding] | None:
    """The colours of the object in `box`, apart from its background (GrabCut); None where it cannot be
    separated (no image around the box, OpenCV missing, an empty mask): the box is then measured whole.
    `band` (from, to): only the object's pixels in that band of the box's rows (a person's shirt)."""
    import numpy as np
    from PIL import Image

    try:
        import cv2
    except ImportError:
        return None
    x0, y0, x1, y1 = (round(v) for v in box)
    x0, y0, x1, y1 = max(0, x0), max(0, y0), min(im.width, x1), min(im.height, y1)
    if x1 - x0 < 8 or y1 - y0 < 8:
        return None
    m = round(CONTEXT * max(x1 - x0, y1 - y0))
    X0, Y0, X1, Y1 = max(0, x0 - m), max(0, y0 - m), min(im.width, x1 + m), min(im.height, y1 + m)
    if (x0, y0, x1, y1) == (X0, Y0, X1, Y1):
        return None  # the box is the whole image: nothing is known to be background
    crop = im.convert("RGB").crop((X0, Y0, X1, Y1))
    scale = min(1.0, CUT_SIDE / max(crop.size))
    small = crop.resize((max(1, round(crop.width * scale)), max(1, round(crop.height * scale))))
    rect = (
        round((x0 - X0) * scale),
        round((y0 - Y0) * scale),
        max(1, round((x1 - x0) * scale)),
        max(1, round((y1 - y0) * scale)),
    )
    bgr = np.ascontiguousarray(np.asarray(small)[:, :, ::-1])
    # GrabCut seeds its colour models from OpenCV's random generator: the same box gave a red motorcycle
    # one call and a gray one the next. It runs from CUT_SEEDS fixed seeds and a pixel is the object's
    # where most runs say so: the same answer every call, and less of one run's bad start in it.
    votes = np.zeros(bgr.shape[:2], np.int32)
    for seed in CUT_SEEDS:
        mask = np.zeros(bgr.shape[:2], np.uint8)
        try:
            cv2.setRNGSeed(seed)
            cv2.grabCut(bgr, mask, rect, None, None, CUT_ITERATIONS, cv2.GC_INIT_WITH_RECT)
        except cv2.error:
            return None
        votes += (mask == cv2.GC_FGD) | (mask == cv2.GC_PR_FGD)
    fg = votes * 2 > len(CUT_SEEDS)
    rx, ry, rw, rh = rect
    coverage = float(fg[ry : ry + rh, rx : rx + rw].mean()) if rw and rh else 0.0
    if coverage < MIN_COVERAGE:
        return None
    extra = {"mask": "grabcut", "coverage": round(coverage, 3)}
    if band is not None:  # the object's pixels in that band of its box only
        rows = np.zeros_like(fg)
        rows[ry + round(band[0] * rh) : ry + max(round(band[1] * rh), round(band[0] * rh) + 1)] = True
        if (fg & rows).sum() < MIN_COVERAGE * rows[:, rx : rx + rw].sum():
            return None  # hardly any of the object in the band: measure the band of the box
        fg &= rows
        extra["rows"] = list(band)
    px = np.asarray(small)[fg]
    side = max(1, int(len(px) ** 0.5))
    strip = Image.fromarray(px[: side * side].reshape(side, side, 3))
    return [Finding("color", n, 1.0, tuple(box), {**x, **extra}) for n, x in _named(strip, colors, min_share)]


INK_DISTANCE = 60.0  # RGB distance from the background beyond which a pixel in a text box is ink
RING = 0.3  # the band outside a text box its background is read from, as a fraction of the box's height


def _ink(im, boxes, colors: int, min_share: float) -> list[Finding]:
    """The letters' own colour inside text boxes: pixels far from the box's border colour (the background)."""
    import numpy as np
    from PIL import Image

    ink, ground = [], []
    im = im.convert("RGB")
    for b in boxes:
        x0, y0, x1, y1 = (round(float(v)) for v in b)
        x0, y0, x1, y1 = max(0, x0), max(0, y0), min(im.width, x1), min(im.height, y1)
        if y1 - y0 < 3 or x1 - x0 < 3:
            continue
        # The background is read just outside the box where there is room (an OCR box hugs its letters,
        # so its own edge is mostly ink); a box that fills the image has only its own edge. Only the box
        # and that band are read from the image, never all of it.
        m = max(2, round(RING * (y1 - y0)))
        X0, Y0, X1, Y1 = max(0, x0 - m), max(0, y0 - m), min(im.width, x1 + m), min(im.height, y1 + m)
        out = np.asarray(im.crop((X0, Y0, X1, Y1))).astype(float)
        a = out[y0 - Y0 : y1 - Y0, x0 - X0 : x1 - X0]
        keep = np.ones(out.shape[:2], dtype=bool)
        keep[y0 - Y0 : y1 - Y0, x0 - X0 : x1 - X0] = False
        ring = out[keep] if keep.sum() >= 0.5 * (a.shape[0] + a.shape[1]) else None
        if ring is None:
            ring = np.concatenate([a[0], a[-1], a[:, 0], a[:, -1]])
        bg = np.median(ring, axis=0)
        far = np.linalg.norm(a - bg, axis=-1) > INK_DISTANCE
        ink.append(a[far])
        ground.append(a[~far])
    ink_px = np.concatenate(ink) if ink else np.zeros((0, 3))
    ground_px = np.concatenate(ground) if ground else np.zeros((0, 3))
    total = len(ink_px) + len(ground_px)
    if not total or len(ink_px) < 0.02 * total:
        return []
    union = (min(float(b[0]) for b in boxes), min(float(b[1]) for b in boxes),
             max(float(b[2]) for b in boxes), max(float(b[3]) for b in boxes))  # fmt: skip
    out = []
    for part, px in (("ink", ink_px), ("background", ground_px)):
        if not len(px):
            continue
        side = max(1, int(len(px) ** 0.5))
        strip = Image.fromarray(px[: side * side].astype("uint8").reshape(side, side, 3))
        for name, extra in _named(strip, colors, min_share):
            out.append(Finding("color", name, 1.0, union, {**extra, "part": part}))
    return out
