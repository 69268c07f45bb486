"""synth-shapes: coloured circles, squares and triangles (the offline detector's own domain, on images
it never trained on): how many, is there one, what colour, which side.
"""

from __future__ import annotations

from pathlib import Path

from evaluation.sets.folder import write_cases
from synthetic.shapes import CLASSES, SHAPE_COLORS, ShapesConfig, draw_sample

VERSION = 1
COLOUR_NAMES = ("red", "green", "blue", "yellow", "purple", "black")
CONFIG = ShapesConfig(size=256, min_side=40, max_side=90)


def _colour(im, box) -> str:
    px = im.getpixel((int((box[0] + box[2]) / 2), int(box[1] + (box[3] - box[1]) * 0.6)))
    dist = [sum((a - b) ** 2 for a, b in zip(px, c, strict=True)) for c in SHAPE_COLORS]
    return COLOUR_NAMES[dist.index(min(dist))]


def generate(root: Path) -> None:
    cases = []
    for k in range(12):
        im, shapes = draw_sample(("eval", k), CONFIG)
        name = f"shapes-{k:02d}.png"
        im.save(root / name)
        names = [s.name for s in shapes]
        kind = ("count", "detect", "color", "where")[k % 4]
        target = names[k % len(names)]
        if kind == "count":
            q, expect = f"How many {target}s are there?", [str(names.count(target))]
        elif kind == "detect":
            absent = [c for c in CLASSES if c not in names]
            target = absent[0] if absent and k % 8 == 1 else target
            q, expect = f"Is there a {target} in the image?", ["yes" if target in names else "no"]
        elif kind == "color" and names.count(target) == 1:
            s = shapes[names.index(target)]
            q, expect = f"What colour is the {target}?", [_colour(im, s.box)]
        else:
            if names.count(target) != 1:
                kind, q, expect = "count", f"How many {target}s are there?", [str(names.count(target))]
            else:
                s = shapes[names.index(target)]
                side = "left" if (s.box[0] + s.box[2]) / 2 < CONFIG.size / 2 else "right"
                kind, q, expect = "where", f"Is the {target} on the left or the right?", [side]
        cases.append(
            {"id": f"shapes-{k:02d}", "image": name, "question": q, "expect_any": expect, "kind": kind}
        )
    write_cases(root, cases)
