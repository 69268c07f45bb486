"""What a question points at: which images of the conversation it refers to, and which region of an image.

Used by the image-token budget (`assistant/budget.py`): a question that refers to an older image by
what it shows ("the sign again", a word read in it) re-admits it (ordinals and "that picture" are
`assistant/scope.py`'s, shared with the tool policy); a reading
question, or one that names a detected object, gets a crop of the region that answers it, found from
the OCR words and detector boxes (the tools' evidence), with a margin.
"""

from __future__ import annotations

import re

from assistant.text import content_words, word_set
from tools.evidence import Box, clip_box, near
from tools.images import ImageRef

# Words that make a question a reading question (crop to the text).
READING_WORDS = word_set(
    "read say says said written write text word words sign label price prices cost costs total "
    "number name title heading spell letters menu receipt caption date plate amount much "
)


def name_words(source: str) -> set[str]:
    stem = re.split(r"[\\/]", source)[-1].rsplit(".", 1)[0]
    return {w for w in content_words(stem.replace("_", " ").replace("-", " ")) if not w.isdigit()}


def references(q_words: set[str], slots: list, new_ids: list[str]) -> list[str]:
    """Older images the question points at by what they show ("the sign again"): those whose earlier
    questions, labels or file name share most of the question's words. Ordinals and demonstratives
    are `assistant.scope`'s."""
    older = [s for s in slots if s.ref.id not in new_ids]
    scored = [(len(q_words & s.words), -s.index, s.ref.id) for s in older if q_words & s.words]
    if not scored:
        return []
    best = max(scored)[0]
    return [i for n, _, i in sorted(scored, reverse=True) if n == best]


def find_region(question, q_words, ref: ImageRef, evidence, cfg, force: bool = False):
    """(box, evidence ids, why) of the part of the image the question is about, or None for all of it;
    `cfg` is the budget's config (crop_margin, min_crop_side, max_crop_share)."""
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
            if any(near(e.box, o.box, 2.0 * max(e.box[3] - e.box[1], o.box[3] - o.box[1])) for o in c):
                c.append(e)
                break
        else:
            clusters.append([e])

    def weight(c):
        return sum(e.confidence * len(e.text.strip()) * (e.box[3] - e.box[1]) for e in c)

    return max(clusters, key=weight) if clusters else []


def squared(box: Box, size: tuple[int, int]) -> Box:
    """`box` grown along its shorter side to a square (as far as the image allows), kept inside the image."""
    x0, y0, x1, y1 = box
    w, h = size
    side = min(max(x1 - x0, y1 - y0), w, h)
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
    nx0 = min(max(0.0, min(x0, cx - side / 2)), w - max(side, x1 - x0))
    ny0 = min(max(0.0, min(y0, cy - side / 2)), h - max(side, y1 - y0))
    return tuple(round(v, 1) for v in (nx0, ny0, nx0 + max(side, x1 - x0), ny0 + max(side, y1 - y0)))
