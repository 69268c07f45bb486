"""More variety than the renderers the OCR was tuned on: every installed face, other layouts, photo effects.

- `installed_faces()`: every DejaVu, Liberation and Noto face fontconfig knows (DejaVu always; Liberation
  with Debian's fonts-liberation, Noto with fonts-noto-core), so a set rendered elsewhere uses what is there.
- `render_receipt_layout`: till receipts laid out as real ones are: prices right-aligned far from their
  item on a wide slip (`far-right`), two item/price columns side by side (`two-column`), or a centred
  TOTAL line (`centred-total`).
- `photograph`: what a phone camera and a scanner do: perspective, blur, JPEG, low contrast.

Everything is deterministic in its seed. Word boxes are not tracked through the effects: these images
are for question answering, where the truth is the text, not its place.
"""

from __future__ import annotations

import io
import random
import subprocess
from functools import cache

from PIL import Image, ImageDraw, ImageEnhance, ImageFilter, ImageOps

from synthetic.render import ITEMS, SynthImage, draw_words, font, font_path

FAMILIES = ("dejavu", "liberation", "noto")
EFFECTS = ("perspective", "blur", "jpeg", "low-contrast")
LAYOUTS = ("far-right", "two-column", "centred-total")
SHOPS = ("CORNER CAFE", "GREEN GROCER", "CITY BAKERY", "HARBOUR DELI", "MARKET HALL", "STATION KIOSK")
_SKIP = ("math", "extralight", "emoji", "symbol", "color")


@cache
def installed_faces() -> tuple[str, ...]:
    """Paths of every installed DejaVu/Liberation/Noto Latin text face, sorted (DejaVu Sans at least)."""
    try:
        out = subprocess.run(["fc-list", ":", "file"], capture_output=True, text=True, timeout=10).stdout
    except (OSError, subprocess.SubprocessError):
        out = ""
    faces = set()
    for line in out.splitlines():
        path = line.split(":")[0].strip()
        low = path.lower().rsplit("/", 1)[-1]
        if (
            path.endswith(".ttf")
            and any(f in path.lower() for f in FAMILIES)
            and not any(s in low for s in _SKIP)
        ):
            # Noto ships hundreds of scripts; keep its Latin text faces.
            if "noto" in low and not low.startswith(("notosans-", "notoserif-", "notosansmono-")):
                continue
            faces.add(path)
    return tuple(sorted(faces)) or (font_path("sans"),)


def face_for(seed: int, bold_only: bool = False) -> str:
    faces = [f for f in installed_faces() if not bold_only or "bold" in f.lower()] or list(installed_faces())
    return faces[seed % len(faces)]


def photograph(im: Image.Image, rng: random.Random, effects: tuple[str, ...] = EFFECTS) -> Image.Image:
    """Apply the named effects in a camera's order: perspective, low contrast, blur, then JPEG."""
    im = im.convert("RGB")
    if "perspective" in effects:
        # A margin first, so the pulled-in side never cuts off text at the edge.
        im = ImageOps.expand(im, (im.width // 10, im.height // 10), fill=im.getpixel((0, 0)))
        w, h = im.size
        dx, dy = w * rng.uniform(0.03, 0.08), h * rng.uniform(0.03, 0.08)
        # Where the output's corners come from in the input: one side pulled in, as seen at an angle.
        quad = (rng.uniform(0, dx), rng.uniform(0, dy), rng.uniform(0, dx), h - rng.uniform(0, dy))
        quad += (w - rng.uniform(0, dx), h - rng.uniform(0, dy), w - rng.uniform(0, dx), rng.uniform(0, dy))
        im = im.transform(im.size, Image.QUAD, quad, resample=Image.BICUBIC, fillcolor=(128, 128, 128))
    if "low-contrast" in effects:
        im = ImageEnhance.Contrast(im).enhance(rng.uniform(0.45, 0.65))
        im = ImageEnhance.Brightness(im).enhance(rng.uniform(0.9, 1.15))
    if "blur" in effects:
        im = im.filter(ImageFilter.GaussianBlur(rng.uniform(0.6, 1.3)))
    if "jpeg" in effects:
        buf = io.BytesIO()
        im.save(buf, format="JPEG", quality=rng.randint(35, 70))
        im = Image.open(io.BytesIO(buf.getvalue())).convert("RGB")
    return im


def effects_for(seed: int) -> tuple[str, ...]:
    """A seeded mix: none, one or several effects."""
    rng = random.Random(f"effects-{seed}")
    return tuple(e for e in EFFECTS if rng.random() < 0.4)


def _prices(rng: random.Random, n: int) -> tuple[list[str], list[str], str]:
    names = rng.sample(ITEMS, n)
    prices = [f"{rng.randint(1, 24)}.{rng.randint(0, 99):02d}" for _ in names]
    return names, prices, f"{sum(float(p) for p in prices):.2f}"


def render_receipt_layout(seed: int = 0, layout: str = "far-right", face: str | None = None) -> SynthImage:
    """A receipt in one of LAYOUTS; `items` and `total` hold the truth (prices as printed)."""
    if layout not in LAYOUTS:
        raise ValueError(f"unknown layout {layout!r}; use one of {', '.join(LAYOUTS)}")
    rng = random.Random(f"receipt-{layout}-{seed}")
    n = 6 if layout == "two-column" else rng.randint(3, 6)
    names, prices, total = _prices(rng, n)
    fnt = font(face or face_for(seed), rng.randint(18, 24))
    head = font(face_for(seed + 1, bold_only=True), 24)
    line_h = int(fnt.size * 1.5)
    rows = (n + 1) // 2 if layout == "two-column" else n
    w = {"far-right": rng.randint(820, 1100), "two-column": 900, "centred-total": 460}[layout]
    h = 70 + line_h * (rows + 4)
    im = Image.new("RGB", (w, h), tuple(rng.randint(238, 252) for _ in range(3)))
    d = ImageDraw.Draw(im)
    ink = tuple(rng.randint(10, 50) for _ in range(3))
    words, lines = [], []
    shop = rng.choice(SHOPS)
    words += draw_words(d, ((w - d.textlength(shop, font=head)) / 2, 18), shop, head, ink, line=0)
    lines.append(shop)
    y0 = 18 + line_h + 14

    def put(x_left: float, x_right: float, y: float, name: str, price: str) -> None:
        i = len(lines)
        words.extend(draw_words(d, (x_left, y), name, fnt, ink, line=i))
        words.extend(draw_words(d, (x_right - d.textlength(price, font=fnt), y), price, fnt, ink, line=i))
        lines.append(f"{name} {price}")

    if layout == "two-column":
        half = w // 2
        for k, (name, price) in enumerate(zip(names, prices, strict=True)):
            col, r = divmod(k, rows)
            put(30 + col * half, half - 30 + col * half, y0 + r * line_h, name, price)
    else:
        for k, (name, price) in enumerate(zip(names, prices, strict=True)):
            put(30, w - 30, y0 + k * line_h, name, price)
    y = y0 + rows * line_h + 6
    d.line([(30, y), (w - 30, y)], fill=ink, width=1)
    y += 12
    if layout == "centred-total":
        text = f"TOTAL {total}"
        words += draw_words(d, ((w - d.textlength(text, font=head)) / 2, y), text, head, ink, line=len(lines))
        lines.append(text)
    else:
        put(30, w - 30, y, "TOTAL", total)
    return SynthImage(im, "receipt", words, lines, items=list(zip(names, prices, strict=True)), total=total)
