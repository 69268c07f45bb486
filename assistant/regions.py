"""Where a colour question points: the whole image, a named part of it, the text, or an object.

"What colour is the stripe at the bottom of the image?" is about the bottom band, "what colour are the
letters?" about the ink of the text read there, "what colour is the horse?" about a detected horse's box,
"what colour is the background?" about the whole image. The whole image's dominant colour answers only
the last kind; a thing no tool can locate (an object no loaded detector knows) is abstained on.
"""

from __future__ import annotations

from dataclasses import dataclass

from assistant import objects
from tools.evidence import Evidence

WHOLE = {"image", "picture", "photo", "background", "scene", "everything", "main", "dominant", "overall",
         "it"}  # fmt: skip
TEXT = {"letter", "text", "writing", "word", "font", "sign", "lettering", "character", "digit", "number",
        "title", "caption", "headline", "banner", "label", "ink"}  # fmt: skip
AREA_WORDS = {"top", "bottom", "left", "right", "center", "centre", "middle", "upper", "lower"}


@dataclass(frozen=True)
class Subject:
    """What a colour question is about."""

    kind: str  # "image" | "area" | "text" | "object" | "unknown"
    thing: str = ""  # the object or text word ("horse", "letter"), or the unlocatable noun ("stripe")
    area: str = ""  # position words, canonical order ("bottom", "top left")


def subject(target: str) -> Subject:
    """The subject of a colour question from its target phrase (policy.Intent.target)."""
    words = target.lower().split()
    area = area_of(words)
    nouns = [w for w in words if w not in AREA_WORDS and w not in WHOLE and w not in {"at", "side", "part"}]
    thing = next((w for w in nouns if objects.is_object_word(w)), "")
    if thing:
        return Subject("object", thing, area)
    text = next((w for w in nouns if objects.singular(w) in TEXT), "")
    if text:
        return Subject("text", objects.singular(text), area)
    if area:
        return Subject("area", nouns[0] if nouns else "", area)
    if nouns:
        return Subject("unknown", " ".join(nouns))
    return Subject("image")


def area_of(words: list[str]) -> str:
    """Canonical position words: "bottom", "top left", "center"."""
    v = next(
        (
            ("top" if w in ("top", "upper") else "bottom")
            for w in words
            if w in ("top", "upper", "bottom", "lower")
        ),
        "",
    )
    h = next((w for w in words if w in ("left", "right")), "")
    c = "center" if any(w in ("center", "centre", "middle") for w in words) and not (v and h) else ""
    return " ".join(p for p in (v, h) if p) or c


def area_box(area: str, width: float, height: float) -> tuple[float, float, float, float]:
    """The pixels a position names: a quarter band at an edge, a corner, or the middle half."""
    x0, y0, x1, y1 = 0.0, 0.0, float(width), float(height)
    parts = area.split()
    if "top" in parts:
        y1 = height * 0.25
    if "bottom" in parts:
        y0 = height * 0.75
    if "left" in parts:
        x1 = width * 0.25 if len(parts) == 1 else width * 0.5
    if "right" in parts:
        x0 = width * 0.75 if len(parts) == 1 else width * 0.5
    if len(parts) == 2:  # a corner: the quarter of the image there
        y1 = height * 0.5 if "top" in parts else y1
        y0 = height * 0.5 if "bottom" in parts else y0
    if area == "center":
        x0, y0, x1, y1 = width * 0.25, height * 0.25, width * 0.75, height * 0.75
    return (x0, y0, x1, y1)


def why_no_colour(target: str, evidence: list[Evidence]) -> str:
    """Why a colour question was not answered, in the words of what it asked about."""
    s = subject(target)
    if not any(e.kind == "color" for e in evidence) and s.kind in ("image", "area"):
        return "no colour evidence."
    if s.kind == "object":
        if not objects.knows(evidence, s.thing):
            return (
                "the colour of the "
                + target
                + " needs it located first, and "
                + objects.unknown_reason(s.thing, evidence)
            )
        return f"the detector found no {s.thing}, so its colour could not be measured."
    if s.kind == "text":
        return "no text was read in the image, so the colour of its letters could not be measured."
    if s.kind == "unknown":
        return (
            f"no tool can locate the {s.thing} in the image; ask about a part of it (top, bottom, left, "
            "right, centre), its text, or the whole image."
        )
    return "no colour evidence."
