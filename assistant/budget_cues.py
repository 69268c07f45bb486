"""What a question points at: which images of the conversation it refers to, and which region of an image.

Used by the image-token budget (`assistant/budget.py`): a question that refers to an older image
("the first picture", "that image", "the sign again", a word read in it) re-admits it; a reading
question, or one that names a detected object, gets a crop of the region that answers it, found from
the OCR words and detector boxes (the tools' evidence), with a margin.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from tools.evidence import Box, clip_box
from tools.images import ImageRef

if TYPE_CHECKING:
    from assistant.budget import BudgetConfig


def _words(text: str) -> frozenset[str]:
    return frozenset(text.split())


# Words that make a question a reading question (crop to the text), and words that never name an image.
READING_WORDS = _words(
    "read say says said written write text word words sign label price prices cost costs total "
    "number name title heading spell letters menu receipt caption date plate amount much "
)
STOPWORDS = _words(
    "the a an and or of on in at to is are was were what which who how does did do it its this that "
    "these those there again about with for from me you can could please tell show look see back "
    "first second third last previous earlier other same image images picture pictures photo photos "
    "pic one some any all your my be say says read here now then also "
)
ORDINALS = {"first": 0, "1st": 0, "second": 1, "2nd": 1, "third": 2, "3rd": 2}
ORDINALS |= {"fourth": 3, "4th": 3, "fifth": 4, "5th": 4, "last": -1}
_NOUN = r"(?:image|picture|photo|pic|one|screenshot|scan|shot)"


def content_words(text: str) -> set[str]:
    words = {w for w in re.findall(r"[a-z0-9]+", text.lower()) if len(w) >= 3 and w not in STOPWORDS}
    return words | {w[:-1] for w in words if w.endswith("s") and len(w) > 3}


def name_words(source: str) -> set[str]:
    stem = re.split(r"[\\/]", source)[-1].rsplit(".", 1)[0]
    return {w for w in content_words(stem.replace("_", " ").replace("-", " ")) if not w.isdigit()}


def references(question: str, q_words: set[str], slots: list, new_ids: list[str]) -> list[str]:
    """Images of the conversation the question points at, by ordinal, demonstrative or what they show."""
    q = question.lower()
    older = [s for s in slots if s.ref.id not in new_ids]
    found: list[str] = []
    for m in re.finditer(
        rf"\b(first|second|third|fourth|fifth|1st|2nd|3rd|4th|5th|last)\s+(?:\w+\s+)?{_NOUN}", q
    ):
        idx = ORDINALS[m.group(1)]
        if -len(slots) <= idx < len(slots):
            found.append(slots[idx].ref.id)
    for m in re.finditer(rf"\b{_NOUN}\s*#?\s*(\d+)\b", q):
        idx = int(m.group(1)) - 1
        if 0 <= idx < len(slots):
            found.append(slots[idx].ref.id)
    if older and re.search(rf"\b(that|previous|earlier|other|same|original)\s+(?:\w+\s+)?{_NOUN}", q):
        found.append(older[-1].ref.id)
    if not new_ids and older and re.search(rf"\b(this|the)\s+{_NOUN}\b", q):
        found.append(older[-1].ref.id)
    # "the sign again": the image whose earlier questions, labels or file name share the question's words.
    scored = [(len(q_words & s.words), -s.index, s.ref.id) for s in older if q_words & s.words]
    if scored:
        best = max(scored)[0]
        found += [i for n, _, i in sorted(scored, reverse=True) if n == best]
    return list(dict.fromkeys(found))


def find_region(question, q_words, ref: ImageRef, evidence, cfg: BudgetConfig, force: bool = False):
    """(box, evidence ids, why) of the part of the image the question is about, or None for all of it."""
    ev = [e for e in evidence if e.image == ref.id and e.box is not None]
    if not ev:
        return None
    dets = [e for e in ev if e.kind == "detection" and content_words(e.text) & q_words]
    texts = [e for e in ev if e.kind in ("word", "line") and e.tool in ("ocr", "zoom")]
    lines = [e for e in texts if e.kind == "line"] or texts
    matched = [e for e in lines if content_words(e.text) & q_words]
    reading = bool(READING_WORDS & set(re.findall(r"[a-z]+", question.lower())))
    if dets:
        chosen, why = dets + matched, f"the question names {', '.join(sorted({d.text for d in dets}))}"
    elif matched:
        chosen, why = matched, "the question's words were read there"
    elif (reading or force) and texts:
        chosen = main_text_cluster([e for e in lines if e.confidence >= 0.5] or lines)
        why = "a reading question: the region holding the image's main text"
    else:
        return None
    x0 = min(e.box[0] for e in chosen)
    y0 = min(e.box[1] for e in chosen)
    x1 = max(e.box[2] for e in chosen)
    y1 = max(e.box[3] for e in chosen)
    margin = cfg.crop_margin * ((x1 - x0) * (y1 - y0)) ** 0.5  # geometric mean: thin lines get a thin margin
    x0, y0, x1, y1 = x0 - margin, y0 - margin, x1 + margin, y1 + margin
    grow_x, grow_y = max(0.0, cfg.min_crop_side - (x1 - x0)) / 2, max(0.0, cfg.min_crop_side - (y1 - y0)) / 2
    w, h = ref.size
    box = clip_box((x0 - grow_x, y0 - grow_y, x1 + grow_x, y1 + grow_y), (w, h))
    share = (box[2] - box[0]) * (box[3] - box[1]) / float(w * h)
    if share > cfg.max_crop_share and not force:
        return None
    box = tuple(round(v, 1) for v in box)
    return box, [e.id for e in chosen], f"{why} ({share:.0%} of the image)"


def main_text_cluster(lines: list) -> list:
    """The lines that sit together (gaps under two line heights) with the most confident text by area.

    OCR on a busy photo also reads a stray "word" in a texture; taking every line would stretch the
    crop across the image, so only the cluster that holds most of the text is kept.
    """
    clusters: list[list] = []
    for e in sorted(lines, key=lambda e: (e.box[1], e.box[0])):
        for c in clusters:
            if any(_near(e.box, o.box) for o in c):
                c.append(e)
                break
        else:
            clusters.append([e])

    def weight(c):
        return sum(e.confidence * len(e.text.strip()) * (e.box[3] - e.box[1]) for e in c)

    return max(clusters, key=weight) if clusters else []


def _near(a: Box, b: Box) -> bool:
    gap = 2.0 * max(a[3] - a[1], b[3] - b[1])
    return a[0] - gap <= b[2] and b[0] - gap <= a[2] and a[1] - gap <= b[3] and b[1] - gap <= a[3]


def squared(box: Box, size: tuple[int, int]) -> Box:
    """`box` grown along its shorter side to a square (as far as the image allows), kept inside the image."""
    x0, y0, x1, y1 = box
    w, h = size
    side = min(max(x1 - x0, y1 - y0), w, h)
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
    nx0 = min(max(0.0, min(x0, cx - side / 2)), w - max(side, x1 - x0))
    ny0 = min(max(0.0, min(y0, cy - side / 2)), h - max(side, y1 - y0))
    return tuple(round(v, 1) for v in (nx0, ny0, nx0 + max(side, x1 - x0), ny0 + max(side, y1 - y0)))
