"""Image analysis that prepares pictures for Tesseract: letter size, skew, text-like regions, binarisation.

All functions take a grayscale PIL image and use OpenCV/numpy (OpenCV comes with ultralytics as
opencv-python-headless). `Frame` is the reading frame the passes run in: the original image turned
upright by quarter turns (OSD) and deskewed, with exact box mappings both ways. `Ink` is where one text
line's letters are, column by column: the gaps between them and their height, which tell a word gap
from a letter gap and one letter size from another.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from tools.ocr_layout import OcrWord, covered, rotate_box

Box = tuple[float, float, float, float]


@dataclass
class Frame:
    """The original image rotated by a sequence of PIL `rotate(angle, expand=True)` steps."""

    size: tuple[int, int]  # original size
    steps: list[tuple[float, tuple[int, int], tuple[int, int]]] = field(
        default_factory=list
    )  # (ccw deg, before, after)

    @property
    def angle(self) -> float:
        return sum(a for a, _, _ in self.steps)

    def then(self, image, angle: float):
        """Rotate `image` (which is in this frame) by `angle`; returns (new frame, rotated image)."""
        if angle % 360 == 0:
            return self, image
        rotated = image.rotate(angle, expand=True, fillcolor=_border_colour(image))
        return Frame(self.size, [*self.steps, (angle, image.size, rotated.size)]), rotated

    def to_original(self, box: Box) -> Box:
        for a, before, after in reversed(self.steps):
            box = rotate_box(box, -a, after, before)
        return box

    def from_original(self, box: Box) -> Box:
        """A box in original-image pixels -> this frame (for words another engine read on the original)."""
        for a, before, after in self.steps:
            box = rotate_box(box, a, before, after)
        return box


def _border_colour(image) -> int:
    """The median of the image's border, so the corners a rotation opens look like the background."""
    import numpy as np

    a = np.asarray(image)
    border = np.concatenate([a[0], a[-1], a[:, 0], a[:, -1]])
    return int(np.median(border))


def ink_masks(gray):
    """Otsu binarisation as two masks: dark-on-light ink and light-on-dark ink (255 = ink)."""
    import cv2
    import numpy as np

    a = np.asarray(gray, dtype=np.uint8)
    _, bw = cv2.threshold(a, 0, 255, cv2.THRESH_BINARY_INV | cv2.THRESH_OTSU)
    return bw, 255 - bw


def letter_blobs(ink):
    """Connected components shaped like letters: (x, y, w, h) rows."""
    import cv2

    n, _, stats, _ = cv2.connectedComponentsWithStats(ink, connectivity=8)
    return [(x, y, w, h) for x, y, w, h, area in stats[1:n] if 4 <= h <= 120 and w <= 3 * h and area >= 8]


def char_height(gray) -> float:
    """Median height of letter-like blobs in whichever polarity has more of them; 0 when there are none."""
    import numpy as np

    best: list = []
    for ink in ink_masks(gray):
        blobs = letter_blobs(ink)
        best = blobs if len(blobs) > len(best) else best
    return float(np.median([b[3] for b in best])) if best else 0.0


def estimate_skew(gray, max_angle: float = 12.0, step: float = 0.5, min_gain: float = 1.5) -> float:
    """Degrees (counter-clockwise) to rotate the image so its text lines run level; 0 when unsure.

    Projection profile: letter blobs are painted as their centre rows and the angle whose row sums
    are the most peaked wins. Only a clear gain over 0 degrees counts, so a busy photo stays as it is.
    """
    import numpy as np

    masks = ink_masks(gray)
    blobs = max((letter_blobs(m) for m in masks), key=len)
    if len(blobs) < 12:
        return 0.0
    pts = np.array([(x + w / 2, y + h / 2) for x, y, w, h in blobs], dtype=np.float64)
    hmed = float(np.median([b[3] for b in blobs]))
    cx, cy = gray.width / 2, gray.height / 2

    def peakedness(angle: float) -> float:
        a = np.radians(angle)
        # Row of each letter centre after a counter-clockwise turn by `angle` (image y points down).
        ys = -(pts[:, 0] - cx) * np.sin(a) + (pts[:, 1] - cy) * np.cos(a)
        hist, _ = np.histogram(ys, bins=max(8, int((ys.max() - ys.min()) / max(2.0, hmed / 2)) + 1))
        return float((hist.astype(np.float64) ** 2).sum())

    angles = np.arange(-max_angle, max_angle + 1e-9, step)
    scores = [peakedness(a) for a in angles]
    best = float(angles[int(np.argmax(scores))])
    if abs(best) < 1.0 or max(scores) < min_gain * peakedness(0.0):
        return 0.0
    return best


