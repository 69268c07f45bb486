"""Answers about objects from the detector's boxes, said as surely as the detector was measured to be.

The candidates of an object question (a count, a presence, a place) are the detections of the classes the
question's words mean (`assistant.objects`). The detector's own record (`detector` evidence) carries its
score thresholds and what they were measured at (`tools/detector_claims.py`):

- boxes scoring `sure` or more are stated and counted; boxes between `maybe` and `sure` are mentioned as
  less certain ("I count 3 people, maybe 4"), never counted as fact;
- a presence rests on a sure box; only less certain ones make an uncertain answer;
- an absence is stated as fact only where `objects.absence` vouches for it: no box of the class even at
  the detector's faint `trace` score, a class group the detector was measured to find in 90% or more of
  the photos showing it (people, animals, vehicles), and no classifier label of that class; the answer
  carries the measured figure. Anything else is an uncertain answer ("the detector found no frisbee; it misses many
  such objects");
- where a thing is comes from its sure boxes, in the question's frame; several boxes on different sides
  for "the catcher" (one of several people) leave the place unsure.
"""

from __future__ import annotations

from assistant import objects, qualifiers
from assistant.candidates import Extract
from assistant.text import plural, singular
from tools.arrows import sign_arrows
from tools.evidence import Evidence, iou, position
from tools.ocr_layout import area, overlap_of_smaller

split = objects.split
_record, _thresholds = objects.record_for, objects.thresholds


def _group_figures(record: Evidence | None, cls: str) -> dict:
    measured = (record.extra.get("measured") or {}) if record is not None else {}
    groups = (record.extra.get("group_classes") or {}) if record is not None else {}
    group = next((g for g, names in groups.items() if cls in names), "other")
    return {"group": group, **((measured.get("groups") or {}).get(group) or {})}


def _precision(record: Evidence | None, cls: str) -> str:
    fig = _group_figures(record, cls)
    p = (fig.get("sure") or {}).get("precision")
    return f"; such detections were right {p:.0%} of the time when measured" if p else ""


def count_objects(
    evidence: list[Evidence],
    target: str,
    exact: bool = False,
    qualifier: qualifiers.Qualifier = qualifiers.Qualifier(),
    sizes: dict | None = None,
) -> Extract | None:
    """How many of a thing (or of everything detected); None when no detector that applies knows it.
    `exact` (a "how many" question): a count is a fact only when the detector saw no more of the class,
    even faintly, at a size it finds reliably (medium or large); a faint box of that size leaves the
    count uncertain ("I count 1 animal; a faint dog box (0.21) may be another"). Small ones are found
    one time in three: a count never claims to include them."""
    dets = [e for e in evidence if e.kind == "detection"]
    if not target:
        sure, _ = split(dets, evidence)
        if not sure:
            return None
        per: dict[str, list[str]] = {}
        for e in sure:
            per.setdefault(e.text, []).append(e.id)
        parts = ", ".join(f"{len(v)} {k if len(v) == 1 else plural(k)}" for k, v in per.items())
        return Extract(
            f"I count {len(sure)} objects: {parts}.", str(len(sure)), [e.id for e in sure], "count"
        )
    dets = objects.matching(target, dets)
    if not dets:
        return _absent(evidence, target) if objects.knows(evidence, target) else None
    if qualifier:  # "how many red cars", "is there a man in a dark shirt": the boxes it singles out
        return _count_qualified(evidence, dets, target, qualifier, sizes or {})
    sure, maybe = split(dets, evidence)
    one = singular(_noun(target))
    label = lambda n: one if n == 1 else plural(one)  # noqa: E731
    record = _record(evidence, dets[0].image)
    present = split(dets, evidence, presence=True)[0] if not exact and not sure else []
    if present:  # "is there a person?": a box at a score measured to mean one is in the photo
        fig = _group_figures(record, present[0].text).get("presence") or {}
        cls, n = present[0].text, len(present)
        right = round((fig.get("precision") or 0) * (fig.get("photos") or 0))
        whole = (
            ((record.extra.get("thresholds") or {}).get("presence_score") == "whole_score")
            if record
            else False
        )
        on = " on the whole image" if whole else ""
        score = max(objects.presence_score(record, d) for d in present)
        return Extract(
            f"The detector found {n} {label(n)}, scoring {score:.2f}{on}: below the score it counts by, but "
            f"in photos where a {cls} box scored {fig.get('threshold')} or more{on}, a {cls} was there "
            f"{right} times in {fig.get('photos')} measured.",
            str(n), [d.id for d in present], "count", basis="presence",
        )  # fmt: skip
    if not sure:
        if not maybe:
            return _absent(evidence, target)
        s, _ = _thresholds(record, maybe[0].text)
        why = f"the detector's boxes score {max(d.confidence for d in maybe):.2f}, below its sure threshold {s:.2f}"
        out = Extract("", "", [], "count", sure=True, basis="maybe")
        out.doubt, out.doubt_ids, out.doubt_why = (
            f"there may be {len(maybe)} {label(len(maybe))}",
            [d.id for d in maybe],
            why,
        )
        return out
    more = (
        f", maybe {len(sure) + len(maybe)} (less certain boxes: {', '.join(d.id for d in maybe)})"
        if maybe
        else ""
    )
    why, ids = _count_doubt(evidence, record, sure, target, label(2)) if exact else ("", [])
    if why:
        out = Extract("", "", [], "count", sure=True, basis="faint")
        out.doubt = f"I count {len(sure)} {label(len(sure))}{more}"
        out.doubt_ids = [e.id for e in sure] + ids
        out.doubt_why = why
        return out
    return Extract(
        f"I count {len(sure)} {label(len(sure))}{more}.", str(len(sure)), [e.id for e in sure], "count",
        basis="detections", why=_precision(record, sure[0].text).removeprefix("; "),
    )  # fmt: skip


