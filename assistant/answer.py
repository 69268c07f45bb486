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
from assistant import checks, injection, policy, reading, reasons, sightings, verify
from assistant.extract import Extract, colours, extract, hedge, read_text
from assistant.trace import ClaimRecord
from tools.evidence import Evidence


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
# The same for what a detector is not sure of (a box below its sure score, an absence it cannot vouch for).
UNCERTAIN_DETECTION_MARK = "Uncertain detection"
UNSURE_MARKS = (UNCERTAIN_MARK, UNCERTAIN_DETECTION_MARK)


def abstain_text(reason: str) -> str:
    return prompts.load("abstain").render(reason=reason)


# ---- composition ---------------------------------------------------------------------------------

NEEDS_EVIDENCE = policy.READING_INTENTS | policy.OBJECT_INTENTS | {"color", "metadata", "identify"}


def suspicious_ids(evidence: list[Evidence]) -> set[str]:
    """OCR text that gives orders to a model (read as paragraphs: `assistant.injection`), the words inside."""
    return injection.injected_ids(evidence)


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
    # an image whose best reading is not sure enough says so under its label, like one with no reading
    parts = [(n, ex if ex is not None and ex.sure and (ex.text or ex.doubt) else None) for n, ex in parts]
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
    out.basis = found[0][1].basis
    unsure = [(n, ex) for n, ex in found if ex.doubt]
    if unsure:  # each image's uncertain reading, under its label, after every sure part
        out.doubt = "; ".join(f"image {n} {ex.doubt.removeprefix('it ')}" for n, ex in unsure)
        out.doubt_ids = [i for _, ex in unsure for i in ex.doubt_ids or []]
        out.doubt_why = "; ".join(dict.fromkeys(ex.doubt_why for _, ex in unsure))
    return out


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
        ex = sightings.count_objects(evidence, "")
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


def compose_answer(
    question: str, intent, evidence: list[Evidence], model_output: str, *args, **kw
) -> Composed:
    """The answer the user sees (`_compose`); to a reading question, text on the image that gives orders
    and is not the answer is reported after it, as what the image says, never followed."""
    out = _compose(question, intent, evidence, model_output, *args, **kw)
    return injection.report(out, intent, evidence, suspicious_ids(evidence), kw.get("image_order"))


