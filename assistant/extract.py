"""Extractive answers: the answer to a question taken straight from the evidence, with its ids.

The text a reading question means (chosen by `assistant.reading` from one full-recall reading per
image: typed values at their labels, a form's field under its header, a sign's own large text), a
receipt's total (a total line under any of its names, its amount on the line, on its row however far
right, or under it; currency marks and decimal commas), a shop's name at the top, an item's price, a
phone number / e-mail / web address / date, counts of detected objects, where an object is, the
colours of the image or of a region, and metadata. `answer.compose_answer` uses these when a model's
answer is unsupported or contradicts the evidence.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from assistant import ink, objects, policy, reading, regions, verify
from assistant.text import plural, singular
from tools.evidence import Evidence, position
from tools.ocr_layout import union


@dataclass
class Extract:
    """An answer taken straight from the evidence: the sentence, its key fact, the ids behind it."""

    text: str
    key: str  # the fact a model's answer must contain to agree ("41.30", "OPEN DAILY", "3")
    ids: list[str]
    kind: str = "quote"
    keys: list[str] | None = None  # over several images: each image's key, in order
    # What the answer would also say, but rests on uncertain readings (`reading.doubt`): shown after the
    # sure part, marked, never as fact. `text` is "" when nothing of the answer is sure.
    doubt: str = ""
    doubt_ids: list[str] | None = None
    doubt_why: str = ""


def read_text(evidence: list[Evidence], question: str = "") -> Extract | None:
    """The text a reading question means (see `assistant.reading`); with no question, the main text."""
    lines = reading.text_lines(evidence)
    if not lines:
        return None
    labels = reading.label_words(question)
    if question and reading.asks_person_or_unnamed(question, labels):
        hit = [e for e in lines if reading.has_label(e, labels)]
        if not hit:  # "the cashier's name", "this beach": only a label in the text could say
            return None
        return _quote(_with_value(max(hit, key=lambda e: reading.has_label(e, labels)), lines))
    # A direction ("to X") names no station; "To Kill a ..." may still be a book's title.
    if re.search(r"\bname\b", question, re.I):
        named = [e for e in lines if not reading.is_direction(e)]
        if not named and re.search(r"\b(station|stop|platform|terminal)\b", question, re.I):
            return None
        lines = named or lines
    kind = reading.wanted_type(question) if question else ""
    pool = reading.narrow(lines, question)
    if colour := ink.ink_colour(question):  # "the red text": the lines written in red
        pool = ink.by_ink(pool, evidence, colour)
    if kind == "code" and (m := re.search(r"\b([a-z]+)\s*(?:number|no\.?|#|code|id)\b", question, re.I)):
        labels = list(
            dict.fromkeys([m.group(1).lower(), *labels])
        )  # "the invoice number": "Invoice" labels it
    if kind:
        found = reading.find_typed(kind, lines, pool, labels)
        if found is None:
            return None
        value, line = found
        return Extract(f'It says "{value}".', value, [line.id], "number" if kind in _NUMERIC else "quote")
    if re.search(r"\bname\b", question, re.I) and _is_receipt(lines):
        return _quote(_heading(lines))  # a shop's name heads its receipt
    hit = sorted(
        (e for e in lines if reading.has_label(e, labels)), key=lambda e: -reading.has_label(e, labels)
    )
    if hit and pool is lines:
        # "the TO field": the value under its header, unless the label's own line holds a value already
        # ("GST ID 001661886464"); a row of headers ("TO FROM GATE") holds none
        valued = any(re.search(r"\d", t) for t in verify.norm(hit[0].text).split() if t not in labels)
        form = (
            reading.under_label(hit[0], labels, lines, evidence)
            if not valued and _names_a_field(question)
            else None
        )
        if form:  # "the TO field": the value under its header
            return Extract(f'It says "{form[0]}".', form[0], [form[1].id])
        return _quote(_with_value(hit[0], lines))
    if question and pool is not lines:
        return _quote(
            sorted(pool, key=lambda e: (e.image, e.box[1] if e.box else 0, e.box[0] if e.box else 0))[:6]
        )
    return _quote(reading.main_text(lines, {}))


_NUMERIC = {"money", "number", "percent", "quantity", "score"}


def _quote(lines: list[Evidence]) -> Extract | None:
    if not lines:
        return None
    text = " ".join(e.text for e in lines)
    return Extract(f'It says "{text}".', text, [e.id for e in lines])


def _names_a_field(question: str) -> bool:
    """A question that names a form's field: "the TO field", a label written in capitals."""
    return bool(re.search(r"\bfield\b", question, re.I) or re.search(r"\b(?!I\b)[A-Z]{2,}\b", question))


