"""Fusing the two OCR engines' readings of one image into one set of words.

The neural engine (`tools.ocr_rapid`) finds text lines and reads scene text well; Tesseract reads dense
printed pages well and splits words at their spaces. Both readings are kept apart until here:

- `tesseract_on_lines` lets Tesseract read the lines the neural detector found (each warped level,
  scaled to a readable height, binarised, all stacked in one sheet: one Tesseract call), so the two
  engines read the same regions;
- `fuse` pairs each neural line with the Tesseract words inside it and aligns the two readings word by
  word. Where they agree (ignoring case, punctuation and the spaces the neural engine tends to drop) the
  Tesseract words are kept (tighter boxes, proper word breaks) and marked as read by both engines. Where
  they disagree the more credible reading wins (its confidence plus a prior: the neural engine on scene
  text, Tesseract on dense pages where it is confident), and the other is recorded as an alternative on
  the words kept. Words one engine read and the other did not see are kept (full recall), Tesseract's
  lone words inside a neural line only when they are confident.

Words set tight are told apart by the ink between them (`tools.ocr_words`, on the image the lines were
read in): a space the neural engine dropped where two letters stand a word gap apart ("FRESHBREAD" on a
tightly tracked sign), a word Tesseract ran over a space the neural engine read ("OPENDAILY" over "OPEN
DAILY") and a word in another size glued to the one before it ("PROxtraX") become separate words.

Every word keeps its engine (`source`), its confidence and the alternatives (`OcrWord.alts`).
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from tools.ocr_image import Ink, binarize, line_ink
from tools.ocr_layout import OcrWord, overlap_of_smaller, union
from tools.ocr_rapid import TextLine, rectify
from tools.ocr_words import WordsConfig, join_halves, respace, sizes_differ, word_gap_between


@dataclass
class FuseConfig:
    """Knobs of the fusion (defaults measured on rendered signs/receipts and on real photos)."""

    dense_lines: int = 14  # an image with this many detected lines is read as a document page
    dense_area: float = 0.25  # ... or one whose detected lines cover this fraction of it
    page_gap_heights: float = 100.0  # on a page, words this many line heights apart still share a line
    scene_prior: float = 0.15  # added to the neural reading's confidence on scene text
    doc_prior: float = 0.15  # added to Tesseract's on a document page, when its reading is confident
    doc_conf: float = 0.8  # ... i.e. at least this confident
    lone_conf: float = 0.85  # a Tesseract word inside a neural line that the neural engine did not read
    line_px: int = 48  # Tesseract sees each detected line scaled to about this height
    max_upscale: float = 4.0
    sheet_gap_px: int = 24
    inside: float = 0.6  # a word belongs to a line when this much of it lies inside the line's box
    level_deg: float = 1.0  # lines slanting more than this are grouped in a frame turned level
    glued_chars: int = 2  # a Tesseract word takes in this many neural characters glued to it, no more
    cut_regions: int = 12  # text-like regions checked for text the neural detector cut off a line
    region_side: int = 1600  # ... found on the image shrunk to at most this side
    unlike: float = 0.5  # below this similarity, Tesseract's reading of a sure neural line is noise
    words: WordsConfig = field(default_factory=WordsConfig)  # where words break (gaps, letter sizes)


def loose(text: str) -> str:
    """Text compared between engines: case, punctuation and spaces do not count."""
    return re.sub(r"[\W_]+", "", text.lower())


# ---- Tesseract on the neural engine's lines -------------------------------------------------------


def tesseract_on_lines(
    tesseract: Callable, gray: np.ndarray, lines: list[TextLine], cfg: FuseConfig
) -> list[OcrWord]:
    """Tesseract's reading of each line (psm 6 on one stacked sheet), word boxes in image pixels.

    `tesseract(image, psm)` returns `OcrWord`s with boxes in that image's pixels."""
    from PIL import Image

    pieces = []  # (prepared crop, x offset of the line in it, line width in crop pixels, line, its index)
    for n, li in enumerate(lines):
        crop = rectify(gray, li)
        h = crop.shape[0]
        scale = min(cfg.max_upscale, max(0.5, cfg.line_px / max(1, h)))
        im = Image.fromarray(crop).resize(
            (max(2, round(crop.shape[1] * scale)), max(2, round(h * scale))), Image.LANCZOS
        )
        m = max(6, round(0.25 * im.height))
        padded = Image.new("L", (im.width + 2 * m, im.height + 2 * m), int(np.median(crop)))
        padded.paste(im, (m, m))
        pieces.append((binarize(padded, (m, m, m + im.width, m + im.height)), m, im.width, li, n))
    if not pieces:
        return []
    gap = cfg.sheet_gap_px
    width = max(p.width for p, *_ in pieces) + 2 * gap
    sheet = Image.new("L", (width, sum(p.height + gap for p, *_ in pieces) + gap), 255)
    tops, y = [], gap
    for p, *_ in pieces:
        sheet.paste(p, (gap, y))
        tops.append(y)
        y += p.height + gap
    out = []
    for w in tesseract(sheet, 6):
        cy = (w.box[1] + w.box[3]) / 2
        k = max((i for i, t in enumerate(tops) if t - gap / 2 <= cy), default=0)
        _, m, width, li, n = pieces[k]
        t0 = (w.box[0] - gap - m) / width
        t1 = (w.box[2] - gap - m) / width
        if t1 <= 0 or t0 >= 1:
            continue  # read in the padding: not part of the line
        out.append(OcrWord(w.text, w.conf, li.sub_box(t0, t1), f"line:{n}", None))
    return out