def text_regions(gray, limit: int = 8, skip: list[OcrWord] = ()) -> list[tuple[Box, float]]:
    """Likely text lines as (box, degrees to turn it level), the most text-like first (see `letter_chains`).

    Chains on the same line are joined; each line is ranked by its contrast (grey-level spread inside
    the box) times the square root of its letter count, which puts a sign's lettering above a facade's
    windows. Lines already spanned by confidently read words (`skip`) are left out.
    """
    import numpy as np

    a = np.asarray(gray, dtype=np.float32)
    chains = sorted(letter_chains(gray), key=lambda c: c[0])
    lines: list[list] = []  # [x0, y0, x1, y1, letters, letters * slant]
    for x0, y0, x1, y1, n, slant in chains:
        h = y1 - y0
        for li in lines:
            lh = li[3] - li[1]
            vert = min(y1, li[3]) - max(y0, li[1])
            near = x0 - li[2] <= 1.5 * max(h, lh) and li[0] - x1 <= 1.5 * max(h, lh)
            if vert > 0.5 * min(h, lh) and 0.6 <= h / lh <= 1.7 and near:
                li[:] = [
                    min(x0, li[0]),
                    min(y0, li[1]),
                    max(x1, li[2]),
                    max(y1, li[3]),
                    li[4] + n,
                    li[5] + n * slant,
                ]
                break
        else:
            lines.append([x0, y0, x1, y1, n, n * slant])
    scored = []
    for x0, y0, x1, y1, n, turn in lines:
        box = (x0, y0, x1, y1)
        if covered(box, skip):
            continue
        patch = a[int(y0) : int(y1) + 1, int(x0) : int(x1) + 1]
        scored.append((float(patch.std()) * n**0.5, box, round(turn / n, 1)))
    scored.sort(key=lambda t: -t[0])
    return [(b, turn) for _, b, turn in scored[:limit]]


def binarize(crop, inner: tuple[int, int, int, int]):
    """Otsu threshold computed on the region itself (not its busy margin), text made dark on light."""
    import cv2
    import numpy as np
    from PIL import Image

    a = np.asarray(crop, dtype=np.uint8)
    x0, y0, x1, y1 = inner
    core = a[y0:y1, x0:x1]
    if core.size == 0:
        return crop
    t, _ = cv2.threshold(core, 0, 255, cv2.THRESH_BINARY | cv2.THRESH_OTSU)
    bw = np.where(a > t, 255, 0).astype(np.uint8)
    # Text is the minority inside the region: if light pixels are fewer, the text is light; flip it.
    if np.count_nonzero(core > t) < core.size / 2:
        bw = 255 - bw
    # Ink touching the crop's edge is a plate border, a pole or the scene around the text, not a letter
    # (the crop has a margin around the text): paint it white so it is not read as "I" or "|".
    n, labels, _, _ = cv2.connectedComponentsWithStats(255 - bw, connectivity=8)
    edge = np.unique(np.concatenate([labels[0], labels[-1], labels[:, 0], labels[:, -1]]))
    bw[np.isin(labels, edge[edge > 0])] = 255
    return Image.fromarray(bw)


def letter_chains(gray, min_letters: int = 2) -> list[tuple[float, float, float, float, int, float]]:
    """Rows of letter-shaped blobs as (x0, y0, x1, y1, letters, slant): text found from its letters.

    Blobs come from local (adaptive) thresholds in both polarities, so light letters on a dark plate and
    dark letters on a light wall both show up whatever lies around them. Blobs of similar height whose
    bottoms or centres line up and whose gaps are letter-sized are chained; rows of identical blobs
    (a building's windows) are dropped.
    """
    import cv2
    import numpy as np

    a = np.asarray(gray, dtype=np.uint8)
    H, W = a.shape
    # Letters are a small part of a photo, but may fill most of a crop the caller already cut around them.
    max_h = (0.8 if H <= 240 else 0.25) * H
    blobs = set()
    for block in (15, 41):
        for mode in (cv2.THRESH_BINARY, cv2.THRESH_BINARY_INV):
            bw = cv2.adaptiveThreshold(
                a, 255, cv2.ADAPTIVE_THRESH_MEAN_C, mode, block, -8 if mode == cv2.THRESH_BINARY else 8
            )
            n, _, stats, _ = cv2.connectedComponentsWithStats(bw, connectivity=8)
            for x, y, w, h, area in stats[1:n]:
                if 5 <= h <= max_h and 0.12 * h <= w <= 3.0 * h and 0.12 <= area / (w * h) <= 0.95:
                    blobs.add((int(x), int(y), int(w), int(h)))
    blobs = sorted(blobs)
    parent = list(range(len(blobs)))

    def find(i):
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for i, (x, y, w, h) in enumerate(blobs):
        for j in range(i + 1, len(blobs)):
            x2, y2, w2, h2 = blobs[j]
            if x2 > x + w + 1.2 * h:
                break
            if not 0.6 <= h2 / h <= 1.7 or x2 < x + 0.5 * w:
                continue
            tol = 0.25 * max(h, h2)
            if abs((y + h) - (y2 + h2)) <= tol or abs((y + h / 2) - (y2 + h2 / 2)) <= tol:
                parent[find(j)] = find(i)
    groups: dict[int, list] = {}
    for i, b in enumerate(blobs):
        groups.setdefault(find(i), []).append(b)
    out = []
    for members in groups.values():
        if len(members) < min_letters:
            continue
        if len(members) >= 3 and _identical(members):
            continue  # identical blobs at identical spacing: windows, tiles, a fence
        if max(m[1] + m[3] for m in members) - min(m[1] for m in members) > 2.0 * float(
            np.median([m[3] for m in members])
        ):
            continue  # a staircase of blobs (foliage, railings), not a line of text
        x0, y0 = min(m[0] for m in members), min(m[1] for m in members)
        x1, y1 = max(m[0] + m[2] for m in members), max(m[1] + m[3] for m in members)
        out.append((float(x0), float(y0), float(x1), float(y1), len(members), _slant(members)))
    return out


