"""Why the tools could not answer a question, or check a model's answer to it, in the user's words:
the reason an abstention gives ("the ocr tool failed (...)", "no detector for 'arrow' is loaded") and
the reason a draft is shown unverified."""

from __future__ import annotations

from assistant import objects, policy, reading, regions
from tools.evidence import Evidence

# The tool whose evidence answers each kind of question (its failure is the reason given).
TOOL_FOR = {"read": "ocr", "total": "ocr", "price": "ocr", "field": "ocr", "count": "detect", "presence": "detect",
             "where": "detect", "color": "color", "metadata": "metadata", "identify": "classify"}  # fmt: skip


def why_not(intent: policy.Intent, evidence: list[Evidence], errors: dict, question: str = "") -> str:
    """Why the tools could not answer the question, in a sentence: a failed tool, nothing read of the
    kind asked, an object no loaded detector knows, no such metadata."""
    textual = intent.name == "where" and policy.text_thing(intent.target)  # found by OCR, not a detector
    tool = "ocr" if textual else TOOL_FOR.get(intent.name, "")
    failed = [str(v) for k, v in errors.items() if (k[0] if isinstance(k, tuple) else k) == tool]
    if failed:  # errors are keyed by (tool, image): each image's failure is reported
        return f"the {tool} tool failed ({'; '.join(dict.fromkeys(failed))})"
    has_text = any(e.tool in ("ocr", "zoom") and e.kind in ("word", "line") for e in evidence)
    if intent.name == "field":
        what = {"phone": "phone number", "url": "web address"}.get(
            intent.field, intent.field or "such detail"
        )
        return f"no {what} was read in the image" + ("." if has_text else " (no text was read at all).")
    if intent.name == "read" or (intent.name in policy.READING_INTENTS and not has_text):
        return reading.why_not(question, evidence)
    if intent.name == "total":
        return "no total was found in the text read from the image."
    if intent.name == "price":
        return f"no price for {intent.target or 'that item'!r} was read in the image."
    if intent.name == "where" and policy.arrow_thing(intent.target):
        if not any(e.tool == "arrows" for e in evidence) and "arrows" not in str(errors):
            return "the arrows tool did not run (it is turned off)."
        return "no arrow shape was found beside the text read in the image."
    if textual:
        return (
            f"no text of the {intent.target} was read in the image."
            if has_text
            else "no text was read in the image."
        )
    if intent.name in policy.OBJECT_INTENTS:
        if intent.target and not objects.knows(evidence, intent.target):
            return objects.unknown_reason(intent.target, evidence)
        seen = sorted({e.text for e in evidence if e.kind == "detection"})
        found = f" (it found: {', '.join(seen)})" if seen else ""
        return f"the detector found no {intent.target or 'object'}{found}."
    if intent.name == "color":
        return regions.why_no_colour(intent.target, evidence)
    if intent.name == "metadata":
        return "the image carries no such metadata."
    if intent.name == "identify":
        return "the image classifier gave no label of the kind asked about (or it is not installed: `bash scripts/setup.sh`)."
    return "the tools found nothing that answers it."


VISUAL_INTENTS = policy.OBJECT_INTENTS | {"color"}


def unchecked(intent: policy.Intent, evidence: list[Evidence]) -> str:
    """Why no loaded tool can check an answer to this visual question ("" when one can): the thing it
    asks about is an object no loaded detector knows, so it can be neither found nor measured."""
    if intent.name not in VISUAL_INTENTS or (intent.name == "where" and policy.text_thing(intent.target)):
        return ""  # a thing of text is found by OCR: its evidence answers, or the answer says why not
    if intent.name == "where" and policy.arrow_thing(intent.target):  # the arrows tool, not a detector
        return (
            ""
            if any(e.tool == "arrows" for e in evidence)
            else "the arrows tool did not run (it is turned off)"
        )
    thing = intent.target
    colours = [e for e in evidence if e.kind == "color"]
    if intent.name == "color" and colours and all(e.extra.get("grayscale") for e in colours):
        return "the photo is black-and-white, so no tool can tell colours in it"
    if intent.name == "color":
        sub = regions.subject(intent.target)
        read = any(e.tool in ("ocr", "zoom") and e.kind in ("word", "line") for e in evidence)
        if sub.kind == "part":
            return regions.why_no_colour(intent.target, evidence).rstrip(".")
        if sub.kind == "text" and not read:
            return "no text was read, so no tool could find the letters to measure"
        thing = sub.thing if sub.kind == "object" else ""
    if not thing or objects.knows(evidence, thing):
        return ""
    # the thing a phrase names ("two people walking along the shore" -> people -> person)
    thing = next((w for w in thing.split() if objects.is_object_word(w)), thing.split()[-1])
    named = objects.classes_for(thing)
    name = next(iter(named)) if len(named) == 1 else thing
    for r in objects.detectors(evidence):  # one knows it, but judged this image outside its domain
        if named & {c.lower() for c in r.extra.get("classes", [])}:
            return f"the detector that knows {name!r} (trained on {r.extra.get('domain', 'its own data')}) does not apply to this image"
    return f"no detector for {name!r} is loaded"
