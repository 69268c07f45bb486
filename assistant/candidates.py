"""Candidates: the answers an image's text offers to a reading question, each with how it was found.

The second step of the answer pipeline (role -> candidates -> ranking -> check -> compose). From the
lines OCR read (`assistant.reading`), restricted by the question's qualifiers, candidates come from:

- a label the question names: a typed value after it, beside it or under it ("Invoice No 22497", "CHANGE
  16.10"), a form's value under its header ("TO" -> "FUZHOU"), a number counted with the question's noun
  ("32 tracks"), or the label's line with its neighbours when the line holds nothing but the label;
- the type alone: every value of the role's type ("aspammer@website.com"; one of several is weaker);
- the page's heading, for the name of a shop on its receipt;
- the text's own prominent lines (a sign's large, central text);
- meaning: every line, ranked later by how close it is to the question (`assistant.ranking`).

A question about a person (who signed, the cashier) or a named thing the text does not point at ("this
beach") gets only labelled candidates: the text says such a name only where a label does. Each
candidate's `basis` says how it was found; `assistant.ranking` turns that into a score.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from assistant import reading, roles, verify
from tools.evidence import Evidence


@dataclass
class Candidate:
    """One possible answer read from the image."""

    key: str  # the answer's text: a value ("16.10") or the lines quoted ("DOUBLE PARKING PROHIBITED")
    lines: list[Evidence]  # the lines it was read from
    basis: str  # how it was found (`assistant.ranking.SUPPORT`)
    kind: str = "quote"  # "quote" (text) | "number" (a value compared as a number)
    notes: dict = field(default_factory=dict)  # what ranking measured: meaning, score, why

    @property
    def ids(self) -> list[str]:
        return list(dict.fromkeys(e.id for e in self.lines))


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
    # How sure the extraction is (`assistant.ranking`): only a `sure` extract is shown as fact.
    score: float = 1.0
    sure: bool = True
    basis: str = ""  # how the answer was found ("label", "prominent", "meaning", ...)
    why: str = ""  # why it is not sure, or why there is none (`text` is "" then)


NUMERIC = {"money", "number", "percent", "quantity", "score", "year"}
# Labels a typed value sits at even when the question does not say them ("Tel" for a phone number).
FIELD_LABELS = {
    "phone": ("tel", "phone", "telephone", "fax", "mobile"),
    "email": ("email", "mail"),
    "date": ("date",),
}


def reading_candidates(
    question: str, role: roles.Role, evidence: list[Evidence]
) -> tuple[list[Candidate], str]:
    """The candidates, most structural first, and "" ; or [] and why the text offers none."""
    lines = reading.text_lines(evidence)
    if not lines:
        return [], reading.why_not(question, evidence)
    labels = reading.label_words(question)
    placed = bool(role.where or role.size or role.ink)  # "whose name is printed as the heading"
    if reading.asks_person_or_unnamed(question, labels) and not placed:
        hit = sorted(
            (e for e in lines if reading.has_label(e, labels)), key=lambda e: -reading.has_label(e, labels)
        )
        if not hit:
            return [], reading.why_not(question, evidence)
        return [Candidate(*_quote(with_value(hit[0], lines)), "label")], ""
    goes = re.search(r"\b(destination|go(?:es)? to|bound for|heading|towards?)\b", question, re.I)
    if (re.search(r"\bname\b", question, re.I) or role.kind in ("org", "place")) and not goes:
        named = [e for e in lines if not reading.is_direction(e)]  # "to X" names where a train goes
        if not named and re.search(r"\b(station|stop|platform|terminal)\b", question, re.I):
            return [], "the text read names only where things go, not the place itself."
        lines = named or lines
    pool, unmet = reading.qualify(lines, role, evidence)
    if unmet:
        return [], unmet + "."
    found = (
        _typed(role, question, lines, pool, labels)
        if role.typed
        else _text(role, question, lines, pool, labels, evidence)
    )
    return found, "" if found else reading.why_not(question, evidence)


def _quote(lines: list[Evidence]) -> tuple[str, list[Evidence]]:
    return " ".join(e.text for e in lines), lines


def with_value(line: Evidence, lines: list[Evidence]) -> list[Evidence]:
    """A label line, and when it holds little but the label, the text beside or under it."""
    if len(verify.norm(line.text).split()) > 2:
        return [line]
    nxt = reading.beside(line, lines)[:1] or reading.below(line, lines, 1)
    return [line, *nxt]


# ---- typed roles ---------------------------------------------------------------------------------


def _typed(role, question, lines, pool, labels) -> list[Candidate]:
    kind = role.kind
    number = "number" if kind in NUMERIC else "quote"
    if kind == "code" and (m := re.search(r"\b([a-z]+)\s*(?:number|no\.?|#|code|id)\b", question, re.I)):
        labels = list(
            dict.fromkeys([m.group(1).lower(), *labels])
        )  # "the invoice number": "Invoice" labels it
    labels = labels + [w for w in FIELD_LABELS.get(kind, ()) if w not in labels]
    out: list[Candidate] = []
    if role.noun:  # "how many tracks": the number counted with the noun ("32 tracks", "tracks: 32")
        noun = re.escape(role.noun[:-2] if role.noun.endswith(("re", "er")) else role.noun)
        noun += "(?:re|er)" if role.noun.endswith(("re", "er")) else ""  # litre / liter
        pattern = rf"(\d[\d,.]*)\s+(?:[a-z-]+\s+){{0,2}}{noun}\w*|{noun}\w*\s*[:=]?\s*(\d[\d,.]*)"
        for e in pool:
            for m in re.finditer(pattern, e.text, re.I):
                out.append(Candidate((m.group(1) or m.group(2)).rstrip(".,"), [e], "counted", number))
        if len({verify.norm(c.key) for c in out}) > 1:  # "3 liter water" and "2 liter water": which one?
            for c in out:
                c.basis = "counted-several"
    labelled = sorted(
        (e for e in lines if reading.has_label(e, labels)), key=lambda e: -reading.has_label(e, labels)
    )
    for line in labelled:
        near = [(reading.after_label(line, labels), line)]
        near += [(e.text, e) for e in reading.beside(line, lines) + reading.below(line, lines)]
        basis = _label_basis(line, labels)
        for text, ev in near:
            values = reading.typed_values(kind, text, at_label=True)
            if values:
                out.append(Candidate(values[0], [line] if ev is line else [line, ev], basis, number))
                break
    if labels and not labelled and kind in ("money", "number", "score", "time"):
        # "what fare was paid": a number no label of the question points at is not the fare; an amount
        # with its currency marked may still be the only price on a ticket
        if kind != "money":
            return out
        values = [
            (m.group(0).strip(), e) for e in pool for m in re.finditer(reading.MARKED_MONEY, e.text, re.I)
        ]
    else:
        values = [
            (v, e) for e in pool if not _fine_print(e, lines) for v in reading.typed_values(kind, e.text)
        ]
    if kind == "phone" and not re.search(r"\bfax\b", question, re.I):
        # "T 03-2093 7358 F 03-2093 7359": a number after "F" or "Fax" is the fax, not the telephone
        values = [
            (v, e) for v, e in values if not re.search(rf"\b(?:f|fax)\b\W*{re.escape(v)}", e.text, re.I)
        ]
    distinct = {verify.norm(v) for v, _ in values}
    basis = "type" if len(distinct) == 1 else "type-several"
    for v, e in sorted(values, key=lambda t: -reading.prominence(t[1])):
        out.append(Candidate(v, [e], basis, number))
    return out


def _label_basis(line: Evidence, labels: list[str]) -> str:
    """ "label" when the line carries most of the question's label words (or its only one), or the name of
    the field the question asks for ("Change" of "how much change did the customer receive"); else
    "label-weak": one word of several ("record" of "how many tracks does the sequencer record")."""
    fields = [w for w in labels if w in FIELDS]
    if fields and reading.has_label(line, fields):
        return "label"
    return "label" if 2 * reading.has_label(line, labels) >= len(labels) else "label-weak"


# Names of a document's fields: a line that carries the one a question names is its label.
FIELDS = {"total", "subtotal", "tax", "vat", "gst", "change", "cash", "balance", "due", "tip", "discount", "fare",
          "deposit", "rounding", "price", "fee", "rate", "interest", "invoice", "order", "receipt", "ticket",
          "flight", "train", "table", "seat", "gate", "room", "account", "reference", "tel", "phone", "fax",
          "email", "date", "time"}  # fmt: skip


def _fine_print(e: Evidence, lines: list[Evidence]) -> bool:
    """Text far smaller than the rest (a camera's date stamp, a copyright line)."""
    heights = sorted(reading.height(o) for o in lines)
    return len(heights) >= 4 and reading.height(e) < 0.4 * heights[len(heights) // 2]


# ---- text roles (names, words, phrases) ----------------------------------------------------------


def _text(role, question, lines, pool, labels, evidence) -> list[Candidate]:
    out: list[Candidate] = []
    if role.kind == "org" and _is_receipt(lines):
        out.append(Candidate(*_quote(heading(lines)), "heading"))  # a shop's name heads its receipt
    # For a name, only the thing named labels it ("which theatre": a line with "Theatre"); the other
    # words of the question say where the name is ("the brand of the projector": not "PROJECTOR").
    keys = [role.noun] if role.kind in roles.NAMES and role.noun else labels
    subject = not any(reading.has_label(e, keys) for e in lines) and reading.named_words(question)
    if subject:  # "the title of Subchapter A": where its other words label nothing, the name it knows does
        keys = subject
    hits = [e for e in pool if reading.has_label(e, keys)]
    if not hits and not role.where and not role.ink:  # "the title of Subchapter A": its label, at any size
        hits = [e for e in lines if reading.has_label(e, keys)]
    labelled = sorted(
        hits, key=lambda e: (-reading.has_label(e, keys), not _leads(e, keys), -reading.prominence(e))
    )
    most = reading.has_label(labelled[0], keys) if labelled else 0
    for hit in [e for e in labelled if reading.has_label(e, keys) == most][:3]:
        out.append(_at_label(hit, role, question, keys, lines, pool, evidence, bool(subject)))
    if _is_receipt(lines) and re.search(
        r"\b(bought|purchased|ordered|sold|items?|products?)\b", question, re.I
    ):
        items = receipt_items(lines)  # "what item was bought", "what fuel product was purchased"
        many = re.search(r"\b(items|products|things)\b", question, re.I)
        if items and (len(items) == 1 or many):
            out.append(Candidate(*_quote([e for item in items for e in item]), "label"))
        elif items:
            out += [Candidate(*_quote(item), "type-several") for item in items]
    qualified = bool(role.where or role.size or role.ink)
    if qualified and pool:  # a few lines singled out answer; a page's worth is not singled out
        basis = "qualified" if len(pool) <= 3 else "qualified-many"
        out.append(Candidate(*_quote(_in_order(pool)[:6]), basis))
    main = reading.main_text(pool, {})
    if main:
        out.append(Candidate(*_quote(main), "prominent"))
    if role.size == "large" and not labelled and re.search(r"\b(title|heading|headline)\b", question, re.I):
        # "the title of the recipe" where its words label nothing and every line is one size: the first line
        first = next(
            (e for e in _in_order(pool) if reading.meaningful(e) and not reading.is_edge_junk(e)), None
        )
        if first is not None:
            out.append(Candidate(first.text, [first], "first-line"))
    for e in pool:  # a line that only repeats the question's words is where the answer is, not the answer
        if _new_words(e, question):
            out.append(Candidate(e.text, [e], "meaning"))
        else:
            out.append(Candidate(*_quote([e, *reading.below(e, pool, 2)]), "meaning-next"))
    return out


def _at_label(hit, role, question, keys, lines, pool, evidence, subject: bool) -> Candidate:
    """The answer at one labelled line (several lines may carry the label words equally: each is a
    candidate, and ranking tells them apart by meaning)."""
    valued = any(re.search(r"\d", t) for t in verify.norm(hit.text).split() if t not in keys)
    form = (
        reading.under_label(hit, keys, lines, evidence) if not valued and _names_a_field(question) else None
    )
    if form:  # "the TO field": the value under its header
        return Candidate(form[0], [form[1]], "form")
    block = reading.block_of(hit, pool)
    covered = {lab for lab in keys for e in block if reading.has_label(e, [lab])}
    spread = len(covered) > reading.has_label(hit, keys) or not _new_words(hit, question)
    if len(block) <= 6 and spread and any(_new_words(e, question) for e in block):
        # the question's words spread over one sign's lines ("Customer / Freephone / ... / Service"), or
        # its label line says nothing new ("PROHIBITED"): the sign's text, whose other lines answer
        return Candidate(*_quote(block), "label" if 2 * len(covered) >= len(keys) else "label-weak")
    if subject and not _new_words(hit, question):  # the subject's own line: the answer is around it
        passage = _passage(hit, pool, question)
        # a place asked of a named subject, and an address beside its name: "Linn Electronics Inc / 18720
        # Oxnard Street, Tarzana"
        where = role.kind == "place" and "address" in roles.types_of(" ".join(e.text for e in passage))
        return Candidate(*_quote(passage), "label" if where else "label-weak")
    if role.kind in roles.NAMES and not subject:
        return _name_at(hit, pool, question, _label_basis(hit, keys))
    basis = _label_basis(hit, keys)
    if basis == "label" and _leads(hit, keys):
        basis = "label-lead"  # "SUBCHAPTER A—CIVIL SERVICE RULES": a heading or a field, not prose naming it
    return Candidate(*_quote(_passage(hit, pool, question)), basis)


def _leads(line: Evidence, keys: list[str]) -> bool:
    """The line begins with one of the label words."""
    words = verify.norm(line.text).split()
    return (
        bool(words)
        and reading.has_label(Evidence("", line.tool, line.image, "line", words[0], 1.0, None), keys) > 0
    )


_TRIVIAL = {"inc", "ltd", "co", "llc", "plc", "the", "a", "an", "of", "and", "gmbh", "corp"}


def _name_at(hit: Evidence, lines: list[Evidence], question: str, basis: str) -> Candidate:
    """A name at the noun the question asks for: on the noun's line ("Genexis Theatre"), or, where that line
    holds only kinds of places ("BISTRO CAFE"), the line over it ("THREE STOOGES"). A number or an address
    there is not a name; nor is a line whose noun was read only approximately a sure one."""
    new = [w for w in _new_words(hit, question) if w not in roles.ORGS | roles.PLACES]
    # the noun read only approximately ("Cempany"): the line is misread, and so may its name be
    exact = any(w in roles.ORGS | roles.PLACES for w in verify.norm(hit.text).split())
    basis = basis if exact else "label-weak"
    if new:
        weak = 2 * sum(bool(re.search(r"\d", w)) for w in new) > len(new)  # "109 SS21/1A": an address
        return Candidate(hit.text, [hit], "label-weak" if weak else basis)
    over = reading.above(hit, lines, 1)
    return Candidate(*_quote([*over, hit]), basis if over else "label-weak")


def _new_words(line: Evidence, question: str) -> list[str]:
    """The words of a line the question does not already say (nor trivial ones: "Inc", "the")."""
    asked = set(verify.norm(question).split()) | _TRIVIAL
    return [w for w in verify.norm(line.text).split() if w not in asked and len(w) > 1]


def _passage(hit: Evidence, lines: list[Evidence], question: str) -> list[Evidence]:
    """The label's line, and where it holds nothing the question does not already say ("PROHIBITED" for
    "what does the sign say is prohibited", "Linn Electronics Inc" for "where is Linn Electronics"), the
    lines around it: the line over it and the two under it (an address under a name)."""
    if _new_words(hit, question):
        return with_value(hit, lines)
    return [*reading.above(hit, lines, 1), hit, *reading.below(hit, lines, 2)]


def _in_order(lines: list[Evidence]) -> list[Evidence]:
    return sorted(lines, key=lambda e: (e.image, e.box[1] if e.box else 0, e.box[0] if e.box else 0))


def _names_a_field(question: str) -> bool:
    """A question that names a form's field: "the TO field", a label written in capitals."""
    return bool(re.search(r"\bfield\b", question, re.I) or re.search(r"\b(?!I\b)[A-Z]{2,}\b", question))


# Lines of a receipt that are not items: its totals, payments, taxes and the shop's particulars.
_NOT_ITEM = re.compile(
    r"\b(sub\s*total|total|tax|gst|vat|cash|change|card|visa|master|rounding|balance|due|tel|telephone|fax|"
    r"invoice|receipt|date|time|no|reg|points?|thank|member|loyalty|qty|amount|price)\b",
    re.I,
)


def receipt_items(lines: list[Evidence]) -> list[list[Evidence]]:
    """A receipt's item rows: above its first total line, a name with its amount on the line ("V-Power 97
    R11 86.00") or on the line under it ("CINNAMON SUGAR" / "1 x 17,000 17,000")."""
    first_total = min((e.box[1] for e in lines if e.box and _TOTAL_WORD.search(e.text)), default=None)
    if first_total is None:
        return []
    above = [e for e in _in_order(lines) if e.box and e.box[3] <= first_total + 1]
    items = []
    for i, e in enumerate(above):
        named = re.search(r"[^\W\d_]{3,}", e.text) and not _NOT_ITEM.search(e.text)
        if not named or reading.is_direction(e):
            continue
        nxt = above[i + 1].text if i + 1 < len(above) else ""
        priced_under = not re.search(r"[^\W\d_]{3,}", re.sub(r"\b\d+\s*[xX]\b", " ", nxt)) and (
            re.search(roles.PATTERNS["money"], nxt) or re.search(r"\d{1,3}(?:,\d{3})+", nxt)
        )
        if re.search(roles.PATTERNS["money"], re.sub(roles.PATTERNS["quantity"], " ", e.text, flags=re.I)):
            items.append([e])  # a price on the line ("36.10 litre" is a quantity, not a price)
        elif nxt and priced_under:
            items.append([e, above[i + 1]])
    return items


_TOTAL_WORD = re.compile(r"\b(total|sub\s*total|amount due|balance due)\b", re.I)


def _is_receipt(lines: list[Evidence]) -> bool:
    money = sum(1 for e in lines if re.search(roles.PATTERNS["money"], e.text, re.I))
    return money >= 3 or any(_TOTAL_WORD.search(e.text) for e in lines)


def heading(lines: list[Evidence]) -> list[Evidence]:
    """A page's name: its first line of words (or a much taller one just under it), with the line right
    under it when that is as tall ("THREE STOOGES" / "BISTRO & CAFE"), not an address or a number."""
    h = reading.height

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
