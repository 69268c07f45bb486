"""Grounded answer composition: what the user sees, built from the model's answer and the evidence.

The model's draft is verified claim by claim and kept, as written, when every claim of it is supported
by a check against the evidence (a fuzzy OCR match, a number on its line, a count, a colour): grounding
must never harm a right answer. Otherwise (with `grounding="strict"`), for questions the evidence can
answer by itself (what a sign says, a receipt's total, an item's price, a phone number, a count, a
colour, where something is, when a photo was taken) the extractive answer is shown, with citations;
several images are answered each under its own label. Where the evidence cannot answer, the answer is
a short abstention with its reason (`abstained`); an open "describe" question may get a summary of the
evidence, labelled as one. An engine that really sees the image (`Engine.sees_images`) may answer what no
loaded tool can check (an object no detector knows: its presence, count, place or colour): its draft is
shown after a plain "Not verified by the tools (why):" mark, status "unverified", never as fact, unless
evidence a tool does have contradicts it. Reading questions stay strict (OCR is the evidence for text),
except that where OCR read nothing that answers what a sign or label says, a seeing model's reading is
shown the same way, marked. An OCR reading too unsure to state as fact (`reading.doubt`) comes last,
after an "Uncertain reading (why):" mark. The answer stays short: the draft and why it was overruled are
returned apart (`draft`, `overruled_because`). Pure functions of (question, intent, evidence, model output): a
trace replays through here to the same answer.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import prompts
from assistant import objects, policy, reading, regions, verify
from assistant.context import is_instruction_like
from assistant.extract import Extract, colours, count_objects, extract, hedge, read_text
from assistant.trace import ClaimRecord
from tools.evidence import Evidence, center_inside


@dataclass
class Composed:
    answer: str
    abstained: bool
    citations: list[str]
    claims: list[ClaimRecord] = field(default_factory=list)
    composition: str = "model"  # "model" | "evidence" | "abstain" | "summary"
    note: str = ""  # one sentence for people: why the draft was not shown
    draft: str = ""  # the model's own words (tool calls stripped)
    overruled_because: str = ""  # why the evidence replaced the draft ("" when it was kept or silent)
    # "verified": every claim shown was checked against the evidence; "unverified": shown, marked as
    # checked by no tool (a seeing model's draft no loaded tool can check, or a turn with no image);
    # "abstained": the answer says the assistant cannot tell
    status: str = "verified"


# How an answer no tool could check begins (metrics and the UI recognise it).
UNVERIFIED_MARK = "Not verified by the tools"
# What follows this mark rests on OCR readings too unsure to state as fact (`reading.doubt`); it always
# comes after every part of the answer that is stated as fact.
UNCERTAIN_MARK = "Uncertain reading"


def abstain_text(reason: str) -> str:
    return prompts.load("abstain").render(reason=reason)


# ---- composition ---------------------------------------------------------------------------------

NEEDS_EVIDENCE = policy.READING_INTENTS | policy.OBJECT_INTENTS | {"color", "metadata"}
_TOOL_FOR = {"read": "ocr", "total": "ocr", "price": "ocr", "field": "ocr", "count": "detect", "presence": "detect",
             "where": "detect", "color": "color", "metadata": "metadata"}  # fmt: skip


def contains_fuzzy(haystack: str, needle: str, threshold: float = 0.8) -> bool:
    """Whether `needle` occurs in `haystack` up to case, spacing and small OCR-like errors."""
    h, n = verify.norm(haystack).replace(" ", ""), verify.norm(needle).replace(" ", "")
    if not n:
        return False
    if n in h:
        return True
    size = len(n)
    return any(verify.similarity(n, h[i : i + size]) >= threshold for i in range(max(1, len(h) - size + 1)))


def suspicious_ids(evidence: list[Evidence]) -> set[str]:
    """OCR lines that read like instructions to a model, and the words inside them."""
    lines = [
        e
        for e in evidence
        if e.tool in ("ocr", "zoom") and e.kind in ("line", "block") and is_instruction_like(e.text)
    ]
    out = {e.id for e in lines}
    for w in evidence:
        if (
            w.kind == "word"
            and w.box
            and any(w.image == li.image and li.box and center_inside(w.box, li.box) for li in lines)
        ):
            out.add(w.id)
    return out


def _per_image(intent, question, evidence, sizes, order: list[str], numbers: list[int]) -> Extract | None:
    """One extract per image in scope, each labelled with its image's number in the conversation; an
    image whose evidence cannot answer says so under its own label, never borrowing another's text."""
    number = dict(zip(order, numbers or range(1, len(order) + 1), strict=False))
    if len(order) <= 1:
        return extract(intent, question, evidence, sizes)
    parts = [
        (number.get(i, "?"), extract(intent, question, [e for e in evidence if e.image == i], sizes))
        for i in order
    ]
    found = [(n, ex) for n, ex in parts if ex is not None]
    if not found:
        return None
    text = " ".join(
        f"Image {n}: {(ex.text or 'no sure reading.') if ex else 'nothing in its evidence answers this.'}"
        for n, ex in parts
    )
    # a model's answer must state every image's answer to agree: `keys`
    ids = [i for _, ex in found for i in ex.ids]
    out = Extract(text, found[0][1].key, ids, found[0][1].kind, [ex.key for _, ex in found])
    unsure = [(n, ex) for n, ex in found if ex.doubt]
    if unsure:  # each image's uncertain reading, under its label, after every sure part
        out.doubt = "; ".join(f"image {n} {ex.doubt.removeprefix('it ')}" for n, ex in unsure)
        out.doubt_ids = [i for _, ex in unsure for i in ex.doubt_ids or []]
        out.doubt_why = "; ".join(dict.fromkeys(ex.doubt_why for _, ex in unsure))
    return out


