"""Answers about objects from the detector's boxes, said as surely as the detector was measured to be.

The candidates of an object question (a count, a presence, a place) are the detections of the classes the
question's words mean (`assistant.objects`). The detector's own record (`detector` evidence) carries its
score thresholds and what they were measured at (`tools/detector_claims.py`):

- boxes scoring `sure` or more are stated and counted; boxes between `maybe` and `sure` are mentioned as
  less certain ("I count 3 people, maybe 4"), never counted as fact;
- a presence rests on a sure box; only less certain ones make an uncertain answer;
- an absence is stated as fact only for what the detector is known to find: large objects of a class
  group whose measured recall is 0.9 or more even at the low end of its 95% confidence interval (a
  handful of labelled objects found every time does not show that), and only when the image classifier
  does not see that class either (a "mountain bike" label speaks against "no bicycle"); anything else is
  an uncertain answer ("the detector found no frisbee; it misses many such objects");
- where a thing is comes from its sure boxes, in the question's frame; several boxes on different sides
  for "the catcher" (one of several people) leave the place unsure.
"""

from __future__ import annotations

from assistant import objects
from assistant.candidates import Extract
from assistant.text import plural, singular
from tools.evidence import Evidence, position

# Recall (low end of its 95% interval) a detector needs on large objects of a group before "there is none".
ABSENCE_RECALL = 0.9
# A classifier label that nests under the class must have this probability to speak against an absence.
LABEL_SEES = 0.10
split = objects.split
_record, _thresholds = objects.record_for, objects.thresholds


def _group_figures(record: Evidence | None, cls: str) -> dict:
    measured = (record.extra.get("measured") or {}) if record is not None else {}
    groups = (record.extra.get("group_classes") or {}) if record is not None else {}
    group = next((g for g, names in groups.items() if cls in names), "other")
    return {"group": group, **((measured.get("groups") or {}).get(group) or {})}


def wilson_low(rate: float | None, n: int, z: float = 1.96) -> float:
    """The low end of the Wilson score interval of a measured rate over `n` trials (0 when unmeasured):
    17 of 17 found is a recall of 1.0 measured, but only 0.82 shown with 95% confidence."""
    if rate is None or n <= 0:
        return 0.0
    centre = rate + z * z / (2 * n)
    spread = z * ((rate * (1 - rate) + z * z / (4 * n)) / n) ** 0.5
    return (centre - spread) / (1 + z * z / n)


def _precision(record: Evidence | None, cls: str) -> str:
    fig = _group_figures(record, cls)
    p = (fig.get("sure") or {}).get("precision")
    return f"; such detections were right {p:.0%} of the time when measured" if p else ""


def count_objects(evidence: list[Evidence], target: str) -> Extract | None:
    """How many of a thing (or of everything detected); None when no detector that applies knows it."""
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
    sure, maybe = split(dets, evidence)
    one = singular(target)
    label = lambda n: one if n == 1 else plural(one)  # noqa: E731
    record = _record(evidence, dets[0].image)
    if not sure:
        if not maybe:
            return _absent(evidence, target)
        s, _ = _thresholds(record)
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
    return Extract(
        f"I count {len(sure)} {label(len(sure))}{more}.", str(len(sure)), [e.id for e in sure], "count",
        basis="detections", why=_precision(record, sure[0].text).removeprefix("; "),
    )  # fmt: skip


def _absent(evidence: list[Evidence], target: str) -> Extract:
    """No box of the class: a fact only where the detector was measured to find such objects (large ones
    of a well-measured group) and no classifier label says otherwise; else an uncertain answer."""
    records = [e for e in objects.detectors(evidence) if e.extra.get("applies", True)]
    record = records[0] if records else None
    ids = [record.id] if record else []
    cls = next(iter(sorted(objects.classes_for(target))), target)
    fig = _group_figures(record, cls)
    large = (fig.get("recall_by_size") or {}).get("large") or {}
    reliable = wilson_low(large.get("recall"), large.get("objects", 0)) >= ABSENCE_RECALL
    seen = [
        e for e in evidence
        if e.kind == "label" and e.confidence >= LABEL_SEES and e.extra.get("coco") in objects.classes_for(target)
    ]  # fmt: skip
    if reliable and not seen:
        recall = ((fig.get("recall_by_size") or {}).get("large") or {}).get("recall")
        found = f" (it finds {recall:.0%} of large {fig['group']})" if recall else ""
        return Extract(
            f"No large {target} was detected{found}; a small or hidden one could be missed.", "0", ids, "count",
            basis="absence",
        )  # fmt: skip
    out = Extract("", "", [], "count", basis="absence")
    if seen:
        why = f"the image classifier sees {seen[0].text!r} ({seen[0].confidence:.2f}), which is a {cls}"
        ids = ids + [seen[0].id]
    else:
        small = (fig.get("recall_by_size") or {}).get("medium") or {}
        rate = (
            f" (it found {small['recall']:.0%} of medium-sized ones when measured)"
            if small.get("recall") is not None
            else ""
        )
        why = f"the detector misses many such objects{rate}"
    out.doubt, out.doubt_ids, out.doubt_why = f"the detector found no {target}", ids, why
    return out


def locate(evidence: list[Evidence], target: str, sizes: dict) -> Extract | None:
    """Where a detected thing is: its most confident sure box, as top/bottom and left/right."""
    dets = objects.matching(target, [e for e in evidence if e.kind == "detection"]) if target else []
    sure, maybe = split(dets, evidence)
    pick = sure or maybe
    if not pick or not sizes:
        return None
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
