"""Checks: does a model's draft stand, fall, or stay unchecked against the evidence?

The fourth step of the answer pipeline (role -> candidates -> ranking -> check -> compose). The
verifier (`assistant.verify`) has checked each claim of the draft by what it adds to the question; this
module decides for the draft as a whole:

- `grounded`: every unit the draft adds is supported, at least one by a real check, its text is whole
  words the OCR read, and its type fits the role the question asks for (`assistant.roles`): a web
  address does not answer "what is the shop called", a price does not answer "what year";
- `contradiction`: the evidence speaks against the draft, not merely past it: an injected instruction
  repeated, a count, presence or place a detector that knows the class checked, a value at the
  question's label that differs (a total, a change, a field), a colour measured on the thing asked
  about, or text that a sure reading of the role says otherwise;
- `unreached`: why no tool reached a draft that is neither (OCR read no such text, no detector knows it);
- `fills_role`: a typed value read at its label that may stand even where the model abstained.
"""

from __future__ import annotations

import re

from assistant import objects, policy, reading, roles, textmatch, verify
from assistant.extract import Extract
from assistant.ink import colour_agrees, colours_said
from assistant.trace import ClaimRecord
from tools.evidence import Evidence

# How a value was found at the question's label (`assistant.ranking.SUPPORT`): such a value is what a draft
# must state, and it may answer where a model abstained.
AT_LABEL = {"counted", "label", "label-lead", "form"}
# Claims that a check against the evidence supported (not merely a word shared with what they cite).
CHECKED = {"quote", "number", "count", "colour", "position", "presence", "absence", "metadata", "label"}
# A model's text this similar to a reading (normalised) is a reading of the same text: a dispute about
# letters, not a contradiction.
SAME_TEXT = 0.6


def draft_text(claims: list[ClaimRecord], model_text: str) -> str:
    """What the draft says the answer is: its quotes, else its own words."""
    quotes = [next(g for g in m.groups() if g) for c in claims for m in verify._QUOTE.finditer(c.text)]
    return " ".join(quotes) if quotes else model_text


def grounded(
    claims, intent: policy.Intent, question: str, evidence, model_text: str, sure: Extract | None
) -> bool:
    """Every unit the draft adds is supported, and the draft answers the role the question asks for.
    A claim that fails a role check is marked so, with the reason."""
    if intent.name == "identify":  # the draft names one of the classifier's labels (or the class it nests in)
        said = verify.norm(model_text)
        named = [
            e
            for e in evidence
            if e.kind == "label" and (verify.norm(e.text) in said or (e.extra.get("coco") or "~") in said)
        ]
        for c in claims if named else []:
            c.supported, c.evidence = True, [named[0].id]
            c.reason, c.kind = (
                f"the image classifier's label {named[0].text!r} ({named[0].confidence:.2f})",
                "label",
            )
        return bool(named)
    said = said_count(model_text) if intent.name in ("count", "presence") else None
    if said is not None and sure is not None and sure.kind == "count":
        return _agrees(said, sure.key)  # "Yes." / "No." / "There are 2." against the detector's count
    if not claims or any(not c.supported for c in claims) or not any(c.kind in CHECKED for c in claims):
        return False
    if not all(_whole_words(c.text, evidence) for c in claims if c.kind == "quote"):
        return False
    value = sure is not None and sure.kind == "number" and sure.basis in AT_LABEL and sure.text
    if value and _states_value(model_text, sure.key):
        return True  # the draft states the value read at the question's label
    if intent.name in ("total", "price") and not any(c.kind == "number" and c.supported for c in claims):
        return False  # an amount answers these: quoted words alone do not
    if intent.name in policy.READING_INTENTS:
        role = roles.role_of(question, intent.ink)
        why = roles.conflict(role, _clean(draft_text(claims, model_text)))
        if why:
            claims[0].supported, claims[0].reason = False, f"it does not answer the question: {why}"
            return False
        # text that only uncertain readings support is not stated as fact, in the model's words either
        by_id = {e.id: e for e in evidence}
        read = [[by_id[i] for i in c.evidence if i in by_id] for c in claims if c.kind in ("quote", "number")]
        if any(r and all(reading.doubt(e) for e in r) for r in read):
            return False
        labelled = sure is not None and sure.kind == "number" and sure.basis in AT_LABEL and sure.text
        if labelled and not _states_value(model_text, sure.key):
            return False  # a value read at the question's label is what the draft must state (not "1.00" elsewhere)
    if intent.name == "color" and sure is not None and sure.text:
        said, top = colours_said(model_text), [name for name, _ in measured(sure, evidence)[:1]]
        if sure.kind == "colour":  # the colour the answer states (a bay horse's brown, its black the shade)
            top = [sure.key]
        if said and not any(colour_agrees(w, name) for w in said for name in top):
            return False  # a colour found somewhere in the image is not the colour of the thing asked about
    if sure is not None and sure.keys and len(sure.keys) > 1:  # several images: each image's own answer
        return all(_contains(model_text, k) for k in sure.keys)
    return True