def _why_not(intent: policy.Intent, evidence: list[Evidence], errors: dict, question: str = "") -> str:
    textual = intent.name == "where" and policy.text_thing(intent.target)  # found by OCR, not a detector
    tool = "ocr" if textual else _TOOL_FOR.get(intent.name, "")
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
    return "the tools found nothing that answers it."


def _cite(ids: list[str]) -> str:
    return f" [{', '.join(ids[:4])}]" if ids else ""


# Citation marks and their broken leftovers ("[ [ocr:5", "ocr:6]", "[]") in a model's sentence.
_CITE_JUNK = re.compile(r"\[+\s*(?:[a-z]+:\d+\s*,?\s*)*\]*|(?:[a-z]+:\d+\s*,?\s*)+\]+|\(\s*\)")


def _clean(text: str) -> str:
    """A claim's words without citation marks: citations are attached once, well-formed, by `_cite`."""
    return re.sub(r"\s+([.,;:!?])", r"\1", " ".join(_CITE_JUNK.sub(" ", text).split()))


def _render(claims: list[ClaimRecord]) -> str:
    out = []
    for c in claims:
        text = _clean(c.text).rstrip()
        if not text:
            continue
        text = text[:1].upper() + text[1:]  # a clause split off a sentence starts one of its own
        end = text[-1] if text[-1:] in ".!?" else "."
        body = text[:-1] if text[-1:] in ".!?" else text
        if c.supported:
            out.append(f"{body}{_cite(c.evidence)}{end}")
        else:
            out.append(f"{body} [not supported by the evidence]{end}")
    return " ".join(dict.fromkeys(out))  # a small model repeats itself; the user reads each claim once


def _short(text: str, n: int = 120) -> str:
    text = " ".join(text.split())
    return text if len(text) <= n else text[: n - 1] + "…"


def _summary(evidence: list[Evidence]) -> Extract | None:
    """What the tools found, labelled as a summary of the evidence (for open questions only)."""
    parts, ids = [], []
    dets = [e for e in evidence if e.kind == "detection"]
    if dets:
        ex = count_objects(dets, "")
        parts.append(f"objects: {ex.text[ex.text.index(':') + 2 :].rstrip('.')}")
        ids += ex.ids
    text = read_text(evidence)
    if text:
        parts.append(f'text: "{text.key}"')
        ids += text.ids
    col = colours(evidence, "")
    if col:
        parts.append(f"colours: {col.text.split(' are ', 1)[-1].rstrip('.')}")
        ids += col.ids
    if not parts:
        return None
    return Extract("Summary of the evidence, not an answer: " + "; ".join(parts) + ".", "", ids, "summary")