# A box of another class lying over a counted one at this IoU is the detector's second guess at the same
# object ("cow" over a horse it also called "horse"), not one more.
SAME_OBJECT_IOU = 0.7


def _count_doubt(
    evidence: list[Evidence], record: Evidence | None, sure: list[Evidence], target: str, many: str
) -> tuple[str, list[str]]:
    """Why "I count N" may miss one, or ("", []): a count says there are no more, so it is a fact only
    where "there is none" could be one. Three things say there may be more:
    - a faint box of the class (below `maybe`) the size of a findable object (1% of the image or more);
    - a class group whose absence the detector's measurement does not vouch for (`objects.absence`: found
      in fewer than 90% of the photos showing it): such objects are often missed outright (a detector
      with no measurement here, the shapes model on its renders or a user's weights, is not held to it);
    - a box of another class of the same group, not lying over a counted one (the detector mixes up
      classes within a group: two dogs side by side, one called "dog", the other "cow")."""
    if record is None:
        return "", []
    want = objects.classes_for(target)
    small = float((record.extra.get("sizes") or {}).get("small_below", 0.01))
    faint = [(c, v) for c, v in objects.faint_boxes(record).items() if c.lower() in want and v[1] >= small]
    if faint:
        c, (score, _) = max(faint, key=lambda kv: kv[1][0])
        return f"a faint {c} box (score {score:.2f}) may be one more", [record.id]
    fig = _group_figures(record, sure[0].text)
    vouched = record.extra.get("absence")  # None: a detector not measured here (shapes on renders, a user's)
    if vouched is not None and fig["group"] not in vouched:
        photos = fig.get("photos") or {}
        rate = (
            f" (in photos that show one it finds one {photos['recall']:.0%} of the time)"
            if photos.get("recall") is not None
            else ""
        )
        return f"the detector misses many such objects{rate}: there may be more", [record.id]
    group = set((record.extra.get("group_classes") or {}).get(fig["group"], ())) - want
    shown = [e for e in evidence if e.kind == "detection" and e.image == sure[0].image and e.box is not None]
    others = [
        d
        for d in shown
        if d.text.lower() in group and all(iou(d.box, s.box) < SAME_OBJECT_IOU for s in sure if s.box)
    ]
    if others:
        d = max(others, key=lambda e: e.confidence)
        return f"a box the detector called {d.text} ({d.confidence:.2f}) may be one more of the {many}", [
            d.id
        ]
    return "", []


