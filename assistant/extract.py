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
from dataclasses import replace

from assistant import (
    candidates,
    ink,
    policy,
    ranking,
    reading,
    roles,
    sightings,
    verify,
)
from assistant.candidates import Extract
from assistant.colours import colours
from assistant.text import singular
from tools.evidence import Evidence, position
from tools.ocr_layout import union


def read_text(evidence: list[Evidence], question: str = "", role: roles.Role | None = None) -> Extract | None:
    """The text a reading question means: its candidates (`assistant.candidates`), ranked
    (`assistant.ranking`). None when the text offers no candidate; an extract that is not `sure` when the
    best one does not clear the threshold of showing (its `why` says so)."""
    role = role or roles.role_of(question, ink.ink_colour(question))
    found, why = candidates.reading_candidates(question, role, evidence)
    ranked = ranking.rank(question, role, found, evidence)
    if ranked.best is None:
        return Extract("", "", [], why=why or ranked.why, sure=False) if (why or ranked.why) else None
    best = ranked.best
    return Extract(
        f'It says "{best.key}".', best.key, best.ids, best.kind, score=ranked.score, sure=ranked.sure,
        basis=best.basis, why=ranked.why,
    )  # fmt: skip


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
    return Extract(f"The total is {amount}.", amount, ids, "number", basis="label")


_NOT_ITEM = {"the", "a", "an", "to", "of", "for", "this", "that", "item", "items", "product", "thing", "one"}


def item_price(evidence: list[Evidence], item: str) -> Extract | None:
    """An item's price: the first amount after the item's name on its line (a quantity's line reads "Plastic
    2 15.50 31.00": the price is 15.50), or on its row to the right. Words that name no item ("the plastic
    item") are left out of the name."""
    if not item:
        return None
    lines = reading.text_lines(evidence)
    words = [w for w in verify.norm(item).split() if w not in _NOT_ITEM]
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
    found = [w for w in words if any(verify.similarity(w, n) >= 0.85 for n in verify.norm(best.text).split())]
    amount, source = _amount_after(best.text, (found or words)[-1]), best
    if amount is None:
        for other in reading.beside(best, lines):
            if _amount(other.text):
                amount, source = _amount(other.text), other
                break
    if amount is None:
        # a receipt that prints an item's code, quantity and price on the line under its name
        # ("CHOPPING BOARD 35.5x25.5CM" / "8970669 1X 19.00 19.00"): that line names no item of its own
        for under in reading.below(best, lines, 2):
            if re.search(r"[^\W\d_]{3,}", re.sub(r"\d+[xX]\b", " ", under.text)):
                break  # the next item's name
            if m := re.search(r"(?<![\d.,])\d+[.,]\d{2}(?![\d.,])", under.text):
                amount, source = m.group(0).replace(",", "."), under
                break
    if amount is None:
        return None
    return Extract(
        f"The {item} costs {amount}.",
        amount,
        list(dict.fromkeys([best.id, source.id])),
        "number",
        basis="label",
    )


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
    """A phone number, e-mail, web address, date or time: the typed role's candidates, at its label first."""
    if name not in roles.PATTERNS:
        return None
    role = roles.Role(name)
    ex = read_text(evidence, question, role)
    if ex is None or not ex.text:
        return ex
    what = {"phone": "phone number", "url": "web address", "email": "e-mail address"}.get(name, name)
    ex.text = f'The {what} is "{ex.key}".'
    return ex


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


def _quote(lines: list[Evidence]) -> Extract | None:
    if not lines:
        return None
    text = " ".join(e.text for e in lines)
    return Extract(f'It says "{text}".', text, [e.id for e in lines])


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
        return replace(
            ex,
            text="",
            key="",
            ids=[],
            doubt=f'it may say "{ex.key}"',
            doubt_ids=ex.ids,
            doubt_why=why(holding),
        )
    sure = [e for e in lines if e not in unsure]
    out = _quote(sure) or Extract("", "", [], ex.kind)
    return replace(
        ex, text=out.text, key=out.key, ids=out.ids, doubt_ids=[e.id for e in unsure], doubt_why=why(unsure),
        doubt=f"it may {'also ' if sure else ''}say " + " ".join(f'"{e.text}"' for e in unsure),
    )  # fmt: skip


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
        return sightings.count_objects(
            evidence, intent.target, exact=name == "count", qualifier=intent.qualifier, sizes=sizes
        )
    if name == "where":
        if policy.arrow_thing(intent.target):  # "which way does the arrow point", "where is the arrow"
            if re.search(r"\b(point|points|pointing|face|faces|way|direction)\b", question.lower()):
                return sightings.arrow_way(evidence)
            return sightings.locate_arrow(evidence, sizes)
        if policy.text_thing(intent.target):
            return _locate_text(evidence, intent.target, sizes)
        return sightings.locate(evidence, intent.target, sizes, intent.qualifier)
    if name == "color":
        return colours(evidence, intent.target, sizes, intent.qualifier)
    if name == "metadata":
        return metadata(evidence, question)
    if name == "identify":
        return sightings.identify(evidence, question)
    return None