# Claims that a check against the evidence supported (not merely a word shared with what they cite).
_CHECKED = {"quote", "number", "count", "colour", "position", "presence", "absence", "metadata"}


def _whole_words(claim: str, evidence: list[Evidence]) -> bool:
    """Every word a claim quotes is a word the OCR read (up to OCR errors): a quote cut short mid-word
    ("FRESH B") matches its words' window fuzzily, yet it is not what the image says."""
    quotes = [next(g for g in m.groups() if g) for m in verify._QUOTE.finditer(claim)]
    if not quotes and (m := verify._SAYS.search(claim)):
        quotes = [m.group(1)]
    read = {
        w
        for e in evidence
        if e.tool in ("ocr", "zoom") and e.kind in ("word", "line")
        for w in verify.norm(e.text).split()
    }
    for q in quotes:
        for t in verify.norm(q).split():
            if t not in read and (len(t) < 4 or not any(verify.similarity(t, w) >= 0.8 for w in read)):
                return False
    return True


def compose_answer(
    question: str,
    intent,
    evidence: list[Evidence],
    model_output: str,
    tool_errors: dict | None = None,
    sizes: dict | None = None,
    grounding: str = "strict",
    image_order: list[str] | None = None,
    image_numbers: list[int] | None = None,
    sees_images: bool = False,
) -> Composed:
    """The answer the user sees; see the module docstring for the rules. `sees_images`: the engine's
    image input is real vision (`Engine.sees_images`), so its draft about what no tool can check is
    worth showing, marked unverified."""
    from assistant.toolcalls import strip_tool_calls

    intent = intent if isinstance(intent, policy.Intent) else policy.Intent(str(intent or "other"))
    sizes = {k: tuple(v) for k, v in (sizes or {}).items()}
    order = image_order or list(dict.fromkeys(e.image for e in evidence))
    suspicious = suspicious_ids(evidence)
    model_text = strip_tool_calls(model_output or "").strip()
    claims = verify.verify_answer(model_text, evidence, sizes, suspicious)
    if intent.name != "read":
        # An answer that repeats an injected instruction is not grounded, whatever it matches: never the
        # answer to a total, price or field question; only "what does it say" may quote it, as data.
        for c in claims:
            if c.supported and c.evidence and set(c.evidence) <= suspicious:
                c.supported = False
                c.reason = "it only repeats text on the image that reads like an instruction; that text is data, not an answer"
    for c in claims:
        c.source = "model"
    unsupported = [c for c in claims if not c.supported]
    model_said = bool(model_text) and not verify.is_abstention(model_text)
    # A draft whose every claim the evidence supports is kept: grounding must never harm a right answer.
    grounded = bool(claims) and not unsupported and any(c.kind in _CHECKED for c in claims)
    grounded = grounded and all(_whole_words(c.text, evidence) for c in claims if c.kind == "quote")
    if intent.name in ("total", "price"):  # an amount answers these: quoted words alone do not
        grounded = grounded and any(c.kind == "number" and c.supported for c in claims)
    if grounded and intent.name in ("read", "field") and (kind := reading.wanted_type(question)):
        # a question that asks for an e-mail address, a date or a phone number is answered by one: a
        # quote of other text the image holds does not answer it
        grounded = reading.holds_type(kind, _clean(model_text))
    if grounded and intent.name in policy.READING_INTENTS:
        # text that only uncertain readings support is not stated as fact, in the model's words either
        by_id = {e.id: e for e in evidence}
        read = [[by_id[i] for i in c.evidence if i in by_id] for c in claims if c.kind in ("quote", "number")]
        grounded = not any(r and all(reading.doubt(e) for e in r) for r in read)

    if not order and intent.name not in NEEDS_EVIDENCE:
        # No image in the conversation: nothing to check a general answer against; it is kept, unflagged.
        for c in claims:
            c.supported, c.reason = False, "no image evidence to check it against"
        out = Composed(model_text, False, [], claims, "model", "no image: the answer is the model's own")
        out.draft, out.status = model_text, "unverified"
        return out
    ex = (
        _per_image(intent, question, evidence, sizes, order, image_numbers or [])
        if intent.name in NEEDS_EVIDENCE
        else None
    )
    if ex is None and intent.name in ("total", "price", "field"):
        # The evidence holds no such total, item or field: a number or quote found elsewhere in the text
        # ("The answer is 1.00" for an item the receipt does not list) does not answer the question.
        grounded = False
    keys = ex.keys if ex is not None else None
    if keys and len(keys) > 1:  # several images: the draft must state each image's own answer
        grounded = grounded and all(contains_fuzzy(model_text, k) for k in keys)
    if grounded or (grounding == "flag" and claims):
        return _from_model(claims, model_text)
    # A model that sees the image may answer what no loaded tool can check: shown, marked as unverified,
    # unless evidence a tool does have speaks against it. A stand-in that cannot see is not shown.
    contradicted = [c for c in unsupported if _contradicts(c, evidence, suspicious)]
    if sees_images and model_said and order and not contradicted:
        why = _unchecked(intent, evidence)
        if why:
            return _unverified(claims, model_text, why)
        if intent.name == "describe" and any(c.supported for c in claims):
            out = _from_model(claims, model_text)
            out.status = "unverified"
            return out
    if sees_images and model_said and ex is None and _unread(intent, question, claims, suspicious):
        # OCR misses scene text a seeing model may read (a platform sign, a logo): its reading is shown,
        # marked as not verified, rather than nothing. Only for what a sign or label says: a value the
        # question types (a price, a date) or a name only a label could carry still needs the evidence.
        return _unverified(claims, model_text, "OCR read no text that answers it")
    if ex is None and intent.name == "describe":
        ex = _summary(evidence)
        if ex is not None:
            return _from_evidence(ex, claims, model_text, model_said)
    if ex is None:
        reason = _why_not(intent, evidence, tool_errors or {}, question) if order else "no image was given."
        if intent.name not in NEEDS_EVIDENCE and order:
            reason = "nothing in the evidence answers the question."
        ab = ClaimRecord(abstain_text(reason), True, [], reason, "abstain", "evidence")
        out = Composed(abstain_text(reason), True, [], [ab, *unsupported], "abstain")
        out.draft, out.status = model_text, "abstained"
        if model_said:
            why = unsupported[0].reason if unsupported else "it states nothing the evidence can check"
            out.overruled_because = why
            out.note = f"The model's draft was not shown: {why}."
        return out
    if sees_images and model_said and intent.name == "read" and not (ex.keys and len(ex.keys) > 1):
        ex = _disputed(ex, claims, evidence)
    lead = "Yes. " if intent.name == "presence" and ex.key != "0" else ""  # "0": an absence
    return _from_evidence(ex, claims, model_text, model_said, lead)