def _count_qualified(evidence: list[Evidence], dets: list[Evidence], target: str, q, sizes: dict) -> Extract:
    """A count of the things a qualifier singles out: the sure boxes measured its colour; "in the
    foreground", the boxes drawn largest, each covering a large share of the photo (which the detector
    finds nearly always). Where a box could not be told, where none measured the colour (one the detector
    missed may still be), or for the background (small things it finds one time in three), the answer is
    uncertain."""
    sure, maybe = split(dets, evidence)
    noun = singular(_noun(qualifiers.bare(target)))
    label = lambda n: noun if n == 1 else plural(noun)  # noqa: E731
    out = Extract("", "", [], "count", basis="qualified")
    held = []
    if q.depth == "front" and not q.colour and sure:
        near, large = qualifiers.front(sure, sizes, _large_share(evidence, sure[0].image))
        held = _held(near, sure)
        if large and not held:
            return Extract(
                f"I count {len(near)} {label(len(near))} in the foreground (the boxes drawn largest, each "
                f"covering a large share of the image).", str(len(near)), [e.id for e in near], "count",
                basis="qualified",
            )  # fmt: skip
    if q.depth or not q.colour:
        out.doubt = f"I count {len(sure)} {label(len(sure))} in all"
        out.doubt_ids = [e.id for e in sure]
        out.doubt_why = _held_why(held) or f"no detection says which of them are {q.words()}"
        return out
    if not sure:
        out.doubt, out.doubt_ids = f"there may be {len(maybe)} {label(len(maybe))}", [d.id for d in maybe]
        out.doubt_why = f"the detector's boxes score below its sure threshold; none was told {q.words()}"
        return out
    sel = qualifiers.select(sure, q, evidence)
    said = f"{q.words()} " if not q.garment else ""
    ids = [e.id for e in sel.chosen] + qualifiers.colour_ids(sel.chosen, evidence, q)
    counted = f"I count {len(sel.chosen)} {said}{label(len(sel.chosen))}"
    counted += f" {q.words()}" if q.garment else ""
    if sel.chosen and not sel.unsure and not maybe:
        fig = _precision(_record(evidence, dets[0].image), sel.chosen[0].text).removeprefix("; ")
        return Extract(f"{counted}.", str(len(sel.chosen)), ids, "count", basis="qualified", why=fig)
    out.doubt, out.doubt_ids = counted, ids or [e.id for e in sure + maybe]
    out.doubt_why = sel.why or (
        f"less certain {plural(noun)} ({', '.join(d.id for d in maybe)}) were not measured" if maybe
        else f"the detector found {len(sure)} {label(len(sure))}, none measured {q.colour}"
    )  # fmt: skip
    return out


# A box of the class lying this much (of its own area) inside a larger one: the larger box may span more
# than one thing (zidane.jpg: the SSD's whole-image pass drew one person box over both men; a tile found
# the right-hand man, half inside it).
HELD_SHARE = 0.4


def _held(near: list[Evidence], sure: list[Evidence]) -> list[tuple[Evidence, Evidence]]:
    """(box, smaller box of its class lying HELD_SHARE inside it) for the boxes in `near`."""
    return [
        (n, d)
        for n in near
        for d in sure
        if d is not n and area(d.box) < area(n.box) and overlap_of_smaller(n.box, d.box) >= HELD_SHARE
    ]


def _held_why(held: list[tuple[Evidence, Evidence]]) -> str:
    if not held:
        return ""
    n, d = held[0]
    return f"{d.id} lies much inside {n.id}: {n.id} may span more than one {n.text}"


def _large_share(evidence: list[Evidence], image: str) -> float:
    """The share of the image from which the detector record calls an object large (found nearly always)."""
    record = _record(evidence, image)
    return float((record.extra.get("sizes") or {}).get("large_from", 0.1)) if record is not None else 0.1


def _absent(evidence: list[Evidence], target: str) -> Extract:
    """No box of the class: "no" as fact where `objects.absence` vouches for it, with the measured figure;
    else an uncertain answer saying what keeps it so."""
    a = objects.absence(evidence, target)
    noun = _noun(target)
    if a.vouched:
        return Extract(
            f"The detector found no {noun}, not even a faint box; {a.why}.", "0", a.ids, "count",
            basis="absence",
        )  # fmt: skip
    out = Extract("", "", [], "count", basis="absence")
    out.doubt, out.doubt_ids, out.doubt_why = f"the detector found no {noun}", a.ids, a.why
    return out


# Pronouns a question names a person by: an answer names the detector's class instead ("no person").
_PRONOUNS = {"anyone", "anybody", "someone", "somebody", "everyone", "everybody", "nobody"}


def _noun(target: str) -> str:
    """The word an answer names a thing by: the question's own, but "person" for "anyone"."""
    return "person" if target.lower() in _PRONOUNS else target