def _with_value(line: Evidence, lines: list[Evidence]) -> list[Evidence]:
    """A label line, and when it holds little but the label, the text beside or under it."""
    if len(verify.norm(line.text).split()) > 2:
        return [line]
    nxt = reading.beside(line, lines)[:1] or reading.below(line, lines, 1)
    return [line, *nxt]


def _is_receipt(lines: list[Evidence]) -> bool:
    money = sum(1 for e in lines if re.search(reading.PATTERNS["money"], e.text, re.I))
    return money >= 3 or any(_TOTAL.search(e.text) for e in lines)


def _heading(lines: list[Evidence]) -> list[Evidence]:
    """A page's name: its first line of words (or a much taller one just under it), with the line right
    under it when that is as tall ("THREE STOOGES" / "BISTRO & CAFE"), not an address or a number."""

    def h(e):
        return (e.box[3] - e.box[1]) if e.box else 0.0

    def wordy(e):
        chars = [c for c in e.text if not c.isspace()]
        return sum(c.isalpha() for c in chars) >= max(3, 0.6 * len(chars))

    words = sorted((e for e in lines if wordy(e)), key=lambda e: e.box[1] if e.box else 0)
    if not words:
        return []
    first = max(words[:3], key=h)
    first = first if h(first) >= 1.2 * h(words[0]) else words[0]
    out = [first]
    after = [e for e in words if e.box and first.box and e.box[1] > first.box[1]]
    if after and after[0].box[1] - first.box[3] <= 1.5 * h(first) and h(after[0]) >= 0.8 * h(first):
        out.append(after[0])
    return out


# Total lines under their many names; what follows "sub" or precedes a tax word is not the total.
_TOTAL = re.compile(
    r"\b(grand\s*total|total\s*(amount\s*)?(payable|due)|amount\s*(due|payable)|net\s*total|total|"
    r"balance(\s*due)?|amount|rounded|jumlah|summe|montant|tota1|t0tal)\b",
    re.I,
)
_NOT_TOTAL = re.compile(
    r"\b(sub\s*-?\s*total|total\s*(qty|quantity|items?|discount|savings?|saved|tax|gst|vat|disc)|"
    r"(tax|gst|vat)\s*total|rounding|change|cash|tendere?d?|points|paid\s*amount|amount\s*paid)\b",
    re.I,
)
_AMOUNT = re.compile(
    r"(?<![\d.,])(\d{1,3}(?:[,.' ]\d{3})+|\d+)[.,](\d{2})(?![\d])|(?<![\d.,])(\d+) (\d{2})\s*$|"
    r"(?:[$€£¥]|\b(?:rm|usd|eur|sgd|s\$))\s?(\d+)(?![\d.,])",
    re.I,
)


def _amount(text: str) -> str | None:
    """The last amount on a line: "TOTAL 76 44" -> "76.44", "RM 1,234,50" -> "1234.50", "$12" -> "12"."""
    found = None
    for m in _AMOUNT.finditer(text):
        if m.group(1):
            found = f"{re.sub(r'[^0-9]', '', m.group(1))}.{m.group(2)}"
        elif m.group(3):
            found = f"{m.group(3)}.{m.group(4)}"
        else:
            found = m.group(5)
    return found