def _identical(members) -> bool:
    """Same width, same height, same gaps: a facade's windows, not letters (whose widths and gaps vary)."""
    import numpy as np

    row = sorted(members)
    ws = np.array([m[2] for m in row], dtype=float)
    hs = np.array([m[3] for m in row], dtype=float)
    gaps = np.array([b[0] - (a[0] + a[2]) for a, b in zip(row, row[1:], strict=False)], dtype=float)
    return bool(
        ws.std() < 0.06 * ws.mean()
        and hs.std() < 0.06 * hs.mean()
        and gaps.std() <= 0.15 * max(1.0, abs(gaps.mean()))
    )


def _slant(members) -> float:
    """Degrees to turn a row of letters (counter-clockwise) so it runs level: a line fitted to the letter
    centres; 0 for short rows or slants too small to matter."""
    import numpy as np

    if len(members) < 4:
        return 0.0
    cx = np.array([m[0] + m[2] / 2 for m in members], dtype=float)
    cy = np.array([m[1] + m[3] / 2 for m in members], dtype=float)
    if np.ptp(cx) < 1:
        return 0.0
    angle = float(np.degrees(np.arctan(np.polyfit(cx, cy, 1)[0])))
    return round(angle, 1) if 1.5 <= abs(angle) <= 15 else 0.0


@dataclass
class Ink:
    """The letters of one text line's crop (upright, reading left to right), column by column."""

    top: list[int]  # first ink row of each column (-1 where the column has no ink)
    bottom: list[int]  # last ink row + 1 of each column (0 where none)

    @property
    def width(self) -> int:
        return len(self.top)

    def gaps(self, a: int, b: int) -> list[tuple[int, int]]:
        """Runs of columns without ink between the letters of columns a..b (not the margins around them)."""
        a, b = max(0, a), min(self.width, b)
        out, start, seen = [], None, False
        for x in range(a, b):
            if self.top[x] >= 0:
                if start is not None and seen:
                    out.append((start, x))
                start, seen = None, True
            elif start is None:
                start = x
        return out

    def height(self, a: int, b: int) -> int:
        """Rows from the highest ink to the lowest over columns a..b; 0 where they hold none."""
        cols = [x for x in range(max(0, a), min(self.width, b)) if self.top[x] >= 0]
        return max(self.bottom[x] for x in cols) - min(self.top[x] for x in cols) if cols else 0


def line_ink(crop) -> Ink | None:
    """The ink of a text line's crop (grayscale array, letters upright): Otsu's threshold, ink being the
    class the crop's border is not (the detector leaves a margin around a line). Specks, and letters of
    the neighbouring lines poking in at the top or bottom edge, are not counted."""
    import cv2
    import numpy as np

    a = np.asarray(crop, dtype=np.uint8)
    if a.ndim != 2 or min(a.shape) < 8:
        return None
    h = a.shape[0]
    _, bw = cv2.threshold(a, 0, 255, cv2.THRESH_BINARY | cv2.THRESH_OTSU)
    border = np.concatenate([bw[0], bw[-1], bw[:, 0], bw[:, -1]])
    ink = (bw == 0) if np.count_nonzero(border) >= border.size / 2 else (bw == 255)
    n, labels, stats, _ = cv2.connectedComponentsWithStats(ink.astype(np.uint8), connectivity=8)
    y, ch, area = stats[:, 1], stats[:, 3], stats[:, 4]
    intruder = ((y == 0) | (y + ch >= h)) & (ch < 0.5 * h)
    keep = (area >= max(2.0, 0.002 * h * h)) & ~intruder
    keep[0] = False
    mask = keep[labels]
    has = mask.any(axis=0)
    top = np.where(has, mask.argmax(axis=0), -1)
    bottom = np.where(has, h - mask[::-1].argmax(axis=0), 0)
    return Ink([int(v) for v in top], [int(v) for v in bottom])
