"""Cheap image statistics that tell a flat render (synthetic shapes, drawn graphics) from a photo.

A render fills its shapes with single exact colours; a photo almost never repeats one exact RGB value
over an area, except where the sensor clipped (pure black, blown-out white) or on blank paper. Measured
with `render_score` on the project's synthetic shapes (60 held-out renders: all >= 0.10) against the
photos that ship with ultralytics (bus.jpg 0.008, zidane.jpg 0.048); `flat_fill` on the shapes' own
boxes is >= 0.81 and on boxes in those photos near 0. A detector trained on renders is trusted on an
image only where both say "render".

A render's background may be a smooth gradient (one colour per row, none repeated over the image), which
`render_score` misses when the shapes are small (0.056 on such a render). `row_score` counts, after a
median filter and a coarse quantisation, the share of each row's (and column's) pixels in its two most
common colours: one-colour rows score high, a photo's textured rows low. Measured on the synth-shapes
eval renders (all >= 0.43), bus.jpg 0.09 and zidane.jpg 0.10. Neither statistic separates renders with
strong added noise from photos; such renders stay "photos" (their boxes are not evidence).
"""

from __future__ import annotations

import numpy as np
from PIL import Image

RENDER_SCORE_MIN = 0.09  # share of pixels in the 6 most common exact colours (clipped ones left out)
ROW_SCORE_MIN = 0.33  # share of each row's/column's pixels in its 2 most common colours (see row_score)
FLAT_FILL_MIN = 0.6  # share of a box's inner half in one exact colour that the box's surroundings lack


def _codes(a: np.ndarray) -> np.ndarray:
    return (a[..., 0] << 16) | (a[..., 1] << 8) | a[..., 2]


def _clipped(a: np.ndarray) -> np.ndarray:
    """Pixels at the ends of the range (clipped shadows, highlights, blank paper): photos have them too."""
    return (a.min(axis=-1) >= 235) | (a.max(axis=-1) <= 5)


def render_score(im: Image.Image, k: int = 6, side: int = 480) -> float:
    """Share of the pixels in the k most common exact colours, clipped colours left out."""
    im = im.convert("RGB")
    if max(im.size) > side:
        im = im.copy()
        im.thumbnail((side, side), Image.Resampling.NEAREST)  # nearest: no blending into new colours
    a = np.asarray(im).reshape(-1, 3).astype(np.int32)
    keep = ~_clipped(a)
    if not keep.any():
        return 0.0
    _, counts = np.unique(_codes(a[keep]), return_counts=True)
    counts.sort()
    return float(counts[::-1][:k].sum() / len(a))


def row_score(im: Image.Image, side: int = 256, k: int = 2) -> float:
    """Share of pixels in the k most common (denoised, quantised) colours of their own row, or column when
    that is higher; clipped pixels count as none."""
    import cv2

    im = im.convert("RGB")
    if max(im.size) > side:
        im = im.copy()
        im.thumbnail((side, side), Image.Resampling.BOX)
    a = cv2.medianBlur(np.ascontiguousarray(np.asarray(im)), 5).astype(np.int32)
    codes = np.where(_clipped(a), -1, _codes(a >> 2))
    best = 0.0
    for m in (codes, codes.T):
        total = 0
        for row in m:
            counts = np.unique(row[row >= 0], return_counts=True)[1]
            total += int(np.sort(counts)[::-1][:k].sum())
        best = max(best, total / max(1, m.size))
    return float(best)


def flat_fill(im: Image.Image, box) -> float:
    """How much a box looks like a flat-filled shape: the share of its inner half in one exact colour,
    0 when that colour is clipped or also fills the ring around the box (it is then the background)."""
    x0, y0, x1, y1 = (round(v) for v in box)
    w, h = x1 - x0, y1 - y0
    if w < 4 or h < 4:
        return 0.0
    m = max(2, round(0.15 * max(w, h)))
    big = np.asarray(im.convert("RGB").crop((x0 - m, y0 - m, x1 + m, y1 + m))).astype(np.int32)
    codes = _codes(big)
    inner = codes[m + h // 4 : m + h - h // 4, m + w // 4 : m + w - w // 4].ravel()
    if inner.size == 0:
        return 0.0
    values, counts = np.unique(inner, return_counts=True)
    top = values[counts.argmax()]
    rgb = np.array([(top >> 16) & 255, (top >> 8) & 255, top & 255])
    if _clipped(rgb[None, :])[0]:
        return 0.0
    ring = np.concatenate(
        [codes[:m].ravel(), codes[-m:].ravel(), codes[:, :m].ravel(), codes[:, -m:].ravel()]
    )
    if (ring == top).mean() >= 0.5:
        return 0.0
    return float(counts.max() / inner.size)