def receipt_total(evidence: list[Evidence], question: str = "") -> Extract | None:
    """The total: the amount of a total line (on it, on its row however far right, or under it).
    Several total lines: the one whose words the question names ("net total", "incl. GST"), else the
    largest amount (a subtotal, a tax or a rounding adjustment is smaller than the total)."""
    lines = reading.text_lines(evidence)
    asked = set(verify.norm(question).split()) - {
        "total",
        "the",
        "what",
        "is",
        "on",
        "amount",
        "receipt",
        "bill",
    }
    scored = []
    for e in lines:
        m = _TOTAL.search(e.text)
        if not m or _NOT_TOTAL.search(e.text):
            continue
        amount, source = _amount(e.text[m.end() :]), e
        if amount is None:
            for other in reading.beside(e, lines) + reading.below(e, lines, 1):
                if not _TOTAL.search(other.text) and _amount(other.text):
                    amount, source = _amount(other.text), other
                    break
        if amount:
            words = verify.norm(e.text).split()
            named = sum(any(verify.similarity(a, w) >= 0.8 for w in words) for a in asked)
            tier = 1 if re.search(r"total|payable|due|grand", e.text, re.I) else 0  # over "amount", "balance"
            scored.append((named, tier, float(amount), e, source, amount))
    if not scored:
        return None
    *_, line, source, amount = max(scored, key=lambda t: t[:3])
    ids = list(dict.fromkeys([line.id, source.id]))
    return Extract(f"The total is {amount}.", amount, ids, "number")


def item_price(evidence: list[Evidence], item: str) -> Extract | None:
    """An item's price: the amount on the line that names the item (or on its row to the right)."""
    if not item:
        return None
    lines = reading.text_lines(evidence)
    words = [
        w for w in verify.norm(item).split() if w not in ("the", "a", "an", "to", "of", "for", "this", "that")
    ]
    if not words:
        return None
    head = singular(words[0])
    best, best_score = None, 0.0
    for e in lines:
        name = verify.norm(re.sub(r"[\d.,$€£¥]+", " ", e.text)).split()
        if not any(verify.similarity(head, singular(w)) >= 0.85 for w in name):
            continue
        score = sum(any(verify.similarity(w, n) >= 0.85 for n in name) for w in words) / len(words)
        if score > best_score:
            best, best_score = e, score
    if best is None:
        return None
    amount, source = _amount_after(best.text, words[-1]), best
    if amount is None:
        for other in reading.beside(best, lines):
            if _amount(other.text):
                amount, source = _amount(other.text), other
                break
    if amount is None:
        return None
    return Extract(f"The {item} costs {amount}.", amount, list(dict.fromkeys([best.id, source.id])), "number")


def _amount_after(text: str, word: str) -> str | None:
    """The first amount after the item's name on its line: a two-column receipt reads "Salad bowl 12.34
    Croissant 1.14" as one line, and the salad's price is not the last amount on it."""
    for m in re.finditer(r"\S+", text):
        if verify.similarity(verify.norm(m.group(0)), word) >= 0.85:
            found = _AMOUNT.search(text, m.end())
            if found:
                return _amount(found.group(0))
    return _amount(text)


def find_field(evidence: list[Evidence], name: str, question: str = "") -> Extract | None:
    """A phone number, e-mail, web address, date or time: at its label when the text has one."""
    kind = name if name in reading.PATTERNS else ""
    if not kind:
        return None
    lines = reading.text_lines(evidence)
    labels = reading.label_words(question) + list(_FIELD_LABELS.get(kind, ()))
    found = reading.find_typed(kind, lines, lines, labels)
    if found is None:
        return None
    value, line = found
    what = {"phone": "phone number", "url": "web address", "email": "e-mail address"}.get(name, name)
    return Extract(f'The {what} is "{value}".', value, [line.id])


_FIELD_LABELS = {
    "phone": ("tel", "phone", "telephone", "fax", "mobile"),
    "email": ("email", "mail"),
    "date": ("date",),
}


