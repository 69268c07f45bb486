"""Words across boxes: one word's letters in several boxes, or several words in one box.

The neural detector, its recogniser and Tesseract cut text into boxes at their own places, and none of
them always where the words break. This module reconciles them inside the detected lines (used by the
fusion, `tools.ocr_fuse`):

- tight letter spacing: a space the neural engine dropped between words tracked tight ("FRESHBREAD") is
  put back where the ink between two letters is a word gap: wider than every letter gap of the word, the
  letters farther apart than the word's pitch (`respace`); a word Tesseract split at such a gap stays
  split (`word_gap_between`);
- a word set in another size glued to the one before it ("PRO" + "xtraX") is a word of its own
  (`sizes_differ`);
- a word whose halves the detector found as two lines a letter gap apart on one row is one word.

A joined word keeps the texts and boxes of its pieces (`OcrWord.parts`).
"""

from __future__ import annotations

from dataclasses import dataclass

from tools.ocr_image import Ink
from tools.ocr_layout import OcrWord, cap_height, frame_box, union
from tools.ocr_rapid import TextLine, char_pitch


@dataclass
class WordsConfig:
    """Where words break (measured on rendered tight signs and on the real-dev
    photos: no word the engines read whole there is cut)."""

    word_gap: float = 0.12  # a word gap is at least this many letter heights wide,
    gap_ratio: float = 2.0  # ... this many times the widest letter gap of its word,
    pitch_ratio: float = 1.25  # ... and (for a space put back) its letters this much farther apart than usual
    gap_px: int = 20  # letters shorter than this are too coarse to measure gaps on
    merged_conf: float = 0.9  # a Tesseract word less sure than this is split at a space only the ink shows
    size_ratio: float = 1.4  # pieces whose capital heights differ this much are set in different sizes
    halves_gap: float = 0.2  # two halves of a word on one row: less than a space apart, in letter heights


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