def _from_model(claims: list[ClaimRecord], model_text: str) -> Composed:
    cites = list(dict.fromkeys(i for c in claims if c.supported for i in c.evidence[:4]))
    out = Composed(_render(claims), False, cites, claims, "model")
    out.draft = model_text
    out.status = "verified" if all(c.supported for c in claims) else "unverified"
    return out


VISUAL_INTENTS = policy.OBJECT_INTENTS | {"color"}


def _unchecked(intent: policy.Intent, evidence: list[Evidence]) -> str:
    """Why no loaded tool can check an answer to this visual question ("" when one can): the thing it
    asks about is an object no loaded detector knows, so it can be neither found nor measured."""
    if intent.name not in VISUAL_INTENTS or (intent.name == "where" and policy.text_thing(intent.target)):
        return ""  # a thing of text is found by OCR: its evidence answers, or the answer says why not
    thing = intent.target
    if intent.name == "color":
        sub = regions.subject(intent.target)
        read = any(e.tool in ("ocr", "zoom") and e.kind in ("word", "line") for e in evidence)
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


# A model's quote this similar to an OCR reading (normalised text) is a reading of the same text.
SAME_TEXT = 0.6


def _disputed(ex: Extract, claims: list[ClaimRecord], evidence: list[Evidence]) -> Extract:
    """The extract with the readings a seeing model reads differently, and only one OCR engine read,
    moved to its uncertain part: two readers disagree about that text and nothing settles which is
    right ("Lmergeno Train Sop" by OCR, "Emergency Train Stop" by the model). A reading both engines made
    stands, as does one the model's quotes do not resemble (then the model read other text, or none)."""
    quotes = [  # what the model says the text is, where it is not what the extract says (words, not numbers)
        q
        for c in claims
        if c.kind == "quote"
        for m in verify._QUOTE.finditer(c.text)
        if (q := next(g for g in m.groups() if g))
        and verify.norm(q) != verify.norm(ex.key)
        and len(re.findall(r"[^\W\d_]", q)) >= 3
    ]
    if not quotes:
        return ex
    text = verify.norm(ex.key)
    q = max(quotes, key=lambda q: verify.similarity(verify.norm(q), text))
    if verify.similarity(verify.norm(q), text) < SAME_TEXT:
        return ex
    reason = f'one OCR engine alone read it, and the model reads "{q}"'

    def alone(group: list[Evidence]) -> str:
        return reason if group and all(len(reading.engines(e)) < 2 for e in group) else ""

    return hedge(ex, evidence, alone)