def locate(
    evidence: list[Evidence],
    target: str,
    sizes: dict,
    qualifier: qualifiers.Qualifier = qualifiers.Qualifier(),
) -> Extract | None:
    """Where a detected thing is: its most confident sure box, as top/bottom and left/right; of the
    boxes the question singles out (`qualifier`: "the white truck", "the dog in the background")."""
    dets = objects.matching(target, [e for e in evidence if e.kind == "detection"]) if target else []
    sure, maybe = split(dets, evidence)
    pick = sure or maybe
    if not pick or not sizes:
        return None
    if qualifier.group and not qualifier:
        return _locate_group(sure, maybe, target, sizes, qualifier)
    if qualifier:
        return _locate_qualified(evidence, pick, bool(sure), target, sizes, qualifier)
    d = max(pick, key=lambda e: e.confidence)
    w, h = sizes.get(d.image, (0, 0))
    if not w:
        return None
    v, hz = position(d.box, (w, h))
    where = f"{v} {hz}".strip() or "center"
    text = f"The {d.text} is at the {where} of the image."
    places = {position(e.box, sizes.get(e.image, (w, h)))[1] for e in sure}
    if len(sure) > 1 and len(places) > 1:  # "the catcher", one of several people: which box is meant?
        out = Extract("", "", [], "position", basis="ambiguous")
        out.doubt = f"the most confident {d.text} is at the {where} of the image"
        out.doubt_ids = [d.id]
        out.doubt_why = f"the detector found {len(sure)} {plural(d.text)} on different sides; the question may mean another"
        return out
    if sure:
        return Extract(text, where, [d.id], "position", basis="detections")
    out = Extract("", "", [], "position", basis="maybe")
    out.doubt, out.doubt_ids = f"the {d.text} may be at the {where} of the image", [d.id]
    out.doubt_why = f"the detector's box scores {d.confidence:.2f}, below its sure threshold"
    return out


def _places(dets: list[Evidence], sizes: dict) -> dict[str, str] | None:
    """Each box's place in its image ("bottom left", "center"), by id; None when an image's size is unknown."""
    places = {}
    for d in dets:
        w, h = sizes.get(d.image, (0, 0))
        if not w:
            return None
        v, hz = position(d.box, (w, h))
        places[d.id] = f"{v} {hz}".strip() or "center"
    return places


def _locate_group(sure, maybe, target: str, sizes: dict, q) -> Extract | None:
    """Where several things placed by depth are ("are the two people in the foreground on the left?"):
    the sure boxes drawn largest (or smallest) up to the first clear gap in size (`qualifiers.depth_group`).
    Stated when they all lie on one side, their number is the one the question says (if it says one),
    no less certain box of the class is drawn as large (or as small) as they are, and none of them holds
    much of another box of its class (`_held`: one box over two people)."""
    words = [w for w in qualifiers.bare(target).split() if w not in qualifiers.NUMBER_WORDS]
    noun = plural(singular(_noun(" ".join(words))))
    where = {"front": "in the foreground", "back": "in the background"}[q.group]
    out = Extract("", "", [], "position", basis="qualified")
    group = qualifiers.depth_group(sure, q.group) if sure else qualifiers.depth_group(maybe, q.group)
    places = _places(group, sizes)
    if places is None:
        return None
    sides = {p.split()[-1] for p in places.values()}
    drawn = "largest" if q.group == "front" else "smallest"
    edge = min(area(d.box) for d in group) if q.group == "front" else max(area(d.box) for d in group)
    rival = [
        d for d in maybe
        if (area(d.box) * qualifiers.NEAR_GAP > edge if q.group == "front" else area(d.box) < edge * qualifiers.NEAR_GAP)
    ]  # fmt: skip
    one = len(group) == 1
    said = f"{len(group)} {singular(noun) if one else noun} {where} (the {'box' if one else 'boxes'} drawn {drawn})"
    are = "is" if one else "are"
    held = _held(group, sure)
    if sure and len(sides) == 1 and not rival and not held and q.number in (0, len(group)):
        side = next(iter(places.values())) if len(set(places.values())) == 1 else next(iter(sides))
        text = f"The {said} {are} at the {side} of the image."
        return Extract(text, side, list(places), "position", basis="qualified")
    out.doubt = f"the {said} {are} at the {', '.join(sorted(set(places.values())))} of the image"
    out.doubt_ids = list(places)
    out.doubt_why = (
        "the detector's boxes score below its sure threshold" if not sure
        else "they lie on different sides" if len(sides) > 1
        else f"less certain {noun} ({', '.join(d.id for d in rival)}) are drawn as {drawn}" if rival
        else _held_why(held) if held
        else f"the question says {q.number}, the detector drew {len(group)} {drawn}"
    )  # fmt: skip
    return out