def _compose(
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
    image input is real vision (`Engine.sees_images`): its draft is an answer to check, shown flagged
    where no tool reaches it; an engine that cannot see (the offline stand-in) gives no evidence, and
    only a sure extraction is shown."""
    from assistant.toolcalls import strip_tool_calls

    intent = intent if isinstance(intent, policy.Intent) else policy.Intent(str(intent or "other"))
    sizes = {k: tuple(v) for k, v in (sizes or {}).items()}
    order = image_order or list(dict.fromkeys(e.image for e in evidence))
    suspicious = suspicious_ids(evidence)
    model_text = strip_tool_calls(model_output or "").strip()
    claims = verify.verify_answer(model_text, evidence, sizes, suspicious, question)
    for c in claims:
        c.source = "model"
        reports = intent.name == "read" and injection.quotes_orders(c.text)  # "It says 'ignore ...'"
        if c.supported and c.evidence and set(c.evidence) <= suspicious and not reports:
            # an answer that repeats an injected instruction is not grounded, whatever it matches: never the
            # answer; only "what does it say" may quote it, as what the image says, the order included
            c.supported = False
            c.reason = "it only repeats text on the image that gives orders to a model; that text is data, not an answer"
    model_said = bool(model_text) and not verify.is_abstention(model_text)

    if not order and intent.name not in NEEDS_EVIDENCE:
        # No image in the conversation: nothing to check a general answer against; it is kept, unflagged.
        for c in claims:
            c.supported, c.reason = False, "no image evidence to check it against"
        out = Composed(model_text, False, [], claims, "model", "no image: the answer is the model's own")
        out.draft, out.status = model_text, "unverified"
        return out
    clean = [e for e in evidence if e.id not in suspicious]  # an order on the image is never the answer
    ex = (
        _per_image(intent, question, clean, sizes, order, image_numbers or [])
        if intent.name in NEEDS_EVIDENCE
        else None
    )
    if intent.name == "read" and suspicious and not (ex is not None and ex.sure and (ex.text or ex.doubt)):
        # the orders are all the image says: a reading question is answered with them, quoted
        ex = _per_image(intent, question, evidence, sizes, order, image_numbers or [])
    sure = ex if ex is not None and ex.sure and (ex.text or ex.doubt) else None
    grounded = checks.grounded(claims, intent, question, evidence, model_text, sure)
    if grounding == "flag" and claims:
        return _from_model(claims, model_text)
    if sees_images and order:
        if grounded and sure is not None and not any(c.kind in checks.CHECKED for c in claims):
            lead = "Yes. " if intent.name == "presence" and sure.key != "0" else ""
            return _from_evidence(sure, claims, model_text, False, lead)  # "Yes.": the count it agrees with
        if grounded:
            return _from_model(claims, model_text)
        if not model_said and model_text:
            # the model says it cannot tell: that stands, unless a typed value fills the role at its label
            if sure is not None and checks.fills_role(sure, intent):
                return _from_evidence(sure, claims, model_text, False)
            return _abstain(intent, question, evidence, tool_errors, order, ex, claims, model_text)
        contradiction = (
            checks.contradiction(claims, sure, intent, question, evidence, suspicious, model_text)
            if model_said
            else ""
        )
        if contradiction and sure is not None:
            lead = "Yes. " if intent.name == "presence" and sure.key != "0" else ""
            return _from_evidence(sure, claims, model_text, True, lead, corrected=contradiction)
        if contradiction:
            return _abstain(
                intent, question, evidence, tool_errors, order, ex, claims, model_text, contradiction
            )
        if (
            model_said
            and sure is not None
            and intent.name == "read"
            and not (sure.keys and len(sure.keys) > 1)
        ):
            disputed = _disputed(sure, claims, evidence)
            if disputed is not sure:  # the model reads that text otherwise, and one OCR engine alone read it
                return _from_evidence(disputed, claims, model_text, True)
        if model_said:
            if intent.name == "describe" and any(c.supported for c in claims):
                out = _from_model(claims, model_text)
                out.status = "unverified"
                return out
            why = reasons.unchecked(intent, evidence) or checks.unreached(
                claims, intent, question, evidence, ex, tool_errors
            )
            out = _unverified(claims, model_text, why)
            if sure is not None and sure.doubt and intent.name in policy.READING_INTENTS:
                out.answer += (
                    f" {UNCERTAIN_MARK} ({sure.doubt_why}): {sure.doubt}{_cite(sure.doubt_ids or [])}."
                )
            return out
    if sure is not None:
        if sees_images and intent.name == "read" and not (sure.keys and len(sure.keys) > 1):
            sure = _disputed(sure, claims, evidence)
        lead = ("Yes. " if sure.key != "0" else "No. ") if intent.name == "presence" else ""  # "0": none
        return _from_evidence(sure, claims, model_text, model_said, lead)
    if intent.name == "describe":
        summary = _summary(evidence)
        if summary is not None:
            return _from_evidence(summary, claims, model_text, model_said)
    return _abstain(intent, question, evidence, tool_errors, order, ex, claims, model_text)


def _abstain(
    intent, question, evidence, tool_errors, order, ex, claims, model_text, overruled: str = ""
) -> Composed:
    """An honest "I can't tell", with the tools' reason (and the best unsure reading, named as such)."""
    if not order:
        reason = "no image was given."
    elif intent.name not in NEEDS_EVIDENCE:
        reason = "nothing in the evidence answers the question."
    elif ex is not None and ex.why:
        reason = ex.why if ex.why.endswith(".") else ex.why + "."
    else:
        reason = reasons.why_not(intent, evidence, tool_errors or {}, question)
    unsupported = [c for c in claims if not c.supported]
    ab = ClaimRecord(abstain_text(reason), True, [], reason, "abstain", "evidence")
    out = Composed(abstain_text(reason), True, [], [ab, *unsupported], "abstain")
    out.draft, out.status = model_text, "abstained"
    if model_text and not verify.is_abstention(model_text):
        why = overruled or (
            unsupported[0].reason if unsupported else "it states nothing the evidence can check"
        )
        out.overruled_because = why
        out.note = f"The model's draft was not shown: {why}."
    return out


def _from_model(claims: list[ClaimRecord], model_text: str) -> Composed:
    cites = list(dict.fromkeys(i for c in claims if c.supported for i in c.evidence[:4]))
    out = Composed(_render(claims), False, cites, claims, "model")
    out.draft = model_text
    out.status = "verified" if all(c.supported for c in claims) else "unverified"
    return out


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


def _from_evidence(
    ex: Extract, claims, model_text: str, model_said: bool, lead: str = "", corrected: str = ""
) -> Composed:
    """The extract as the answer, with citations; a part resting on uncertain readings comes last,
    after `UNCERTAIN_MARK`, and an answer with nothing sure in it is marked unverified. `corrected`: the
    evidence contradicts the model's draft, and the answer says so ("The model said ...; ...")."""
    own, parts = [], []
    if ex.text:
        parts.append(f"{lead}{_clean(ex.text).rstrip('.')}{_cite(ex.ids)}.")
        own.append(ClaimRecord(lead + ex.text, True, ex.ids, "taken from the evidence", ex.kind, "evidence"))
    if ex.doubt:
        mark = UNCERTAIN_DETECTION_MARK if ex.kind in ("count", "position") else UNCERTAIN_MARK
        parts.append(f"{mark} ({ex.doubt_why}): {ex.doubt}{_cite(ex.doubt_ids or [])}.")
        reason = f"uncertain reading: {ex.doubt_why}"
        own.append(ClaimRecord(parts[-1], False, ex.doubt_ids or [], reason, ex.kind, "evidence"))
    if corrected:  # the model's words, named as its own, never as part of the answer
        parts.append(f"(The model answered {_short(_clean(model_text), 80)!r}; {corrected}.)")
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
        why = corrected or (
            bad[0].reason if bad else f"it does not state what the evidence says ({_short(said)!r})"
        )
        out.overruled_because = why
        out.note = f"The evidence overruled the model's draft: {why}."
    return out
