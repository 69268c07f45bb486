"""Evidence drawn on images: boxes labelled with their ids, the ones the answer cites highlighted.

Used by the UI's evidence view and by `trace render`. Boxes are in original-image pixels, which is the
frame both the UI (which has the image) and a trace (which records the evidence) hold them in.
"""

from __future__ import annotations

from functools import lru_cache

# Outline colour per evidence prefix; cited evidence is drawn thicker in CITED, with a translucent fill.
COLOURS = {"ocr": (30, 110, 230), "det": (240, 140, 0), "zoom": (150, 60, 200), "color": (20, 160, 90)}
OTHER = (120, 120, 120)
CITED = (230, 20, 60)


@lru_cache(maxsize=8)
def _font(size: int):
    from PIL import ImageFont

    for name in ("DejaVuSans.ttf", "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf"):
        try:
            return ImageFont.truetype(name, size)
        except OSError:
            continue
    return ImageFont.load_default(size=size)


def boxes_to_draw(evidence: list[dict], cited: set[str]) -> list[dict]:
    """Which records get a box: detections and crops always; OCR lines (or words when there are no
    lines) to keep the picture readable; anything cited always."""
    with_box = [e for e in evidence if e.get("box")]
    has_lines = any(e.get("kind") == "line" for e in with_box if e.get("tool") == "ocr")
    ocr_kind = "line" if has_lines else "word"
    out = []
    for e in with_box:
        if e["id"] in cited or e.get("tool") != "ocr" or e.get("kind") == ocr_kind:
            out.append(e)
    # cited ones last, so they are drawn on top
    return sorted(out, key=lambda e: e["id"] in cited)


def draw_evidence(image, evidence: list[dict], cited: set[str] | list[str] = (), max_side: int = 1600):
    """A copy of `image` (PIL) with the evidence boxes drawn and labelled; returns a PIL RGB image."""
    from PIL import Image, ImageDraw

    cited = set(cited)
    im = image.convert("RGB")
    scale = 1.0
    if max(im.size) > max_side:
        scale = max_side / max(im.size)
        im = im.resize((round(im.width * scale), round(im.height * scale)))
    base = im.convert("RGBA")
    overlay = Image.new("RGBA", base.size, (0, 0, 0, 0))
    draw = ImageDraw.Draw(overlay)
    width = max(2, round(max(base.size) / 400))
    font = _font(max(11, round(max(base.size) / 60)))
    for e in boxes_to_draw(evidence, cited):
        x0, y0, x1, y1 = (v * scale for v in e["box"])
        is_cited = e["id"] in cited
        colour = CITED if is_cited else COLOURS.get(e["id"].split(":")[0], OTHER)
        if is_cited:
            draw.rectangle((x0, y0, x1, y1), fill=(*colour, 50))
        draw.rectangle((x0, y0, x1, y1), outline=(*colour, 255), width=width * (2 if is_cited else 1))
        label = e["id"]
        tx0, ty0, tx1, ty1 = draw.textbbox((0, 0), label, font=font)
        tw, th = tx1 - tx0, ty1 - ty0
        ly = y0 - th - 4 if y0 - th - 4 >= 0 else y1 + 1
        draw.rectangle((x0, ly, x0 + tw + 4, ly + th + 4), fill=(*colour, 220))
        draw.text((x0 + 2 - tx0, ly + 2 - ty0), label, fill=(255, 255, 255, 255), font=font)
    return Image.alpha_composite(base, overlay).convert("RGB")


def side_by_side(images: list, gap: int = 12, background=(255, 255, 255)):
    """Panels next to each other (one per image of a turn), tops aligned."""
    from PIL import Image

    if len(images) == 1:
        return images[0]
    w = sum(im.width for im in images) + gap * (len(images) - 1)
    h = max(im.height for im in images)
    out = Image.new("RGB", (w, h), background)
    x = 0
    for im in images:
        out.paste(im, (x, 0))
        x += im.width + gap
    return out