def count_objects(evidence: list[Evidence], target: str) -> Extract | None:
    dets = [e for e in evidence if e.kind == "detection"]
    if target:
        dets = objects.matching(target, dets)
        if not dets:
            if objects.knows(evidence, target):  # absence, from a detector that knows the class
                ids = [e.id for e in objects.detectors(evidence) if e.extra.get("applies", True)][:1]
                return Extract(
                    f"No {target} was detected (the detector knows {plural(target)}).", "0", ids, "count"
                )
            return None
        label = target if len(dets) == 1 else plural(target)
        return Extract(f"I count {len(dets)} {label}.", str(len(dets)), [e.id for e in dets], "count")
    if not dets:
        return None
    per: dict[str, list[str]] = {}
    for e in dets:
        per.setdefault(e.text, []).append(e.id)
    parts = ", ".join(f"{len(v)} {k if len(v) == 1 else plural(k)}" for k, v in per.items())
    return Extract(f"I count {len(dets)} objects: {parts}.", str(len(dets)), [e.id for e in dets], "count")


def locate(evidence: list[Evidence], target: str, sizes: dict) -> Extract | None:
    if policy.text_thing(target):
        return _locate_text(evidence, target, sizes)
    dets = [
        e
        for e in evidence
        if e.kind == "detection" and (not target or singular(e.text.lower()) == singular(target.lower()))
    ]
    if not dets or not sizes:
        return None
    d = max(dets, key=lambda e: e.confidence)
    w, h = sizes.get(d.image, (0, 0))
    if not w:
        return None
    v, hz = position(d.box, (w, h))
    where = f"{v} {hz}".strip() or "center"
    return Extract(f"The {d.text} is at the {where} of the image.", where, [d.id], "position")


def _locate_text(evidence: list[Evidence], target: str, sizes: dict) -> Extract | None:
    """Where a thing of text is: the lines that hold the words the question names it by ("exit" of
    "the exit sign"), else the image's main text; None when no such text was read."""
    lines = reading.text_lines(evidence)
    words = [w for w in verify.norm(target).split() if singular(w) not in policy.TEXT_OBJECTS]
    if words:
        lines = [e for e in lines if all(w in verify.norm(e.text).split() for w in words)]
    else:
        lines = reading.main_text(lines, sizes)
    lines = [e for e in lines if e.box]
    if not lines:
        return None
    first = lines[0]
    same = [e for e in lines if e.image == first.image]
    box = union([e.box for e in same])
    w, h = sizes.get(first.image, (0, 0))
    if not w:
        return None
    v, hz = position(box, (w, h))
    where = (
        f"{v} {hz or 'center'}" if v else hz or "center"
    )  # "top center": a left/right question is answered too
    said = " ".join(e.text for e in same)
    return Extract(
        f'The {target} ("{said}") is at the {where} of the image.', where, [e.id for e in same], "position"
    )


def colours(evidence: list[Evidence], target: str, sizes: dict | None = None) -> Extract | None:
    """Colours where the question points (regions.subject): the image, a part of it, the text's ink, an
    object's box. None when nothing was measured there: the whole image never answers for a part."""
    found = [e for e in evidence if e.kind == "color"]
    whole = [e for e in found if e.box and _whole_image(e, sizes or {}) and not e.extra.get("part")]
    s = regions.subject(target)
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
        boxes = {tuple(e.box) for e in objects.matching(s.thing, evidence) if e.box}
        found = [e for e in found if e.box and tuple(e.box) in boxes and e not in whole]
        subject, verb = f"The {target}", "is mostly"
    else:
        return None
    if not found:
        return None
    found.sort(key=lambda e: -float(e.extra.get("share", 0)))
    top = found[:3]
    names = ", ".join(f"{e.text} ({float(e.extra.get('share', 0)) * 100:.0f}%)" for e in top)
    return Extract(f"{subject} {verb} {names}.", top[0].text, [e.id for e in top], "colour")