# ---- fusion ---------------------------------------------------------------------------------------


def fuse(
    lines: list[TextLine], tess: list[OcrWord], dense: bool, cfg: FuseConfig, gray: np.ndarray | None = None
) -> list[OcrWord]:
    """One set of words from the neural lines (recognised) and Tesseract's words; see the module doc.
    `gray` is the image the lines were detected in (without it, the gaps between letters are not read)."""
    per_line: list[tuple[TextLine, list[OcrWord]]] = []
    claimed: set[int] = set()
    for n, li in enumerate(lines):
        ink = line_ink(rectify(gray, li)) if gray is not None and not (li.vertical or li.flipped) else None
        soft = respace(li, ink, cfg.words)
        # Tesseract's reading of this very line crop is its own; other words belong where they lie.
        mine = [
            i
            for i, w in enumerate(tess)
            if i not in claimed
            and (w.source == f"line:{n}" if w.source.startswith("line:") else on_line(li, w.box, cfg))
        ]
        claimed.update(mine)
        # In reading order by where each word starts: a word box Tesseract stretched over the rest of the
        # line ("FISH" boxed to the line's end) must not come after the words it runs over.
        tw = sorted((tess[i] for i in mine), key=lambda w, li=li: along(li, w.box, start=True))
        per_line.append((li, _fuse_line(li, tw, dense, cfg, ink, soft)))
    return join_halves(per_line, cfg.words) + [w for i, w in enumerate(tess) if i not in claimed]


def on_line(li: TextLine, box, cfg: FuseConfig) -> bool:
    """Does the box's centre lie inside the line's polygon (not merely its bounding box, which for a
    slanted line covers its neighbours too), and is the box no taller than about the line?"""
    q = li.quad.astype(np.float64)
    c = np.array([(box[0] + box[2]) / 2, (box[1] + box[3]) / 2])
    m = np.column_stack([q[1] - q[0], q[3] - q[0]])
    if abs(np.linalg.det(m)) < 1e-6:
        return False
    u, v = np.linalg.solve(m, c - q[0])
    return -0.05 <= u <= 1.05 and -0.1 <= v <= 1.1 and fits_line(box, li)


def fits_line(box, li: TextLine) -> bool:
    """A word no taller than about the line (a big word is not part of a small line it overlaps)."""
    h = (box[2] - box[0]) if li.vertical else (box[3] - box[1])
    return h <= 1.6 * max(li.height, 1.0)


def along(li: TextLine, box, start: bool = False) -> float:
    """Where a box's centre (with `start`: the middle of its first edge) lies along the line's reading
    direction (0 at its start)."""
    q = li.quad
    a0, a1 = (q[0], q[3]) if li.vertical else (q[0], q[1])
    d = a1 - a0
    c = np.array([(box[0] + box[2]) / 2, (box[1] + box[3]) / 2], dtype=np.float32)
    if start:
        k = (1 if li.vertical else 0) + (2 if li.flipped else 0)
        c[k % 2] = box[k]
    t = float(np.dot(c - a0, d) / max(float(np.dot(d, d)), 1e-6))
    return 1.0 - t if li.flipped else t