def _unread(intent: policy.Intent, question: str, claims: list[ClaimRecord], suspicious: set[str]) -> bool:
    """A question about what some text says, untyped, that OCR read nothing to answer; the draft
    repeats no instruction found on the image."""
    if intent.name != "read" or reading.wanted_type(question):
        return False
    if reading.asks_person_or_unnamed(question, reading.label_words(question)):
        return False
    return not any(c.evidence and set(c.evidence) <= suspicious for c in claims)


def _contradicts(c: ClaimRecord, evidence: list[Evidence], suspicious: set[str]) -> bool:
    """An unsupported claim that evidence a tool has speaks against, not merely one no tool can check:
    quoted text OCR did not read (OCR is the evidence for text), an injected instruction repeated, or a
    claim about a thing a loaded detector knows (its count, presence, absence or place was checked)."""
    if c.kind == "quote" or (c.evidence and set(c.evidence) <= suspicious):
        return True
    return any(
        objects.is_object_word(w) and objects.knows(evidence, w)
        for w in re.findall(r"[a-z]+", c.text.lower())
    )


def _unverified(claims: list[ClaimRecord], model_text: str, why: str) -> Composed:
    """A seeing model's answer no tool could check: its own words, after a plain mark saying so."""
    for c in claims:
        if not c.supported:
            c.reason = f"not checked by any tool: {why}"
    body = _clean(model_text).rstrip()
    body = body if body[-1:] in ".!?" else body + "."
    out = Composed(f"{UNVERIFIED_MARK} ({why}): {body}", False, [], claims, "model")
    out.draft, out.status = model_text, "unverified"
    out.note = f"Shown as the model's answer, not verified: {why}."
    return out


def _from_evidence(ex: Extract, claims, model_text: str, model_said: bool, lead: str = "") -> Composed:
    """The extract as the answer, with citations; a part resting on uncertain readings comes last,
    after `UNCERTAIN_MARK`, and an answer with nothing sure in it is marked unverified."""
    own, parts = [], []
    if ex.text:
        parts.append(f"{lead}{_clean(ex.text).rstrip('.')}{_cite(ex.ids)}.")
        own.append(ClaimRecord(lead + ex.text, True, ex.ids, "taken from the evidence", ex.kind, "evidence"))
    if ex.doubt:
        parts.append(f"{UNCERTAIN_MARK} ({ex.doubt_why}): {ex.doubt}{_cite(ex.doubt_ids or [])}.")
        reason = f"uncertain reading: {ex.doubt_why}"
        own.append(ClaimRecord(parts[-1], False, ex.doubt_ids or [], reason, ex.kind, "evidence"))
    bad = [c for c in claims if not c.supported]
    out = Composed(
        " ".join(parts),
        False,
        list(dict.fromkeys((ex.ids or ex.doubt_ids or [])[:4])),
        [*own, *bad],
        ex.kind if ex.kind == "summary" else "evidence",
    )
    out.draft = model_text
    out.status = "verified" if ex.text else "unverified"
    if model_said:
        said = ex.key or ex.doubt
        why = bad[0].reason if bad else f"it does not state what the evidence says ({_short(said)!r})"
        out.overruled_because = why
        out.note = f"The evidence overruled the model's draft: {why}."
    return out
