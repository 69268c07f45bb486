"""The colour tool: dominant colours of an image or a region, named as a person would name them.

Pixels are reduced to a small palette by PIL's median-cut quantiser; each palette colour gets a
plain name ("dark red", "white", "light blue") from its hue, saturation and brightness, and colours
with the same name are merged, so the shares answer "what colour is it?" the way a person would.
"""

from __future__ import annotations

import colorsys

from tools.base import Tool
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
    deg = hue * 360
    base = next(name for limit, name in HUES if deg < limit)
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


class ColorTool(Tool):
    name = "color"
    description = (
        "Dominant colours of the image or of a region, as names ('dark red', 'white') with their share "
        "of the pixels. Use to answer questions about colour."
    )
    inputs = {
        "region": {"type": "box", "description": "Only look inside this box.", "default": None},
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

    def forward(self, image: ImageRef, region=None, colors=5, min_share=0.05) -> list[Finding]:
        from PIL import Image

        im = image.image
        box = (0.0, 0.0, float(im.width), float(im.height))
        if region is not None:
            box = tuple(float(v) for v in region)
            im = im.crop(tuple(round(v) for v in region))
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
        ranked = sorted(merged.items(), key=lambda kv: -kv[1][0])[:colors]
        out = []
        for name, (count, *sums) in ranked:
            share = count / total
            if share < min_share:
                continue
            rgb = [round(s / count) for s in sums]
            extra = {"share": round(share, 4), "rgb": rgb, "hex": "#{:02x}{:02x}{:02x}".format(*rgb)}
            out.append(Finding("color", name, 1.0, box, extra))  # the share is in extra, not a doubt
        return out