def fills_role(sure: Extract, intent: policy.Intent) -> bool:
    """A typed value read at the label the question names (a total, a field, an invoice number): it may
    answer even where a model said it cannot tell."""
    at_label = sure.basis in AT_LABEL and sure.kind == "number"
    return bool(sure.text) and (at_label or intent.name in ("total", "field"))


def contradiction(
    claims, sure: Extract | None, intent, question: str, evidence, suspicious: set[str], model_text: str = ""
) -> str:
    """Why the evidence speaks against the draft ("" when it does not)."""
    for c in claims:
        if not c.supported and c.evidence and set(c.evidence) <= suspicious:
            return c.reason or "it repeats text on the image that reads like an instruction"
    for c in claims:
        if c.supported or c.kind not in ("count", "presence", "position"):
            continue
        words = re.findall(r"[a-z]+", c.text.lower()) + re.findall(r"[a-z]+", question.lower())
        if any(objects.is_object_word(w) and objects.knows(evidence, w) for w in words):
            return c.reason
    role = roles.role_of(question, intent.ink)
    if intent.name in policy.READING_INTENTS and (
        why := roles.conflict(role, _clean(draft_text(claims, model_text)))
    ):
        return f"the model's answer does not answer it: {why}"  # "BANANA" for a phone number
    if sure is None or not sure.text:
        return ""
    if sure.keys and len(sure.keys) > 1:  # several images: the draft must answer for each
        missing = [k for k in sure.keys if not _contains(model_text, k)]
        return f"it does not say what every image shows ({missing[0]!r} is read there)" if missing else ""
    if sure.kind == "number" and sure.basis in AT_LABEL | {"type"}:
        said = draft_text(claims, model_text)
        if not _states_value(said, sure.key) and (value := re.search(r"\d[\d,.]*\d|\d", said)):
            return f"it says {value.group(0)}, and the evidence reads {sure.key} there"
        return ""
    said = said_count(model_text) if intent.name in ("count", "presence") else None
    if sure.kind == "count" and said is not None and not _agrees(said, sure.key):
        # sure boxes are right about 9 times in 10 but find only some of the things there: a count below
        # them is contradicted, a count above them is not (the detector may have missed the rest)
        if isinstance(said, int) and sure.key.isdigit() and said > int(sure.key):
            return ""
        if sure.key == "0" and said != "no":  # a seeing model's "yes" against a vouched absence: the
            return ""  # detector misses some photos' things (measured), the model may not: not contradicted
        return "the detector found none" if sure.key == "0" else f"the detector found {sure.key}"
    if sure.kind == "colour":
        return (
            ""  # a measured colour does not contradict a seeing model: the box, the light, the names differ
        )
    if sure.kind == "position":
        said = [c for c in claims if c.kind == "position" and not c.supported]
        return said[0].reason if said else ""
    if intent.name in policy.READING_INTENTS and sure.basis not in ("meaning", "type-several", "guess"):
        text = verify.norm(draft_text(claims, "")).replace(" ", "")
        if not text or any(c.supported and c.kind == "quote" for c in claims):
            return ""
        if verify.similarity(text, verify.norm(sure.key).replace(" ", "")) < SAME_TEXT:
            # the draft's words are not on the image (a layout OCR scrambled still holds them: not against it)
            return (
                f"the text there reads {sure.key!r}" if not _words_read(claims, model_text, evidence) else ""
            )
        by_id = {e.id: e for e in evidence}
        lines = [by_id[i] for i in sure.ids if i in by_id]
        if lines and all(len(reading.engines(e)) >= 2 and not reading.doubt(e) for e in lines):
            return f"both OCR engines read it as {sure.key!r}"  # a reading confirmed twice stands
    return ""


