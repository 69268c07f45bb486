"""A synthetic detection dataset the project generates itself: coloured shapes on varied backgrounds.

No YOLO weights ship in any package, so the project's tests (and an offline user) need a detector
trained here. This module draws circles, squares and triangles in several colours, sizes and places on
plain, gradient, striped and noisy backgrounds, and writes them in YOLO format (images/, labels/ with
`class cx cy w h` normalised, and a data.yaml). Each image comes from its own seed, so the held-out
split never repeats a training image and the same call always writes the same files.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from pathlib import Path

from PIL import Image, ImageDraw

CLASSES = ("circle", "square", "triangle")

# Shape fill colours: saturated or dark/light enough to stand out from the backgrounds below.
SHAPE_COLORS = [(220, 30, 30), (30, 160, 40), (30, 60, 220), (240, 200, 20), (150, 40, 170), (20, 20, 20)]


@dataclass
class ShapesConfig:
    """How much data to draw and how it looks."""

    train_images: int = 96  # images in the training split
    val_images: int = 16  # validation images (different seeds from training)
    size: int = 128  # square image side in pixels
    max_shapes: int = 3  # shapes per image: 1..max_shapes
    min_side: int = 20  # smallest shape extent in pixels
    max_side: int = 52  # largest shape extent in pixels
    seed: int = 0  # base seed; split s, image i uses seed (seed, s, i)


@dataclass
class Shape:
    cls: int  # index into CLASSES
    box: tuple[float, float, float, float]  # x0, y0, x1, y1 in pixels

    @property
    def name(self) -> str:
        return CLASSES[self.cls]


def _background(rng: random.Random, size: int) -> Image.Image:
    kind = rng.choice(("plain", "gradient", "stripes", "noise"))
    base = tuple(rng.randint(150, 250) for _ in range(3))
    im = Image.new("RGB", (size, size), base)
    d = ImageDraw.Draw(im)
    if kind == "gradient":
        other = tuple(rng.randint(90, 250) for _ in range(3))
        for y in range(size):
            t = y / (size - 1)
            d.line(
                [(0, y), (size, y)],
                fill=tuple(int(a + (b - a) * t) for a, b in zip(base, other, strict=True)),
            )
    elif kind == "stripes":
        other = tuple(max(0, c - rng.randint(25, 60)) for c in base)
        step = rng.randint(6, 16)
        for x in range(-size, size, step * 2):
            d.polygon([(x, 0), (x + step, 0), (x + step + size, size), (x + size, size)], fill=other)
    elif kind == "noise":
        noise = Image.effect_noise((size, size), rng.randint(20, 50)).convert("RGB")
        im = Image.blend(im, noise, 0.35)
    return im


def _overlaps(box, boxes, pad: float = 4) -> bool:
    return any(
        box[0] < b[2] + pad and b[0] < box[2] + pad and box[1] < b[3] + pad and b[1] < box[3] + pad
        for b in boxes
    )


def draw_sample(seed: int | tuple, cfg: ShapesConfig | None = None) -> tuple[Image.Image, list[Shape]]:
    """One image and its ground truth (non-overlapping shapes) from one seed."""
    cfg = cfg or ShapesConfig()
    rng = random.Random(str(seed))
    im = _background(rng, cfg.size)
    d = ImageDraw.Draw(im)
    shapes: list[Shape] = []
    for _ in range(rng.randint(1, cfg.max_shapes)):
        for _attempt in range(20):
            side = rng.randint(cfg.min_side, cfg.max_side)
            x0, y0 = rng.randint(0, cfg.size - side), rng.randint(0, cfg.size - side)
            box = (x0, y0, x0 + side, y0 + side)
            if not _overlaps(box, [s.box for s in shapes]):
                break
        else:
            continue
        cls = rng.randrange(len(CLASSES))
        color = rng.choice(SHAPE_COLORS)
        x0, y0, x1, y1 = box
        if CLASSES[cls] == "circle":
            d.ellipse([x0, y0, x1 - 1, y1 - 1], fill=color)
        elif CLASSES[cls] == "square":
            d.rectangle([x0, y0, x1 - 1, y1 - 1], fill=color)
        else:
            d.polygon([((x0 + x1) / 2, y0), (x1 - 1, y1 - 1), (x0, y1 - 1)], fill=color)
        shapes.append(Shape(cls, (float(x0), float(y0), float(x1), float(y1))))
    return im, shapes


def write_dataset(out: str | Path, cfg: ShapesConfig | None = None) -> Path:
    """Write train/val splits in YOLO format under `out`; returns the data.yaml path."""
    cfg = cfg or ShapesConfig()
    out = Path(out)
    for split, n in (("train", cfg.train_images), ("val", cfg.val_images)):
        (out / "images" / split).mkdir(parents=True, exist_ok=True)
        (out / "labels" / split).mkdir(parents=True, exist_ok=True)
        for i in range(n):
            im, shapes = draw_sample((cfg.seed, split, i), cfg)
            im.save(out / "images" / split / f"{i:04d}.png")
            lines = []
            for s in shapes:
                x0, y0, x1, y1 = s.box
                cx, cy, w, h = (x0 + x1) / 2, (y0 + y1) / 2, x1 - x0, y1 - y0
                lines.append(
                    f"{s.cls} {cx / cfg.size:.6f} {cy / cfg.size:.6f} {w / cfg.size:.6f} {h / cfg.size:.6f}"
                )
            (out / "labels" / split / f"{i:04d}.txt").write_text("\n".join(lines) + "\n")
    names = "\n".join(f"  {i}: {n}" for i, n in enumerate(CLASSES))
    data = out / "data.yaml"
    data.write_text(f"path: {out.resolve()}\ntrain: images/train\nval: images/val\nnames:\n{names}\n")
    return data


def held_out(n: int, cfg: ShapesConfig | None = None) -> list[tuple[Image.Image, list[Shape]]]:
    """Images from a split that neither training nor validation ever saw."""
    cfg = cfg or ShapesConfig()
    return [draw_sample((cfg.seed, "test", i), cfg) for i in range(n)]
