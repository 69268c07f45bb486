"""Colour answers: the colours measured where a colour question points, said as surely as they cover it.

`regions.subject` says where the question points (the whole image, an area, the text's ink, a sign's
background, an object or the garment band of a person, which of several things by `qualifiers`); the
colour tool's findings there are named largest first. A colour is stated as the thing's only when its
family (shades merged: "dark red" is red) covers at least half of what was measured, the photo has
colour at all, the main colour is not a black with a hue (a dark green sign at dusk), and, for an
object measured mostly gray, black or white, no hue covers a notable share of it (a blue bus with dark
windows measures mostly gray). A black that keeps the hue of the thing's lit colour is its shade (a bay
horse's shadowed flank measures black tinted orange, the hue of brown). Where the question may mean any
of several things of its class ("the woman's jacket", two people found), each is measured, and a colour
is stated only when all of them measure it.
"""

from __future__ import annotations

from assistant import objects, qualifiers, regions
from assistant.candidates import Extract
from assistant.text import plural
from tools import color
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
        sure, maybe = objects.split(dets, evidence)
        one = qualifiers.by_depth(sure, qualifier)
        if len(sure) > 1 and not s.area and one is not None:  # "the player in the background": the smallest
            found = [e for e in found if tuple(e.box) == tuple(one.box)]
        elif len(sure) > 1 and not s.area and found:  # "the catcher's jersey", one of several people
            return _several(found, sure, maybe, s, subject, gray)
    else:
        return None
    if not found:
        return None
    return _named(found, s, subject, verb, gray, why)[0]


def _named(
    found: list[Evidence], s: regions.Subject, subject: str, verb: str, gray: bool, why: str = ""
) -> tuple[Extract, str]:
    """The colours measured on one thing (or one part of the image), named largest first, stated as its
    colour when they allow it (module docstring); with the colour family they name."""
    found = sorted(found, key=lambda e: -_share(e))
    top = found[:3]
    names = ", ".join(f"{_colour_words(e.text)} ({_pct(e)})" for e in top)
    if gray and s.kind != "image":  # the shades measured are said, never as the thing's colour
        return Extract("", "", [], "colour", sure=False, why=f"{GRAYSCALE_WHY} (it measures {names})"), ""
    family, share, shade = _main_family(found)
    if shade and s.kind != "image":  # a brown horse's shadows measure black tinted orange: brown, said first
        hued = [e for e in found if _base(e.text) == family]
        names = ", ".join(f"{_colour_words(e.text)} {_pct(e)}" for e in hued[:2])
        names = f"{family} ({share:.0%}: {names}, and its shade, black tinted {shade[0].extra['tint']}, {_pct(shade[0])})"
        top = hued[:2] + shade[:1]
    if share < MAIN_COLOUR and not why and s.kind != "image":  # "what colours are in this image": all of them
        why = f"no colour covers most of it (the largest, {family}, covers {share:.0%})"
    hue = _hued(found) if s.kind == "object" and family in ("gray", "black", "white") else None
    if hue is not None and not why:  # a blue bus with dark windows measures mostly gray
        why = (
            f"it measures mostly {family} ({share:.0%}) but also {hue.text} "
            f"({float(hue.extra.get('share', 0)):.0%}); glass, tyres and shadows measure gray, so its own colour "
            f"may be the {hue.text}"
        )
    if top[0].extra.get("tint") and not shade and not why and s.kind != "image":  # a dark green sign at dusk
        why = f"it measures nearly black with a {top[0].extra['tint']} tint: too dark to tell its colour"
    key = family if shade and s.kind != "image" else top[0].text  # what the answer states first
    return Extract(
        f"{subject} {verb} {names}.", key, [e.id for e in top], "colour", sure=not why, why=why
    ), family


# "The woman's jacket" with two people found: each sure box of the class is measured, up to this many
# (policy.follow_ups); more, and the question's one is left unknown.
AGREE_BOXES = 4