def _fuse_line(
    li: TextLine, tw: list[OcrWord], dense: bool, cfg: FuseConfig, ink: Ink | None = None, soft=frozenset()
) -> list[OcrWord]:
    """Align the neural line's characters with Tesseract's words inside it (letters and digits only, so
    case, punctuation and dropped spaces do not count) and settle each Tesseract word against the
    neural reading of the same stretch; what only the neural engine read becomes words of its own."""
    if not tw:
        return li.words()
    if _noise(li, tw, dense, cfg):
        # Tesseract's reading of a line the neural engine read with confidence, unlike it through and
        # through ("Ke)" for "LONDON" in blue on white): it must not cut the line's words and boxes; the
        # neural words stand, with Tesseract's reading kept as their alternative.
        theirs = " ".join(w.text for w in tw)
        alt = {"engine": "tesseract", "text": theirs, "confidence": round(min(w.conf for w in tw), 4)}
        return [_with_alt(w, alt) for w in li.words()]
    r_idx = [k for k, c in enumerate(li.text) if loose(c)]  # neural characters that count -> text index
    r = "".join(li.text[k].lower() for k in r_idx)
    t, owner = "", []
    for j, w in enumerate(tw):
        lw = loose(w.text)
        t += lw
        owner += [j] * len(lw)
    # t position -> r position (or -1 where only Tesseract has a character)
    t2r = [-1] * len(t)
    for op, i1, i2, j1, j2 in difflib.SequenceMatcher(None, r, t, autojunk=False).get_opcodes():
        if op in ("equal", "replace"):
            for j in range(j1, j2):
                t2r[j] = i1 + (j - j1) * (i2 - i1) // max(1, j2 - j1)
    used = [False] * len(r)
    spans: list[tuple[int, int] | None] = []
    words: list[OcrWord] = []
    for j, w in enumerate(tw):
        mine = [t2r[p] for p in range(len(t)) if owner[p] == j]
        for part, rs in _split_at_spaces(li, r_idx, w, mine, soft if w.conf >= cfg.words.merged_conf else ()):
            words.append(part)
            spans.append((min(rs), max(rs)) if rs else None)
            for k in range(min(rs), max(rs) + 1) if rs else ():
                used[k] = True
    out: list[OcrWord] = []
    pieces: list[tuple[OcrWord, int, int, bool]] = []  # (word, text start, text end, read by Tesseract)
    for w, span in zip(words, spans, strict=True):
        if span is None:  # the neural engine saw nothing here: keep only what Tesseract is sure of
            if w.conf >= cfg.lone_conf and len(loose(w.text)) >= 2:
                out.append(w)
            continue
        lo, hi = _absorb(li, r_idx, used, w, *span, cfg.glued_chars)
        for k in range(lo, hi + 1):
            used[k] = True
        settled = _settle(w, li.text[r_idx[lo] : r_idx[hi] + 1], li.conf, dense, cfg)
        pieces.append((settled, r_idx[lo], r_idx[hi] + 1, True))
    # Runs of neural characters no Tesseract word accounts for: words only the neural engine read.
    k = 0
    while k < len(r):
        if used[k]:
            k += 1
            continue
        e = k
        while e + 1 < len(r) and not used[e + 1]:
            e += 1
        a, b = _widen(li.text, r_idx[k], r_idx[e] + 1)
        pieces += [(word, s0, s1, False) for word, s0, s1 in _split(li, a, b)]
        k = e + 1
    return out + _join_broken_words(li, sorted(pieces, key=lambda p: p[1]), ink, cfg.words)


def _noise(li: TextLine, tw: list[OcrWord], dense: bool, cfg: FuseConfig) -> bool:
    """Tesseract's words on a scene line the neural engine read surer than them, and unlike its reading."""
    if dense or li.conf < cfg.doc_conf or max(w.conf for w in tw) >= li.conf:
        return False
    theirs = loose(" ".join(w.text for w in tw))
    return difflib.SequenceMatcher(None, loose(li.text), theirs, autojunk=False).ratio() < cfg.unlike


