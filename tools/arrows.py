"""The arrows tool: arrows drawn on signs and walls, and which way each points.

Direction signs say much of what they mean with arrows ("← Eventdock", "↑ Sports Centre"), which OCR does
not read. An arrow is found by its shape, by hand with OpenCV (no library finds arrow glyphs): the image
is binarised both ways (dark ink on light, light on dark, by a local threshold) and each blob longer one
way than the other is profiled along its length: at each step, how far its ink reaches across. An
arrow's profile is

    tip (narrow)  ->  head: widens steadily (along a straight line) to its widest, in the first 60%
                  ->  shaft: the last 35%, at most 40% of the head's width, even, centred on the head

Letters fail this profile (a "T" is widest at its very end, an "E" has no tip, a "<" no shaft), and so do
most things in photos; what still passes is a blob shaped like an arrow, and the assistant uses an arrow
only beside the text read on the same sign (`sign_arrows`, for its answers and its checks alike). Left,
right, up and down are told; a diagonal arrow is not reported. Each finding is one arrow: its direction
as text, its box.
"""

from __future__ import annotations

from tools.base import Tool
from tools.evidence import Evidence, Finding
from tools.images import ImageRef

WORK_SIDE = 640  # the image is read at this longer side
MIN_AREA, MAX_AREA = 0.0005, 0.1  # a blob's share of the image: smaller is noise, larger a region
LONGER = 1.1  # length over breadth: which way the blob runs
FILL = (0.12, 0.75)  # an arrow's ink over its box
TIP_MAX = 0.4  # the reach at the tip (first 8% of the length) over the head's
HEAD_WITHIN = 0.6  # the head is widest within this share of the length from the tip
SHAFT_FROM = 0.65  # the shaft is the length from here on
SHAFT_MAX = 0.4  # its reach over the head's
SHAFT_EVEN = 0.35  # its reach's standard deviation over its mean
STRAIGHT = 0.9  # the head's widening from tip to widest fits a straight line this well (R squared)
CENTRED = 0.15  # how far off the head's centre line the shaft may run, over the head's reach


def direction(mask) -> str | None:
    """Which way a blob (a 2-D bool array cropped to its box) points, if it is an arrow."""
    import numpy as np

    h, w = mask.shape
    if w >= LONGER * h:
        m, ends = mask, ("left", "right")
    elif h >= LONGER * w:
        m, ends = mask.T, ("up", "down")
    else:
        return None
    n = m.shape[1]
    if n < 16 or not FILL[0] <= m.mean() <= FILL[1]:
        return None
    inked = m.any(axis=0)
    top = np.argmax(m, axis=0)
    bottom = m.shape[0] - 1 - np.argmax(m[::-1], axis=0)
    reach = np.where(inked, bottom - top + 1, 0).astype(float)
    centre = np.where(inked, (top + bottom) / 2, np.nan)
    for name, r, c in ((ends[0], reach, centre), (ends[1], reach[::-1], centre[::-1])):
        head_at = int(np.argmax(r[: int(HEAD_WITHIN * n)]))
        head = r[head_at]
        if head < 0.8 * r.max() or head_at < 0.1 * n:
            continue
        if r[: max(2, round(0.08 * n))].mean() > TIP_MAX * head:
            continue
        if not _straight(r[: head_at + 1]):
            continue  # a head widens steadily from its tip; a "中" jumps from its stroke to its box
        shaft = r[int(SHAFT_FROM * n) :]
        if shaft.mean() <= 0 or shaft.max() > SHAFT_MAX * head or shaft.std() > SHAFT_EVEN * shaft.mean():
            continue
        if abs(np.nanmean(c[int(SHAFT_FROM * n) :]) - c[head_at]) > CENTRED * head:
            continue
        return name
    return None


def _straight(reach) -> bool:
    """Whether a profile rises along a straight line (R squared of a linear fit at least STRAIGHT)."""
    import numpy as np

    if len(reach) < 4:
        return False
    x = np.arange(len(reach))
    fit = np.polyval(np.polyfit(x, reach, 1), x)
    spread = ((reach - reach.mean()) ** 2).sum()
    return bool(spread) and 1 - ((reach - fit) ** 2).sum() / spread >= STRAIGHT


def find_arrows(im) -> list[tuple[str, tuple[float, float, float, float]]]:
    """(direction, box in the image's pixels) of each arrow found in a PIL image."""
    import cv2
    import numpy as np

    scale = min(1.0, WORK_SIDE / max(im.size))
    small = im.convert("L").resize((max(1, round(im.width * scale)), max(1, round(im.height * scale))))
    gray = np.asarray(small)
    block = max(15, (min(gray.shape) // 8) | 1)  # odd, about an eighth of the image
    total = gray.size
    found = []
    for mode in (cv2.THRESH_BINARY_INV, cv2.THRESH_BINARY):  # dark ink, then light ink
        ink = cv2.adaptiveThreshold(gray, 255, cv2.ADAPTIVE_THRESH_MEAN_C, mode, block, 15)
        n, labels, stats, _ = cv2.connectedComponentsWithStats(ink, connectivity=8)
        for i in range(1, n):
            x, y, w, h, area = (int(v) for v in stats[i])
            if not MIN_AREA * total <= area <= MAX_AREA * total:
                continue
            way = direction(labels[y : y + h, x : x + w] == i)
            if way is not None:
                found.append((way, (x / scale, y / scale, (x + w) / scale, (y + h) / scale)))
    return found


class ArrowTool(Tool):
    name = "arrows"
    version = "1"
    description = (
        "Arrows drawn in the image (on signs, walls, floors) and which way each points: left, right, up "
        "or down. Use for 'which way does the arrow point' and direction signs."
    )
    inputs = {}
    evidence_prefix = "arrow"
    timeout_s = 10.0

    def forward(self, image: ImageRef) -> list[Finding]:
        return [Finding("arrow", way, 1.0, box, {"points": way}) for way, box in find_arrows(image.image)]


# An arrow shape is a sign's arrow when a line of text read with this confidence runs beside it: level
# with it (half the smaller height overlapping), at most 1.5 arrow widths away, and of a like size (the
# arrow 0.5 to 4 times the line's height). Shapes found elsewhere in a photo are not taken for arrows.
SIGN_LINE_CONFIDENCE = 0.6


def sign_arrows(evidence: list[Evidence]) -> list[tuple[Evidence, Evidence]]:
    """(arrow, the text line beside it) for each arrow the arrows tool found beside text read there."""
    lines = [e for e in evidence if e.kind == "line" and e.box and e.confidence >= SIGN_LINE_CONFIDENCE]
    out = []
    for a in (e for e in evidence if e.kind == "arrow" and e.box):
        near = [line for line in lines if line.image == a.image and _beside(a.box, line.box)]
        if near:
            out.append(
                (a, min(near, key=lambda line: abs(line.box[0] - a.box[2]) + abs(a.box[0] - line.box[2])))
            )
    return out


def _beside(a, line) -> bool:
    overlap = min(a[3], line[3]) - max(a[1], line[1])
    if overlap < 0.5 * min(a[3] - a[1], line[3] - line[1]):
        return False
    gap = max(line[0] - a[2], a[0] - line[2], 0)
    return gap <= 1.5 * (a[2] - a[0]) and 0.5 <= (a[3] - a[1]) / max(1.0, line[3] - line[1]) <= 4