def _several(
    found: list[Evidence],
    sure: list[Evidence],
    maybe: list[Evidence],
    s: regions.Subject,
    subject: str,
    gray: bool,
) -> Extract:
    """The colour of one of several things of a class ("the woman's jacket", two people found) or of all
    of them ("what colour are the taxis?"): stated only when every sure box was measured, each on its own
    is stated as one colour family, all the same one, and no less certain box of the class could be the
    one meant. The answer then holds whichever box the question means."""
    each = [[e for e in found if tuple(e.box) == tuple(d.box)] for d in sure]
    named = [_named(m, s, subject, "is mostly", gray) for m in each if m]
    families = {f for x, f in named if x.sure}
    many = f"the detector found {len(sure)} of them"
    unsure = [x.why for x, _ in named if not x.sure]
    why = (
        f"{many}; the colour measured is of the most likely ones only" if len(named) < len(sure)
        else f"{many}; of one, {unsure[0]}" if unsure
        else f"{many}, measured {' and '.join(sorted(families))}: the question may mean any" if len(families) > 1
        else f"{many}, all {next(iter(families))}, but less certain ones ({', '.join(d.id for d in maybe)}) were not measured"
        if maybe else ""
    )  # fmt: skip
    ids = [i for x, _ in named for i in x.ids]
    if why:
        first = named[0][0] if named else Extract("", "", [], "colour")
        return Extract(first.text, first.key, first.ids, "colour", sure=False, why=why)
    family = next(iter(families))
    text = f"{subject} is mostly {family}: each of the {len(sure)} {plural(sure[0].text)} the detector found measures so"
    parts = "; ".join(x.text.removeprefix(f"{subject} is mostly ").rstrip(".") for x, _ in named)
    return Extract(f"{text} ({parts}).", family, ids, "colour")


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


def _main_family(found: list[Evidence]) -> tuple[str, float, list[Evidence]]:
    """The colour family (shades merged: "dark gray" and "gray" are gray) covering most of what was
    measured, with its share, and the blacks counted in it as its shade. Several measurements (each
    line's ink) are averaged.

    A black that keeps a hue (`tint`: a brown horse's shadowed flank measures (17, 7, 3), black tinted
    orange) is the shade of the hued family of that same hue (brown and dark brown are orange in hue)
    when that family, lit, covers at least as much as the tinted black: the thing is that colour, its
    shadows darker. (Counted only where the lit family alone would not be stated: a blue jacket at 95%
    keeps its plain answer.) A black covering more than the hue it carries stays black (a black dog with tan
    patches), and a dark sign whose black has no lit family of its hue stays "too dark to tell"."""
    shares: dict[str, float] = {}
    n = max(len({e.box for e in found}), 1)
    members: dict[str, list[Evidence]] = {}
    for e in found:
        shares[_base(e.text)] = shares.get(_base(e.text), 0.0) + _share(e) / n
        members.setdefault(_base(e.text), []).append(e)
    if not shares:
        return "", 0.0, []
    hued = {f: v for f, v in shares.items() if f not in ("black", "gray", "white")}
    if hued:
        family = max(hued, key=lambda f: hued[f])
        hues = {color.hue(e.extra["rgb"]) for e in members[family] if e.extra.get("rgb")}
        shade = [e for e in members.get("black", []) if e.extra.get("tint") and hues == {e.extra["tint"]}]
        dark = sum(_share(e) for e in shade) / n
        needed = hued[family] < MAIN_COLOUR or max(shares, key=lambda f: shares[f]) == "black"
        if shade and needed and dark <= hued[family] and hued[family] + dark > max(shares.values()):
            return family, hued[family] + dark, shade
    family = max(shares, key=lambda f: shares[f])
    return family, shares[family], []


def _base(name: str) -> str:
    return name.replace("light ", "").replace("dark ", "")


def _share(e: Evidence) -> float:
    return float(e.extra.get("share", 0))


def _pct(e: Evidence) -> str:
    return f"{_share(e) * 100:.0f}%"


def _colour_words(name: str) -> str:
    """The tool's colour name as a person may say it: white things in a photo measure light gray."""
    return "white or light gray" if name == "light gray" else name


def _whole_image(e: Evidence, sizes: dict) -> bool:
    w, h = sizes.get(e.image, (0, 0))
    if not w:
        return e.box[0] <= 1 and e.box[1] <= 1
    return e.box[0] <= 1 and e.box[1] <= 1 and e.box[2] >= w - 1 and e.box[3] >= h - 1