def unreached(claims, intent, question: str, evidence, ex: Extract | None, errors: dict | None = None) -> str:
    """Why no tool could check a draft the evidence neither supports nor contradicts, in a few words."""
    failed = dict.fromkeys(
        f"the {k[0] if isinstance(k, tuple) else k} tool failed ({v})" for k, v in (errors or {}).items()
    )
    if failed:
        return "; ".join(failed)
    if intent.name in policy.READING_INTENTS or any(c.kind == "quote" for c in claims):
        if not any(e.tool in ("ocr", "zoom") and e.kind in ("word", "line") for e in evidence):
            return "no text was read in the image"
        if ex is None or not ex.sure or not ex.text:
            return "OCR read no text that answers it"
        return "OCR did not read the text it gives"
    if intent.name == "color" and ex is not None and ex.text and ex.kind == "colour":
        found = ", ".join(f"{n} ({sh:.0%})" for n, sh in measured(ex, evidence)[:3])
        return f"the colour tool measured {found} there{'; ' + ex.why if ex.why else ''}"
    bad = [c for c in claims if not c.supported]
    return bad[0].reason if bad else "no tool could check it"


def measured(ex: Extract, evidence: list[Evidence]) -> list[tuple[str, float]]:
    """(colour name, share) of the colour findings an extract cites, largest first."""
    by_id = {e.id: e for e in evidence}
    found = [by_id[i] for i in ex.ids if i in by_id and by_id[i].kind == "color"]
    return sorted(((e.text, float(e.extra.get("share", 0))) for e in found), key=lambda t: -t[1])


_SMALL = {"no": 0, "none": 0, "zero": 0, "one": 1, "a single": 1, "two": 2, "three": 3, "four": 4, "five": 5,
          "six": 6, "seven": 7, "eight": 8, "nine": 9, "ten": 10}  # fmt: skip


def said_count(text: str) -> int | str | None:
    """What a draft says of a count or a presence: "yes", "no", or a number; None when it says neither."""
    t = text.strip().lower()
    if re.match(r"(yes|yeah|yep)\b", t):
        return "yes"
    if re.match(r"no\b(?!\s+\w+\s+(?:is|are)\b)", t) or re.search(r"\bthere (?:is|are) no\b", t):
        return "no"
    m = re.search(r"\b(\d+|" + "|".join(_SMALL) + r")\b", t)
    return (int(m.group(1)) if m.group(1).isdigit() else _SMALL[m.group(1)]) if m else None


def _agrees(said: int | str, key: str) -> bool:
    n = int(key) if key.isdigit() else None
    if n is None:
        return False
    if said == "yes":
        return n > 0
    if said == "no":
        return n == 0
    return said == n


def _words_read(claims, model_text: str, evidence: list[Evidence]) -> bool:
    """At least half of the draft's words (three letters or more) were read somewhere on the image."""
    words = [w for w in verify.norm(draft_text(claims, model_text)).split() if len(w) >= 3]
    read = {
        w
        for e in evidence
        if e.tool in ("ocr", "zoom") and e.kind in ("word", "line")
        for w in verify.norm(e.text).split()
    }
    found = sum(any(w == r or (len(w) >= 4 and verify.similarity(w, r) >= 0.8) for r in read) for w in words)
    return bool(words) and 2 * found >= len(words)


def _states_value(text: str, value: str) -> bool:
    """The text states this value (numbers compared as numbers: "16.1" states "16.10")."""
    want = _number(value)
    if want is None:
        return verify.norm(value) in verify.norm(text)
    return any(_number(m) == want for m in re.findall(r"\d[\d,.]*\d|\d", text))


def _number(s: str) -> float | None:
    digits = re.sub(r"[^\d.,]", "", s)
    if not digits:
        return None
    try:
        return textmatch.parse_number(digits.replace(" ", ""))
    except ValueError:
        return None


def _contains(haystack: str, needle: str, threshold: float = 0.8) -> bool:
    """Whether `needle` occurs in `haystack` up to case, spacing and small OCR-like errors."""
    h, n = verify.norm(haystack).replace(" ", ""), verify.norm(needle).replace(" ", "")
    if not n:
        return False
    if n in h:
        return True
    size = len(n)
    return any(verify.similarity(n, h[i : i + size]) >= threshold for i in range(max(1, len(h) - size + 1)))


def _clean(text: str) -> str:
    return " ".join(re.sub(r"\[[^\]]*\]", " ", text).split())


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
