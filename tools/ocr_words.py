"""Words across boxes: one word's letters in several boxes, or several words in one box.

The neural detector, its recogniser and Tesseract cut text into boxes at their own places, and none of
them always where the words break. This module reconciles them, inside one detected line (used by the
fusion, `tools.ocr_fuse`) and across the words of the whole image (`join_across_boxes`, the OCR tool's
last step):

- tight letter spacing: a space the neural engine dropped between words tracked tight ("FRESHBREAD") is
  put back where the ink between two letters is a word gap: wider than every letter gap of the word, the
  letters farther apart than the word's pitch (`respace`); a word Tesseract split at such a gap stays
  split (`word_gap_between`);
- a word set in another size glued to the one before it ("PRO" + "xtraX") is a word of its own
  (`sizes_differ`);
- a stylised first letter in a box of its own, taller than the rest of its word ("B" + "urger", a drop
  cap), joins that word;
- a word broken at the end of a line by a hyphen ("competi-" / "tive") is one word, on the first line;
  a word whose halves lie in two boxes a letter gap apart on one row is one word.

A joined word keeps the texts and boxes of its pieces (`OcrWord.parts`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from tools.ocr_image import Ink, line_ink
from tools.ocr_layout import HYPHENATED, OcrWord, cap_height, frame_box, group_lines, union
from tools.ocr_rapid import TextLine, char_pitch


@dataclass
class WordsConfig:
    """Where words break (measured on rendered tight signs, initials and paragraphs, and on the real-dev
    photos: no word the engines read whole there is cut)."""

    word_gap: float = 0.12  # a word gap is at least this many letter heights wide,
    gap_ratio: float = 2.0  # ... this many times the widest letter gap of its word,
    pitch_ratio: float = 1.25  # ... and (for a space put back) its letters this much farther apart than usual
    gap_px: int = 20  # letters shorter than this are too coarse to measure gaps on
    merged_conf: float = 0.9  # a Tesseract word less sure than this is split at a space only the ink shows
    size_ratio: float = 1.4  # pieces whose capital heights differ this much are set in different sizes
    initial_ratio: float = 1.4  # an initial letter is at least this much taller than its word's capitals
    initial_gap: float = 0.5  # ... and at most this many of those capitals' heights away from the word
    halves_gap: float = 0.2  # two halves of a word on one row: less than a space apart, in letter heights
    column_gap: float = 1.5  # words farther apart than this many line heights are in different columns


# ---- inside one detected line ---------------------------------------------------------------------


def respace(li: TextLine, ink: Ink | None, cfg: WordsConfig) -> set[int]:
    """Put back, in the line's text and character positions, the spaces the neural engine dropped
    between words set tight (see `_word_gaps`); returns where they now are in the text."""
    n = len(li.text)
    if ink is None or li.cols is None or len(li.cols) != n:
        return set()
    x = [c * ink.width for c in li.cols]
    cuts: list[tuple[int, float]] = []  # (text index a new word starts at, crop column of the gap)
    i = 0
    while i < n:
        e = i
        while e < n and not li.text[e].isspace():
            e += 1
        cuts += _word_gaps(li.text, x, ink, i, e, cfg) or _size_change(li.text, x, ink, i, e, cfg)
        i = e + 1
    for k, col in reversed(cuts):
        li.text = li.text[:k] + " " + li.text[k:]
        li.cols = [*li.cols[:k], col / ink.width, *li.cols[k:]]
    return {k + j for j, (k, _) in enumerate(cuts)}


def _word_gaps(
    text: str, x: list[float], ink: Ink, a: int, b: int, cfg: WordsConfig
) -> list[tuple[int, float]]:
    """Word gaps inside the neural word text[a:b] (character centres `x` in crop columns): the few widest
    ink gaps between its letters, each `gap_ratio` times every other one (letters tracked so tight that
    they touch leave gaps only at the spaces) and between letters `pitch_ratio` farther apart than the
    word's usual pitch (an italic "Lo|ndon" has a wide gap at its usual pitch); Latin letters either
    side, words of two letters at least."""
    if b - a < 4:
        return []
    pitch = [x[k + 1] - x[k] for k in range(a, b - 1)]
    mid = sorted(pitch)[len(pitch) // 2]
    h = ink.height(round(x[a] - mid / 2), round(x[b - 1] + mid / 2))
    if h < cfg.gap_px:
        return []
    widest = [_widest_gap(ink, x[k], x[k + 1]) for k in range(a, b - 1)]
    ranked = sorted((g for g, _ in widest), reverse=True) + [0]
    n = max(
        (
            n
            for n in range(1, len(widest) // 3 + 1)
            if ranked[n - 1] >= max(cfg.gap_ratio * max(ranked[n], 1), cfg.word_gap * h)
        ),
        default=0,
    )
    found = sorted(
        (a + k + 1, widest[k][1])
        for k in sorted(range(len(widest)), key=lambda k: -widest[k][0])[:n]
        if _latin(text[a + k]) and _latin(text[a + k + 1]) and pitch[k] >= cfg.pitch_ratio * mid
    )
    out, start = [], a
    for i, (k, col) in enumerate(found):
        end = found[i + 1][0] if i + 1 < len(found) else b
        if _letters(text[start:k]) >= 2 and _letters(text[k:end]) >= 2:
            out.append((k, col))
            start = k
    return out


def _size_change(
    text: str, x: list[float], ink: Ink, a: int, b: int, cfg: WordsConfig
) -> list[tuple[int, float]]:
    """Where the neural word text[a:b] changes letter size ("PROxtrax": a word set smaller glued to a
    bigger one): every letter before that point `size_ratio` taller (as a capital) than every one after
    it, or the other way round; two letters at least either side."""
    if b - a < 4:
        return []
    caps: list[float | None] = []
    for k in range(a, b):  # each letter's height over the middle of its columns, as a capital height
        half = (x[min(k + 1, b - 1)] - x[max(k - 1, a)]) / (4 if a < k < b - 1 else 2)
        h = ink.height(round(x[k] - half / 2), round(x[k] + half / 2) + 1) if _latin(text[k]) else 0
        caps.append(cap_height(text[k], h) if h >= cfg.gap_px / 2 else None)
    for k in range(a + 2, b - 1):
        left = [c for c in caps[: k - a] if c]
        right = [c for c in caps[k - a :] if c]
        if len(left) < 2 or len(right) < 2 or not (_latin(text[k - 1]) and _latin(text[k])):
            continue
        if min(left) >= cfg.size_ratio * max(right) or min(right) >= cfg.size_ratio * max(left):
            return [(k, (x[k - 1] + x[k]) / 2)]
    return []


def word_gap_between(
    li: TextLine, ink: Ink, a: tuple[int, int], b: tuple[int, int], cfg: WordsConfig
) -> bool | None:
    """Did Tesseract split one neural word where its letters stand a word gap apart? The ink gap between
    the line's text stretches a and b ((start, end), a before b) is at least `word_gap` letter heights
    and `gap_ratio` times every letter gap inside either. None where the ink cannot tell: a piece of one
    letter, or letters too small to measure."""
    if min(_letters(li.text[s0:s1], alnum=True) for s0, s1 in (a, b)) < 2:
        return None
    h = ink.height(*columns(li, ink, a[0], b[1]))
    if h < cfg.gap_px:
        return None
    x = [c * ink.width for c in _cols(li)]
    inner = [_widest_gap(ink, x[k], x[k + 1])[0] for s0, s1 in (a, b) for k in range(s0, s1 - 1)]
    gap = _widest_gap(ink, x[a[1] - 1], x[b[0]])[0]
    return gap >= max(cfg.gap_ratio * max(inner + [1]), cfg.word_gap * h)


def sizes_differ(
    li: TextLine, ink: Ink, a: tuple[str, int, int], b: tuple[str, int, int], cfg: WordsConfig
) -> bool:
    """Are two pieces of the line ((text, start, end) in the line's text) set in different sizes? Their
    ink heights, read as capital heights by the letters each holds ("xtraX" after "PRO": 0.55 of it)."""
    if min(_letters(t, alnum=True) for t, _, _ in (a, b)) < 2:
        return False
    caps = []
    for t, s0, s1 in (a, b):
        h = ink.height(*columns(li, ink, s0, s1))
        if h <= 0:
            return False
        caps.append(cap_height(t, h))
    return max(caps) >= cfg.size_ratio * min(caps)


def columns(li: TextLine, ink: Ink, s0: int, s1: int) -> tuple[int, int]:
    """The crop columns of the line's text[s0:s1], from the recogniser's character positions."""
    cols = _cols(li)
    half = char_pitch(cols) / 2
    return round((cols[s0] - half) * ink.width), round((cols[s1 - 1] + half) * ink.width) + 1


def _cols(li: TextLine) -> list[float]:
    n = len(li.text)
    return li.cols if li.cols is not None and len(li.cols) == n else [(i + 0.5) / max(1, n) for i in range(n)]


def _widest_gap(ink: Ink, x0: float, x1: float) -> tuple[int, float]:
    """(width, centre column) of the widest run of inkless columns between two character centres."""
    s0, s1 = max(ink.gaps(round(x0), round(x1) + 1), key=lambda r: r[1] - r[0], default=(0, 0))
    return s1 - s0, (s0 + s1) / 2


def _latin(c: str) -> bool:
    return c.isalpha() and ord(c) < 0x2E80


def _letters(text: str, alnum: bool = False) -> int:
    return sum(c.isalnum() if alnum else c.isalpha() for c in text)


def join_halves(read: list[tuple[TextLine, list[OcrWord]]], cfg: WordsConfig) -> list[OcrWord]:
    """The fused words of each detected line, with a word whose halves the detector found as two lines
    side by side made one: the last word of one line and the first of a line of the same size that
    starts a letter gap after it (`halves_gap` letter heights at most) on the same row, the first ending
    in a letter and the second going on in lower case."""
    rows = sorted((p for p in read if p[1] and not p[0].vertical), key=lambda p: p[0].box[0])
    ends: dict[int, OcrWord] = {}  # id of a word that ends a line -> the joined word it became
    gone: set[int] = set()
    for i, (la, wa) in enumerate(rows):
        a = ends.get(id(wa[-1]), wa[-1])
        for lb, wb in rows[i + 1 :]:
            b = wb[0]
            h = min(a.box[3] - a.box[1], b.box[3] - b.box[1])
            gap = b.box[0] - a.box[2]
            overlap = min(a.box[3], b.box[3]) - max(a.box[1], b.box[1])
            if (
                -0.3 * h <= gap <= cfg.halves_gap * h
                and overlap >= 0.6 * h
                and max(la.height, lb.height) <= 1.33 * min(la.height, lb.height)
                and a.text[-1:].isalpha()
                and b.text[:1].islower()
                and id(b) not in gone
            ):
                whole = _joined(a.text + b.text, [a, b])
                for k, v in list(ends.items()):
                    if v is a:
                        ends[k] = whole
                ends[id(wa[-1])] = ends[id(b)] = whole
                gone.add(id(b))
                break
    out = []
    for _, ws in read:
        for w in ws:
            if id(w) in gone:
                continue
            out.append(ends.get(id(w), w) if w is ws[-1] else w)
    return out


# ---- across the words of an image -----------------------------------------------------------------


def join_across_boxes(
    words: list[OcrWord], gray: np.ndarray | None = None, cfg: WordsConfig | None = None
) -> list[OcrWord]:
    """The image's words with the pieces of one word joined (see the module doc); `gray` (the image the
    boxes are in) lets letter heights be measured from the ink rather than taken from the boxes."""
    cfg = cfg or WordsConfig()
    words = _join_initials(words, gray, cfg)
    words = _join_hyphenated(words, cfg)
    for w in words:  # a hyphen no next line continues is border junk, as Tesseract's cleaning has it
        if HYPHENATED.search(w.text):
            w.text = w.text[:-1]
    return words


def _join_initials(words: list[OcrWord], gray, cfg: WordsConfig) -> list[OcrWord]:
    """A stylised first letter in a box of its own ("B" beside "urger", a drop cap beside its paragraph's
    first line) joins the word it begins: a lone capital (or one the recogniser read with the word's first
    letter again, "We" beside "elcome"), `initial_ratio` taller than the word's capitals, at most
    `initial_gap` of them away, the word starting in lower case and lying within the letter's height."""
    lower = [w for w in words if w.text[:1].islower() and _letters(w.text) >= 2]
    joined: dict[int, OcrWord] = {}  # id of a word -> the word it became with its initial
    gone: set[int] = set()
    for a in words:
        if not a.text[:1].isupper() or len(a.text) > 3:
            continue
        fa = frame_box(a)
        best = None
        for b in lower:
            fb = frame_box(b)
            hb = fb[3] - fb[1]
            if id(b) in joined or not -0.6 * (fa[2] - fa[0]) <= fb[0] - fa[2] <= hb:
                continue
            letter = _initial(a.text, b.text, overlap=fb[0] < fa[2])
            if not letter or fb[1] < fa[1] - 0.3 * hb or fb[3] > fa[3] + 0.5 * hb:
                continue
            cap_b = cap_height(b.text, _height(gray, b))
            if (
                fb[0] - fa[2] > cfg.initial_gap * cap_b
                or cap_height(letter, _height(gray, a)) < cfg.initial_ratio * cap_b
            ):
                continue
            if best is None or fb[1] < frame_box(best[0])[1]:
                best = (b, letter)
        if best is not None:
            b, letter = best
            joined[id(b)] = _joined(letter + b.text, [a, b], box_of=b)
            gone.add(id(a))
    return [joined.get(id(w), w) for w in words if id(w) not in gone]