def _locate_qualified(evidence, pick, sure: bool, target: str, sizes: dict, q) -> Extract | None:
    """Where the thing a qualifier singles out is: stated when the boxes it means (measured its colour,
    clearly the smallest or largest) all lie on one side and none was left undecided."""
    sel = qualifiers.select(pick, q, evidence)
    noun = singular(_noun(qualifiers.bare(target)))
    named = (
        f"the {q.words()} {noun}" if q.colour and not q.garment and not q.depth else f"the {noun} {q.words()}"
    )
    places = _places(sel.chosen, sizes)
    if places is None:
        return None
    sides = {p.split()[-1] for p in places.values()}
    colour_ids = qualifiers.colour_ids(sel.chosen, evidence, q)
    out = Extract("", "", [], "position", basis="qualified")
    if sel.chosen and not sel.unsure and len(sides) == 1 and sure:
        where = next(iter(places.values())) if len(places) == 1 else next(iter(sides))
        text = f"{named[0].upper()}{named[1:]} is at the {where} of the image."
        return Extract(text, where, list(places) + colour_ids, "position", basis="qualified")
    if sel.chosen:
        d = max(sel.chosen, key=lambda e: e.confidence)
        out.doubt = f"{named} may be at the {places[d.id]} of the image"
        out.doubt_ids = [d.id, *colour_ids[:1]]
        out.doubt_why = sel.why or (
            f"{len(sel.chosen)} boxes match, on different sides" if len(sides) > 1
            else "the detector's box scores below its sure threshold"
        )  # fmt: skip
        return out
    out.doubt = f"I cannot tell which {noun} is {q.words()}"
    out.doubt_ids = [d.id for d in sel.unsure][:3]
    out.doubt_why = sel.why or f"none of the {plural(noun)} found measured {q.colour}"
    return out


def arrow_way(evidence: list[Evidence]) -> Extract | None:
    """Which way "the arrow" points: the sign's arrows beside its text, when they all point one way."""
    found = sign_arrows(evidence)
    if not found:
        return None
    ways = sorted({a.text for a, _ in found})
    a, line = found[0]
    if len(ways) == 1:
        return Extract(
            f'The arrow points {ways[0]} (an arrow shape beside the text "{line.text}").', ways[0],
            [a.id, line.id], "position", basis="arrow",
        )  # fmt: skip
    out = Extract("", "", [], "position", basis="arrow")
    out.doubt = "the sign's arrows point " + " and ".join(ways)
    out.doubt_ids = [x.id for x, _ in found][:4]
    out.doubt_why = "there are several arrows: the question may mean any of them"
    return out


def locate_arrow(evidence: list[Evidence], sizes: dict) -> Extract | None:
    """Where the sign's arrow is (not which way it points): its box, when there is one."""
    found = sign_arrows(evidence)
    if len(found) != 1 or not sizes.get(found[0][0].image):
        return None
    a = found[0][0]
    v, hz = position(a.box, sizes[a.image])
    where = f"{v} {hz}".strip() or "center"
    return Extract(f"The arrow is at the {where} of the image.", where, [a.id], "position", basis="arrow")


# The image classifier's top label is the answer to "what kind of X is this" when it has this probability.
# Not measured on a labelled set here (no development question asks it): 0.5 means the classifier puts
# more weight on its first label than on all others together; below it the label is an uncertain answer.
LABEL_SURE = 0.5


def identify(evidence: list[Evidence], question: str) -> Extract | None:
    """What kind of thing the image shows, from the classifier's ImageNet labels: the most probable one
    (among those nesting under the class the question names, "what kind of dog"), with its probability."""
    labels = sorted((e for e in evidence if e.kind == "label"), key=lambda e: -e.confidence)
    asked = {
        c
        for w in question.lower().split()
        for c in objects.classes_for(w.strip("?.,"))
        if c in objects.COCO_CLASSES
    }
    if asked:
        labels = [e for e in labels if e.extra.get("coco") in asked] or labels
    if not labels:
        return None
    top = labels[0]
    text = (
        f"It looks like {_a(top.text)} (the image classifier's top label, probability {top.confidence:.2f})."
    )
    if top.confidence >= LABEL_SURE:
        return Extract(text, top.text, [top.id], "label", basis="classifier")
    out = Extract("", "", [], "label", basis="classifier")
    out.doubt, out.doubt_ids = f"it may be {_a(top.text)}", [e.id for e in labels[:3]]
    out.doubt_why = f"the classifier gives it only {top.confidence:.2f}; next: " + ", ".join(
        f"{e.text} ({e.confidence:.2f})" for e in labels[1:3]
    )
    return out


def _a(noun: str) -> str:
    return ("an " if noun[:1].lower() in "aeiou" else "a ") + noun