def _with_alt(w: OcrWord, alt: dict) -> OcrWord:
    w.alts = [*w.alts, alt]
    return w


def _join_broken_words(
    li: TextLine, pieces: list[tuple[OcrWord, int, int, bool]], ink: Ink | None, cfg: WordsConfig
) -> list[OcrWord]:
    """Pieces of one neural word (no space inside it in the neural reading) become one word when Tesseract
    read only part of it ("Gree" + neural "nstea" + "d") or broke it where no word gap is (letter-spaced
    or worn print); not a piece set in another size than its neighbour ("PRO" + "xtraX")."""
    token = [0] * (len(li.text) + 1)
    for i, c in enumerate(li.text):
        token[i + 1] = token[i] + (c.isspace() and i > 0 and not li.text[i - 1].isspace())
    groups: list[list[tuple[OcrWord, int, int, bool]]] = []
    for p in pieces:
        q = groups[-1][-1] if groups else None
        same = q is not None and token[q[1]] == token[p[1]] == token[max(p[1], p[2] - 1)]
        if same and q[3] and p[3]:  # Tesseract split them: kept apart at a space's gap, or at a word gap
            apart = word_gap_between(li, ink, q[1:3], p[1:3], cfg) if ink is not None else None
            same = not apart and _narrow_gap(li, q[0], p[0])
        elif same and ink is not None:
            same = not sizes_differ(li, ink, (q[0].text, *q[1:3]), (p[0].text, *p[1:3]), cfg)
        if same:
            groups[-1].append(p)
        else:
            groups.append([p])
    out = []
    for g in groups:
        if len(g) == 1:
            out.append(g[0][0])
            continue
        words = [p[0] for p in g]
        whole = OcrWord(
            "".join(w.text for w in words),
            min(w.conf for w in words),
            union([w.box for w in words]),
            "rapid" if not all(p[3] for p in g) else words[0].source,
            None,
            agree=dict(words[0].agree) if all(w.agree for w in words) else {},
            alts=[a for w in words for a in w.alts],
        )
        out.append(whole)
    return out


def _split_at_spaces(
    li: TextLine, r_idx: list[int], w: OcrWord, rs: list[int], soft=()
) -> list[tuple[OcrWord, list[int]]]:
    """A Tesseract word run over a space of the neural reading ("OPENDAILY" over "OPEN DAILY") as one word
    per side of it, each with the neural positions its letters align with and its part of the box (`rs`:
    the neural position of each of its counted characters, -1 where none); other words come back whole.
    Not at a space only the ink put there (`soft`, see `tools.ocr_words.respace`), nor at one outside the
    middle of the word's box (a misread letter aligned across the space: "HOTOR" for "S.H.H. MOTOR")."""
    where = [i for i, c in enumerate(w.text) for _ in loose(c)]  # text index of each counted character
    axis = 1 if li.vertical else 0
    lo, hi = w.box[axis], w.box[axis + 2]
    cuts = []  # (index into rs where a new word starts, where the box is cut)
    for p in range(1, len(rs)):
        i, j = rs[p - 1], rs[p]
        if 0 <= i < j and any(li.text[k].isspace() and k not in soft for k in range(r_idx[i], r_idx[j])):
            at = _between(li, r_idx[i], r_idx[j])[axis]
            if lo + 0.1 * (hi - lo) < at < hi - 0.1 * (hi - lo):
                cuts.append((p, at))
    if not cuts or len(where) != len(rs):
        return [(w, [r for r in rs if r >= 0])]
    out, prev, start = [], 0, lo
    for p, at in [*cuts, (len(rs), hi)]:
        text = w.text[where[prev] if prev else 0 : where[p] if p < len(rs) else len(w.text)].strip()
        box = (start, w.box[1], at, w.box[3]) if axis == 0 else (w.box[0], start, w.box[2], at)
        out.append((OcrWord(text, w.conf, box, w.source, None), [r for r in rs[prev:p] if r >= 0]))
        prev, start = p, at
    return out