def _initial(a: str, b: str, overlap: bool) -> str:
    """The initial letter `a` reads as before the word `b`: a lone letter, or one followed by the first
    letters of `b` again where the boxes overlap ("We" + "elcome"); "" when `a` is no initial."""
    if len(a) == 1 and a.isalpha():
        return a
    if overlap and len(a) >= 2 and a[0].isalpha() and b.startswith(a[1:]):
        return a[0]
    return ""


def _height(gray, w: OcrWord) -> float:
    """The height of a word's letters: its ink's where the image is given (the middle of the box, where
    no neighbour's letter reaches in), else its box's."""
    x0, y0, x1, y1 = w.box
    if gray is not None:
        m, trim = 0.25 * (y1 - y0), 0.15 * (x1 - x0)
        r0, r1 = max(0, int(y0 - m)), min(gray.shape[0], int(y1 + m) + 1)
        c0, c1 = max(0, int(x0 + trim)), min(gray.shape[1], int(x1 - trim) + 1)
        ink = line_ink(gray[r0:r1, c0:c1]) if r1 - r0 >= 8 and c1 - c0 >= 2 else None
        h = ink.height(0, ink.width) if ink is not None else 0
        if h > 0:
            return float(h)
    return float(y1 - y0)


def _join_hyphenated(words: list[OcrWord], cfg: WordsConfig) -> list[OcrWord]:
    """A word ending its line's column with a hyphen ("competi-") and the word starting the next line of
    that column in lower case ("tive") are one word, on the first line ("competitive"; the pieces kept)."""
    segments = []  # runs of one line within one column: [words left to right]
    for line in group_lines(words, max_gap_heights=100.0):
        seg = [line.words[0]]
        for w in line.words[1:]:
            if frame_box(w)[0] - frame_box(seg[-1])[2] > cfg.column_gap * line.height:
                segments.append(seg)
                seg = []
            seg.append(w)
        segments.append(seg)
    gone: set[int] = set()
    joined: dict[int, OcrWord] = {}
    for seg in segments:
        a = seg[-1]
        if not HYPHENATED.search(a.text) or id(a) in gone:
            continue
        fa = frame_box(a)
        h, x0 = fa[3] - fa[1], frame_box(seg[0])[0]
        below = [
            s
            for s in segments
            if s[0].text[:1].islower()
            and 0.6 * h <= _mid(frame_box(s[0])) - _mid(fa) <= 2.5 * h
            and frame_box(s[0])[0] < fa[0]
            and min(frame_box(s[-1])[2], fa[2]) - max(frame_box(s[0])[0], x0) > 0
            and 0.7 <= (frame_box(s[0])[3] - frame_box(s[0])[1]) / max(h, 1) <= 1.4
        ]
        if below:
            b = min(below, key=lambda s: _mid(frame_box(s[0])))[0]
            joined[id(a)] = _joined(a.text[:-1] + b.text, [a, b], box_of=a)
            gone.add(id(b))
    return [joined.get(id(w), w) for w in words if id(w) not in gone]


