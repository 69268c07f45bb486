"""Where a colour question points: the whole image, a named part of it, the text, or an object.

"What colour is the stripe at the bottom of the image?" is about the bottom band, "what colour are the
letters?" about the ink of the text read there, "what colour is the horse?" about a detected horse's box,
"what colour is the background?" about the whole image. The whole image's dominant colour answers only
the last kind; a thing no tool can locate (an object no loaded detector knows) is abstained on.
"""

from __future__ import annotations

from dataclasses import dataclass

from assistant import objects, qualifiers
from tools.color import area_box
from tools.evidence import Evidence

WHOLE = {"image", "picture", "photo", "background", "scene", "everything", "main", "dominant", "overall",
         "it"}  # fmt: skip
TEXT = {"letter", "text", "writing", "word", "font", "sign", "lettering", "character", "digit", "number",
        "title", "caption", "headline", "banner", "label", "ink", "poster", "placard", "notice"}  # fmt: skip
# Things text is written on: their colour is the colour around the letters, not the letters' ink.
CARRIERS = {"sign", "banner", "label", "poster", "placard", "notice"}
# Parts of a thing: a box holds the whole thing, so its colour says nothing of a part ("the bird's feet",
# "the bicycle frame"). Clothes are not parts here: a person's box is mostly their clothes.
# (A bicycle's frame or a motorcycle's tank is most of what its box shows: measured as the whole.)
PARTS = {"foot", "feet", "leg", "hand", "hair", "eye", "head", "tail", "beak", "wing", "wheel", "tire", "tyre",
         "roof", "door", "window", "seat", "handle", "mane", "hoof", "ear", "nose", "face"}  # fmt: skip
# Clothes are measured on the person who wears them ("the shirt of the player", "the skier's jacket"), on
# the band of the person's box the garment covers (`qualifiers.garment_rows`).
CLOTHES = set(qualifiers.GARMENTS)
AREA_WORDS = {"top", "bottom", "left", "right", "center", "centre", "middle", "upper", "lower", "highest", "lowest",
              "uppermost"}  # fmt: skip


@dataclass(frozen=True)
class Subject:
    """What a colour question is about."""

    kind: str  # "image" | "area" | "text" | "object" | "part" (of an object: no tool measures it)
    thing: str = ""  # the object or text word ("horse", "letter"), or the unlocatable noun ("stripe")
    area: str = ""  # position words, canonical order ("bottom", "top left")
    garment: str = ""  # for a person: the garment asked about ("jacket"), measured on its band of the box


def subject(target: str) -> Subject:
    """The subject of a colour question from its target phrase (policy.Intent.target)."""
    words = target.lower().split()
    area = area_of(words)
    nouns = [w for w in words if w not in AREA_WORDS and w not in WHOLE and w not in {"at", "side", "part"}]
    thing = next((w for w in nouns if objects.is_object_word(w)), "")
    garment = next((w for w in nouns if w in CLOTHES or objects.singular(w) in CLOTHES), "")
    if garment and (not thing or thing == garment or objects.classes_for(thing) == {"person"}):
        wearer = next((w for w in nouns if objects.classes_for(w) == {"person"}), "person")
        return Subject("object", wearer, area, garment=garment)
    if thing:
        after = nouns[nouns.index(thing) + 1 :]
        part = next((w for w in after if objects.singular(w) in PARTS or w in PARTS), "")
        return Subject("part", f"{thing} {part}", area) if part else Subject("object", thing, area)
    text = next((w for w in nouns if objects.singular(w) in TEXT), "")
    if text:
        return Subject("text", objects.singular(text), area)
    if area:
        return Subject("area", nouns[0] if nouns else "", area)
    if nouns:  # a thing of no known kind ("square", "stripe"): a detector may know it, or no tool can
        return Subject("object", objects.singular(nouns[0]), area)
    return Subject("image")


def area_of(words: list[str]) -> str:
    """Canonical position words: "bottom", "top left", "center"."""
    v = next(
        (
            ("top" if w in ("top", "upper", "highest", "uppermost") else "bottom")
            for w in words
            if w in ("top", "upper", "highest", "uppermost", "bottom", "lower", "lowest")
        ),
        "",
    )
    h = next((w for w in words if w in ("left", "right")), "")
    c = "center" if any(w in ("center", "centre", "middle") for w in words) and not (v and h) else ""
    return " ".join(p for p in (v, h) if p) or c


def why_no_colour(target: str, evidence: list[Evidence]) -> str:
    """Why a colour question was not answered, in the words of what it asked about."""
    s = subject(target)
    if s.kind == "part":
        whole, part = s.thing.split(" ", 1)
        return f"the colour tool measures a whole {whole}, not its {part}."
    if not any(e.kind == "color" for e in evidence) and s.kind in ("image", "area"):
        return "no colour evidence."
    if s.kind == "object":
        if not objects.knows(evidence, s.thing):
            return f"its colour needs the {s.thing} located first, and " + objects.unknown_reason(
                s.thing, evidence
            )
        return f"the detector found no {s.thing}, so its colour could not be measured."
    if s.kind == "text":
        return "no text was read in the image, so the colour of its letters could not be measured."
    return "no colour evidence."


def pick(dets: list[Evidence], area: str, size, depth: str = "") -> Evidence:
    """The detection a question means: the one nearest the named position, else the one clearly drawn
    smallest ("in the background") or largest ("in the foreground"), else the most confident."""
    if depth and not area and len(dets) > 1:
        sel = qualifiers.select(dets, qualifiers.Qualifier(depth=depth), [])
        if sel.chosen:
            return sel.chosen[0]
    if not area or not size or not size[0]:
        return max(dets, key=lambda e: e.confidence)
    x0, y0, x1, y1 = area_box(area, size[0], size[1])
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
    return min(
        dets, key=lambda e: ((e.box[0] + e.box[2]) / 2 - cx) ** 2 + ((e.box[1] + e.box[3]) / 2 - cy) ** 2
    )
