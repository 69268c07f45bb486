"""Colour answers: the colours measured where a colour question points, said as surely as they cover it.

`regions.subject` says where the question points (the whole image, an area, the text's ink, a sign's
background, an object or the garment band of a person, which of several things by `qualifiers`); the
colour tool's findings there are named largest first. A colour is stated as the thing's only when its
family (shades merged: "dark red" is red) covers at least half of what was measured, the photo has
colour at all, the main colour is not a black with a hue (a dark green sign at dusk), and, for an
object measured mostly gray, black or white, no hue covers a notable share of it (a blue bus with dark
windows measures mostly gray).
"""

from __future__ import annotations

from assistant import objects, qualifiers, regions
from assistant.candidates import Extract
from assistant.text import plural
from tools.evidence import Evidence


def colours(
    evidence: list[Evidence],
    target: str,
    sizes: dict | None = None,
    qualifier: qualifiers.Qualifier = qualifiers.Qualifier(),
) -> Extract | None:
    """Colours where the question points (regions.subject): the image, a part of it, the text's ink, an
    object's box (the one `qualifier` singles out: "the player in the background"). None when nothing
    was measured there: the whole image never answers for a part."""
    found = [e for e in evidence if e.kind == "color"]
    whole = [e for e in found if e.box and _whole_image(e, sizes or {}) and not e.extra.get("part")]
    s, why = regions.subject(target), ""
    gray = bool(found) and all(e.extra.get("grayscale") for e in found)
    if s.kind == "image":
        found, subject, verb = (
            whole or [e for e in found if not e.extra.get("part")],
            "The main colours of the image",
            "are",
        )
    elif s.kind == "area":
        found, subject, verb = (
            [e for e in found if e.extra.get("area") == s.area],
            f"The {s.area} of the image",
            "is mostly",
        )
    elif s.kind == "text" and s.thing in regions.CARRIERS:  # a sign's colour: around its letters
        found, subject, verb = (
            [e for e in found if e.extra.get("part") == "background"],
            f"The {s.thing}",
            "is mostly",
        )
    elif s.kind == "text":
        found, subject, verb = (
            [e for e in found if e.extra.get("part") == "ink"],
            f"The {plural(s.thing)}",
            "are",
        )
    elif s.kind == "object":
        dets = objects.matching(s.thing, evidence)
        boxes = {tuple(e.box) for e in dets if e.box}
        found = [e for e in found if e.box and tuple(e.box) in boxes and e not in whole]
        if s.garment:  # "the skier's jacket": measured on the jacket's band of the person, where it was
            found = [e for e in found if e.extra.get("rows")] or found
        subject, verb = f"The {target}", "is mostly"
        sure, _ = objects.split(dets, evidence)
        one = qualifiers.select(sure, qualifier, []).chosen if qualifier.depth else []
        if len(sure) > 1 and not s.area and len(one) == 1:  # "the player in the background": the smallest
            found = [e for e in found if tuple(e.box) == tuple(one[0].box)]
        elif len(sure) > 1 and not s.area:  # "the catcher's jersey", one of several people: which one?
            why = (
                f"the detector found {len(sure)} of them; the colour measured is of the most likely one only"
            )
    else:
        return None
    if not found:
        return None
    found.sort(key=lambda e: -float(e.extra.get("share", 0)))
    top = found[:3]
    names = ", ".join(f"{_colour_words(e.text)} ({float(e.extra.get('share', 0)) * 100:.0f}%)" for e in top)
    if gray and s.kind != "image":  # the shades measured are said, never as the thing's colour
        return Extract("", "", [], "colour", sure=False, why=f"{GRAYSCALE_WHY} (it measures {names})")
    family, share = _main_family(found)
    if share < MAIN_COLOUR and not why and s.kind != "image":  # "what colours are in this image": all of them
        why = f"no colour covers most of it (the largest, {family}, covers {share:.0%})"
    hue = _hued(found) if s.kind == "object" and family in ("gray", "black", "white") else None
    if hue is not None and not why:  # a blue bus with dark windows measures mostly gray
        why = (
            f"it measures mostly {family} ({share:.0%}) but also {hue.text} "
            f"({float(hue.extra.get('share', 0)):.0%}); glass, tyres and shadows measure gray, so its own colour "
            f"may be the {hue.text}"
        )
    if top[0].extra.get("tint") and not why and s.kind != "image":  # a dark green sign at dusk
        why = f"it measures nearly black with a {top[0].extra['tint']} tint: too dark to tell its colour"
    return Extract(
        f"{subject} {verb} {names}.", top[0].text, [e.id for e in top], "colour", sure=not why, why=why
    )


# Why a black-and-white photo answers no question of a thing's colour.
GRAYSCALE_WHY = "the photo is black-and-white (its pixels have no colour), so no tool can tell the colour of anything in it"

# A colour answers "what colour is it" as fact only when it covers at least this share of what was measured.
MAIN_COLOUR = 0.5


# An object measured mostly gray, black or white is not said to be so when a hue covers this much of it.
HUED_SHARE = 0.10


def _hued(found: list[Evidence]) -> Evidence | None:
    """The largest hued colour (not black, gray or white) covering at least HUED_SHARE, if any."""
    plain = ("black", "gray", "white")
    hued = [
        e
        for e in found
        if not any(e.text.endswith(p) for p in plain) and float(e.extra.get("share", 0)) >= HUED_SHARE
    ]
    return max(hued, key=lambda e: float(e.extra.get("share", 0))) if hued else None


def _main_family(found: list[Evidence]) -> tuple[str, float]:
    """The colour family (shades merged: "dark gray" and "gray" are gray) covering most of what was
    measured, with its share. Several measurements (each line's ink) are averaged."""
    shares: dict[str, float] = {}
    boxes = {e.box for e in found}
    for e in found:
        base = e.text.replace("light ", "").replace("dark ", "")
        shares[base] = shares.get(base, 0.0) + float(e.extra.get("share", 0)) / max(len(boxes), 1)
    return max(shares.items(), key=lambda kv: kv[1]) if shares else ("", 0.0)


def _colour_words(name: str) -> str:
    """The tool's colour name as a person may say it: white things in a photo measure light gray."""
    return "white or light gray" if name == "light gray" else name


def _whole_image(e: Evidence, sizes: dict) -> bool:
    w, h = sizes.get(e.image, (0, 0))
    if not w:
        return e.box[0] <= 1 and e.box[1] <= 1
    return e.box[0] <= 1 and e.box[1] <= 1 and e.box[2] >= w - 1 and e.box[3] >= h - 1