def _mid(b) -> float:
    return (b[1] + b[3]) / 2


def _joined(text: str, pieces: list[OcrWord], box_of: OcrWord | None = None) -> OcrWord:
    """One word from its pieces: their lowest confidence, both engines' agreement only where every piece
    had it; its box the pieces' union, or spanning them along the row at `box_of`'s height and line."""
    boxes = [w.box for w in pieces]
    fboxes = [frame_box(w) for w in pieces]
    box, fbox = union(boxes), union(fboxes)
    if box_of is not None:  # keep the line the word belongs to: its height is that word's
        box = (box[0], box_of.box[1], box[2], box_of.box[3]) if box_of is pieces[-1] else box_of.box
        fbox = (
            (fbox[0], frame_box(box_of)[1], fbox[2], frame_box(box_of)[3])
            if box_of is pieces[-1]
            else frame_box(box_of)
        )
    lead = box_of or pieces[0]
    return OcrWord(
        text,
        min(w.conf for w in pieces),
        box,
        lead.source,
        fbox if any(w.fbox is not None for w in pieces) else None,
        agree=dict(lead.agree) if all(w.agree for w in pieces) else {},
        alts=[a for w in pieces for a in w.alts],
        parts=[p for w in pieces for p in (w.parts or [{"text": w.text, "box": w.box}])],
    )