def _whole_image(e: Evidence, sizes: dict) -> bool:
    w, h = sizes.get(e.image, (0, 0))
    if not w:
        return e.box[0] <= 1 and e.box[1] <= 1
    return e.box[0] <= 1 and e.box[1] <= 1 and e.box[2] >= w - 1 and e.box[3] >= h - 1


_META_KEYS = {
    "when": ("datetime", "date", "time"),
    "camera": ("make", "model", "camera"),
    "size": ("size", "width", "height", "resolution"),
    "gps": ("gps", "latitude", "longitude"),
    "format": ("format",),
}


def metadata(evidence: list[Evidence], question: str) -> Extract | None:
    q = question.lower()
    keys = ()
    if re.search(r"\b(when|date|time)\b", q):
        keys = _META_KEYS["when"]
    elif re.search(r"camera|taken with|device", q):
        keys = _META_KEYS["camera"]
    elif re.search(r"gps|where was|location", q):
        keys = _META_KEYS["gps"]
    elif re.search(r"format|file type", q):
        keys = _META_KEYS["format"]
    elif re.search(r"size|big|large|resolution|dimension", q):
        keys = _META_KEYS["size"]
    found = [
        e for e in evidence if e.tool == "metadata" and any(k in e.text.lower().split(":")[0] for k in keys)
    ]
    if not found:
        return None
    return Extract(
        "; ".join(e.text for e in found[:3]) + ".",
        found[0].text.split(":", 1)[-1].strip(),
        [e.id for e in found[:3]],
        "metadata",
    )


def hedge(ex: Extract | None, evidence: list[Evidence], why=None) -> Extract | None:
    """A reading answer with what rests on uncertain readings split off into `doubt`: of a quote of
    several lines, the uncertain lines; of a value (a total, a price, a field), the whole answer when
    the line it was read from is uncertain. `why(lines)`: why these readings are uncertain ("" when they
    are not; `reading.doubts` by default)."""
    if ex is None or ex.kind not in ("quote", "number") or not ex.text:
        return ex
    why = why or reading.doubts
    by_id = {e.id: e for e in evidence}
    lines = [by_id[i] for i in ex.ids if i in by_id]
    unsure = [e for e in lines if why([e])]
    if not unsure:
        return ex
    quoted = " ".join(e.text for e in lines) == ex.key  # a quote of whole lines (`_quote`)
    if not quoted:
        holding = [e for e in lines if verify.norm(ex.key) in verify.norm(e.text)] or lines
        if not all(e in unsure for e in holding):
            return ex
        return Extract(
            "", "", [], ex.kind, doubt=f'it may say "{ex.key}"', doubt_ids=ex.ids, doubt_why=why(holding)
        )
    sure = [e for e in lines if e not in unsure]
    out = _quote(sure) or Extract("", "", [], ex.kind)
    out.doubt = f"it may {'also ' if sure else ''}say " + " ".join(f'"{e.text}"' for e in unsure)
    out.doubt_ids = [e.id for e in unsure]
    out.doubt_why = why(unsure)
    return out


def extract(intent: policy.Intent, question: str, evidence: list[Evidence], sizes: dict) -> Extract | None:
    if intent.name in policy.READING_INTENTS:
        return hedge(_extract(intent, question, evidence, sizes), evidence)
    return _extract(intent, question, evidence, sizes)


def _extract(intent: policy.Intent, question: str, evidence: list[Evidence], sizes: dict) -> Extract | None:
    name = intent.name
    if name == "read":
        return read_text(evidence, question)
    if name == "total":
        return receipt_total(evidence, question)
    if name == "price":
        return item_price(evidence, intent.target) or None
    if name == "field":
        return find_field(evidence, intent.field, question)
    if name in ("count", "presence"):
        return count_objects(evidence, intent.target)
    if name == "where":
        return locate(evidence, intent.target, sizes)
    if name == "color":
        return colours(evidence, intent.target, sizes)
    if name == "metadata":
        return metadata(evidence, question)
    return None
