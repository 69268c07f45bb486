"""Layout for OCR: plausibility filtering, merging words from several passes, lines and blocks, findings.

Pure geometry on word boxes in original-image pixels, no Tesseract here, so it is cheap to test.
Lines are built from the words' vertical overlap (not Tesseract's block order), so a receipt's
right-aligned price lands on the line of its item even when Tesseract reads prices as a separate column.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field

from tools.evidence import Finding

Box = tuple[float, float, float, float]

# Characters Tesseract likes to read from borders, poles and shadows around real words.
EDGE_JUNK = "|[]{}()<>~`'\"“”‘’_=\\/!;:,.*^°«»—–-"


AMOUNT = re.compile(r"^[$€£¥￥]?\d+(?:[.,]\d+)?%?$")


@dataclass
class OcrWord:
    """A word read by one pass, already mapped to original-image pixels."""

    text: str
    conf: float  # 0..1
    box: Box
    source: str  # the pass that read it, e.g. "page", "sparse", "region:3"
    fbox: Box | None = None  # the box in the reading frame (upright, deskewed) where lines run level
    agree: dict[str, float] = field(default_factory=dict)  # engine -> its confidence, where both read this
    alts: list[dict] = field(default_factory=list)  # other engines' readings of this spot (fusion)
    parts: list[dict] = field(default_factory=list)  # the boxes it was joined from (`tools.ocr_words`)

    @property
    def engine(self) -> str:
        """The engine that read it: "rapid" (neural) or "tesseract" (every Tesseract pass)."""
        return "rapid" if self.source.startswith("rapid") else "tesseract"


@dataclass
class Line:
    words: list[OcrWord] = field(default_factory=list)

    @property
    def box(self) -> Box:
        return union([w.box for w in self.words])

    @property
    def fbox(self) -> Box:
        """The line's box in the reading frame (where grouping happens)."""
        return union([frame_box(w) for w in self.words])

    @property
    def height(self) -> float:
        hs = sorted(frame_box(w)[3] - frame_box(w)[1] for w in self.words)
        return hs[len(hs) // 2]

    @property
    def text(self) -> str:
        return " ".join(w.text for w in self.words)

    @property
    def conf(self) -> float:
        return sum(w.conf for w in self.words) / len(self.words)


def frame_box(w: OcrWord) -> Box:
    return w.fbox if w.fbox is not None else w.box


def union(boxes: list[Box]) -> Box:
    return (
        min(b[0] for b in boxes),
        min(b[1] for b in boxes),
        max(b[2] for b in boxes),
        max(b[3] for b in boxes),
    )


def area(b: Box) -> float:
    return max(0.0, b[2] - b[0]) * max(0.0, b[3] - b[1])


def overlap_of_smaller(a: Box, b: Box) -> float:
    """Intersection over the smaller box's area: 1.0 when one box lies inside the other."""
    inter = area((max(a[0], b[0]), max(a[1], b[1]), min(a[2], b[2]), min(a[3], b[3])))
    small = min(area(a), area(b))
    return inter / small if small > 0 else 0.0


def clean_text(text: str, keep_hyphen: bool = False) -> str:
    """Strip the border junk Tesseract glues to words; inner punctuation (12.50, e-mail) stays.

    `keep_hyphen` keeps a hyphen ending a word of letters ("competi-"): the word may go on on the next
    line (`tools.ocr_words` joins it, and strips the hyphens it does not join)."""
    out = text.strip().strip(EDGE_JUNK).strip()
    if keep_hyphen and HYPHENATED.search(text.strip().rstrip(".,;:")) and out.isalpha():
        return out + "-"
    return out


# The letter heights `cap_height` reckons with, as fractions of a capital's height (typical Latin faces).
X_HEIGHT, DESCENDER, DOTTED = 0.72, 0.28, 0.95
HYPHENATED = re.compile(r"[^\W\d_]{2}-$")


def cap_height(text: str, height: float) -> float:
    """The capital height implied by a run of letters `height` pixels tall, from which letters it has:
    "urger" spans x-height plus descender, "PRO" a capital, "in" x-height up to the dot (a CJK character
    stands a capital's height)."""
    letters = [c for c in text if c.isalnum()]
    if not letters:
        return height
    top = (
        1.0
        if any(c.isupper() or c.isdigit() or c in "bdfhklt" or ord(c) >= 0x2E80 for c in letters)
        else X_HEIGHT
    )
    if top < 1.0 and any(c in "ij" for c in letters):
        top = DOTTED
    low = DESCENDER if any(c in "gjpqy" for c in letters) else 0.0
    return height / (top + low)


def plausible(word: OcrWord, min_conf: float, min_height: float = 4.0, min_len: int = 1) -> bool:
    """Is this a word rather than noise? Mostly letters/digits, confident enough, not a speck."""
    t = word.text
    if not t or word.conf < min_conf:
        return False
    alnum = sum(c.isalnum() for c in t)
    # An amount with its sign ("5%", "$5", "¥73") is mostly punctuation by count, and still a word.
    if alnum == 0 or (alnum / len(t) < 0.6 and not AMOUNT.match(t)):
        return False
    if word.box[3] - word.box[1] < min_height or word.box[2] - word.box[0] < 2:
        return False
    if len(t) < min_len and not t.isdigit():
        return False
    # A lone letter is the commonest hallucination on textures; keep it only when Tesseract is sure.
    return not (len(t) == 1 and word.conf < max(min_conf, 0.8))


def merge(words: list[OcrWord], same: float = 0.5, bonus: dict[str, float] | None = None) -> list[OcrWord]:
    """De-duplicate the passes' readings: where boxes overlap, the more confident reading wins.

    `bonus` adds to the confidence of a pass (by the part of `source` before ":") when ranking, so
    near ties go to the pass that sees more context (a page pass keeps "13.38" whole where the
    sparse pass splits it).
    """
    bonus = bonus or {}
    kept: list[OcrWord] = []

    def rank(w: OcrWord):
        return (-(w.conf + bonus.get(w.source.split(":")[0].split("@")[0], 0.0)), -len(w.text))

    for w in sorted(words, key=rank):
        if all(overlap_of_smaller(w.box, k.box) < same for k in kept):
            kept.append(w)
    return kept


def drop_stray_short_words(words: list[OcrWord], suspect, alone_conf: float = 0.93) -> list[OcrWord]:
    """Drop short words (<= 3 letters/digits) that `suspect(word)` flags and that stand on a line without
    a real word (>= 4 letters/digits, confident): textures read as "an", "ee", "8" sit alone, while the
    "NO" of "NO PARKING" and the "24" of "OPEN 24 HOURS" have a long neighbour. Very sure ones stay."""

    def alnum(w):
        return sum(c.isalnum() for c in w.text)

    keep = []
    for line in group_lines(words):
        anchored = any(alnum(w) >= 4 and w.conf >= 0.8 for w in line.words)
        keep += [w for w in line.words if anchored or alnum(w) >= 4 or w.conf >= alone_conf or not suspect(w)]
    return keep


def group_lines(words: list[OcrWord], max_gap_heights: float = 25.0) -> list[Line]:
    """Words -> lines by vertical overlap and similar height (in the reading frame), words left to right."""
    lines: list[Line] = []
    for w in sorted(words, key=lambda w: ((frame_box(w)[1] + frame_box(w)[3]) / 2, frame_box(w)[0])):
        b = frame_box(w)
        wh = b[3] - b[1]
        best, best_ov = None, 0.0
        for line in lines:
            lb, lh = line.fbox, line.height
            ov = min(b[3], lb[3]) - max(b[1], lb[1])
            if ov < 0.5 * min(wh, lh) or not (0.5 <= wh / lh <= 2.0):
                continue
            gap = min(max(b[0] - frame_box(o)[2], frame_box(o)[0] - b[2]) for o in line.words)
            if gap > max_gap_heights * lh:
                continue
            if ov / min(wh, lh) > best_ov:
                best, best_ov = line, ov / min(wh, lh)
        if best is None:
            lines.append(Line([w]))
        else:
            best.words.append(w)
            best.words.sort(key=lambda o: frame_box(o)[0])
    return sorted(lines, key=lambda li: (li.fbox[1], li.fbox[0]))


def group_blocks(lines: list[Line]) -> list[list[Line]]:
    """Lines -> blocks: consecutive lines close below each other, overlapping horizontally, of similar size."""
    blocks: list[list[Line]] = []
    for line in lines:
        lb, lh = line.fbox, line.height
        home = None
        for block in blocks:
            last = block[-1]
            bb = union([li.fbox for li in block])
            gap = lb[1] - last.fbox[3]
            if (
                -0.5 * lh <= gap <= 1.5 * max(lh, last.height)
                and min(lb[2], bb[2]) > max(lb[0], bb[0])
                and 0.6 <= lh / last.height <= 1.7
            ):
                home = block
                break
        if home is None:
            blocks.append([line])
        else:
            home.append(line)
    return blocks


def covered(region: Box, words: list[OcrWord], max_gap_heights: float = 1.0) -> bool:
    """Do the words read so far span `region` (reading frame) with no gap wide enough to hide another word?"""
    h = region[3] - region[1]
    boxes = [frame_box(w) for w in words]
    spans = sorted(
        (max(b[0], region[0]), min(b[2], region[2])) for b in boxes if overlap_of_smaller(b, region) > 0.5
    )
    x = region[0]
    for x0, x1 in spans:
        if x0 - x > max_gap_heights * h:
            return False
        x = max(x, x1)
    return bool(spans) and region[2] - x <= max_gap_heights * h


def rotate_box(box: Box, angle: float, src_size: tuple[int, int], dst_size: tuple[int, int]) -> Box:
    """Where a box lands after PIL's `rotate(angle, expand=True)` (degrees counter-clockwise, about the centre).

    `src_size` is the size before rotating, `dst_size` after. The inverse is
    `rotate_box(box, -angle, dst_size, src_size)`.
    """
    a = math.radians(angle)
    cos, sin = math.cos(a), math.sin(a)
    cx, cy = src_size[0] / 2, src_size[1] / 2
    dx, dy = dst_size[0] / 2, dst_size[1] / 2
    pts = [(box[0], box[1]), (box[2], box[1]), (box[0], box[3]), (box[2], box[3])]
    # Image y points down, so a counter-clockwise turn on screen is (x, y) -> (x cos + y sin, -x sin + y cos).
    out = [((x - cx) * cos + (y - cy) * sin + dx, -(x - cx) * sin + (y - cy) * cos + dy) for x, y in pts]
    xs, ys = [p[0] for p in out], [p[1] for p in out]
    return (min(xs), min(ys), max(xs), max(ys))


def to_findings(words: list[OcrWord], max_gap_heights: float = 25.0) -> list[Finding]:
    """Merged words -> word, line and block findings, words carrying their line and block ids."""
    blocks = group_blocks(group_lines(words, max_gap_heights))
    word_f, line_f, block_f = [], [], []
    line_id = 0
    for block_id, block in enumerate(blocks):
        for line in block:
            for w in line.words:
                extra = {"line_id": line_id, "block_id": block_id, "pass": w.source, "engine": w.engine}
                if w.agree:  # both engines read it: each one's confidence
                    extra["engines"] = list(w.agree)
                    extra["confidence_by_engine"] = dict(w.agree)
                if w.alts:
                    extra["alts"] = list(w.alts)
                if w.parts:  # a word joined across boxes: each piece's text and box
                    extra["parts"] = [{"text": p["text"], "box": list(_round(p["box"]))} for p in w.parts]
                word_f.append(Finding("word", w.text, round(w.conf, 4), _round(w.box), extra))
            engines = sorted({e for w in line.words for e in (w.agree or [w.engine])})
            extra = {"line_id": line_id, "block_id": block_id, "n_words": len(line.words), "engines": engines}
            line_f.append(Finding("line", line.text, round(line.conf, 4), _round(line.box), extra))
            line_id += 1
        conf = sum(li.conf for li in block) / len(block)
        extra = {"block_id": block_id, "n_lines": len(block)}
        text = "\n".join(li.text for li in block)
        block_f.append(Finding("block", text, round(conf, 4), _round(union([li.box for li in block])), extra))
    return word_f + line_f + block_f


def _round(box: Box) -> Box:
    return tuple(round(float(v), 1) for v in box)