def _between(li: TextLine, i: int, j: int) -> tuple[float, float]:
    """The image point midway between the line's characters i and j (on its middle)."""
    n = len(li.text)
    cols = li.cols if li.cols is not None and len(li.cols) == n else [(k + 0.5) / max(1, n) for k in range(n)]
    t = (cols[i] + cols[j]) / 2
    p = li.sub_box(t, t)
    return (p[0] + p[2]) / 2, (p[1] + p[3]) / 2


def _narrow_gap(li: TextLine, a: OcrWord, b: OcrWord) -> bool:
    """Two Tesseract words closer than a space: one word it broke (letter-spaced or worn print)."""
    if li.vertical:
        gap, h = b.box[1] - a.box[3], min(a.box[2] - a.box[0], b.box[2] - b.box[0])
    else:
        gap, h = b.box[0] - a.box[2], min(a.box[3] - a.box[1], b.box[3] - b.box[1])
    return gap < 0.2 * h


def _absorb(li: TextLine, r_idx: list[int], used: list[bool], w: OcrWord, lo: int, hi: int, most: int):
    """Extend a Tesseract word's stretch of neural characters over the unclaimed ones glued to it (no space
    between) when the run is short or lies inside the word's box: Tesseract's "180048" is the neural
    "3180048", and its "NANCE" over the whole word is the neural "MAINTENANCE"; a long run beside the
    box ("Telephone" before "03") is a word Tesseract missed, not part of this one."""
    text = li.text

    def glued(a: int, b: int) -> bool:
        return not any(c.isspace() for c in text[r_idx[a] : r_idx[b] + 1])

    def takes(a: int, b: int) -> bool:
        if b - a + 1 <= most:
            return True
        return overlap_of_smaller(li.span(r_idx[a], r_idx[b] + 1).box, w.box) >= 0.5

    k = lo
    while k > 0 and not used[k - 1] and glued(k - 1, lo):
        k -= 1
    e = hi
    while e + 1 < len(r_idx) and not used[e + 1] and glued(hi, e + 1):
        e += 1
    return (k if k < lo and takes(k, lo - 1) else lo), (e if e > hi and takes(hi + 1, e) else hi)


def _widen(text: str, a: int, b: int) -> tuple[int, int]:
    """Extend text[a:b] over neighbouring punctuation (not spaces): "8.85" stays whole, "$5" keeps "$"."""
    while a > 0 and not text[a - 1].isspace() and not loose(text[a - 1]):
        a -= 1
    while b < len(text) and not text[b].isspace() and not loose(text[b]):
        b += 1
    return a, b


def _split(li: TextLine, a: int, b: int) -> list[tuple[OcrWord, int, int]]:
    """text[a:b] of a neural line as words (split at its spaces), with boxes from character positions,
    each with its start and end in the line's text."""
    out, i = [], a
    for token in li.text[a:b].split():
        start = li.text.index(token, i)
        i = start + len(token)
        out.append((li.span(start, i), start, i))
    return out


def _settle(w: OcrWord, theirs: str, their_conf: float, dense: bool, cfg: FuseConfig) -> OcrWord:
    """A Tesseract word against the neural reading of the same stretch: agreement is credited to both
    engines; a disagreement goes to the more credible reading (its confidence plus the engine's prior),
    in Tesseract's box, and the other reading is kept as an alternative."""
    if loose(theirs) == loose(w.text):
        w.agree = {"tesseract": round(w.conf, 4), "rapid": round(their_conf, 4)}
        w.conf = max(w.conf, their_conf)
        return w
    # Letters of a script Tesseract's Latin models do not know (the neural engine reads Chinese too):
    # Tesseract's reading of that stretch is a guess however sure it claims to be.
    foreign = any(ord(c) >= 0x2E80 for c in theirs) and not any(ord(c) >= 0x2E80 for c in w.text)
    r_score = their_conf + (0.0 if dense else cfg.scene_prior) + (1.0 if foreign else 0.0)
    t_score = w.conf + (cfg.doc_prior if dense and w.conf >= cfg.doc_conf else 0.0)
    if t_score >= r_score:
        w.alts = [{"engine": "rapid", "text": theirs, "confidence": round(their_conf, 4)}]
        return w
    alt = {"engine": "tesseract", "text": w.text, "confidence": round(w.conf, 4)}
    return OcrWord(theirs.strip(), their_conf, w.box, "rapid", w.fbox, alts=[alt])
