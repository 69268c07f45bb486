"""Claim verification: split an answer into claims and check each one against the evidence.

What is checked, per claim:
- quoted (or "says ...") text against the OCR words, tolerant of case, spacing, punctuation and small
  OCR errors (difflib ratio over word windows, so "0PEN DA1LY" still matches "OPEN DAILY");
- numbers against numbers read by OCR (prices: "41.30" matches OCR's "41 30"), and counts ("3 cars")
  against the detections of that class;
- colour words against the colour tool's findings;
- positions ("on the left", "top right") of a detected object against its box;
- an answer's words that are neither quoted nor any of the above ("Private hire.", "The title is Civil
  Service Rules") as a phrase of text, against the OCR words like a quote;
- cited ids must exist.
A claim is checked by what it adds: what the question already says is given, not claimed (`Given`):
"drivers" in "what does the sign ask drivers to do", "red" in "the street in red letters", "Part 1" in
"the heading of Part 1". A claim with nothing checkable in it is not supported: the verifier cannot
vouch for it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from assistant import objects
from assistant.text import norm, similarity, singular
from assistant.textmatch import find_text, ocr_numbers, parse_number
from assistant.trace import ClaimRecord
from tools.arrows import sign_arrows
from tools.evidence import Evidence, position

COLOURS = (
    "red", "green", "blue", "yellow", "orange", "purple", "violet", "pink", "brown", "black", "white",
    "gray", "grey", "cyan", "teal", "magenta", "beige", "navy", "maroon", "olive", "gold", "silver",
)  # fmt: skip
POSITIONS = {"left", "right", "top", "bottom", "center", "centre", "middle", "upper", "lower"}
_ARROW_WAYS = {"left", "right", "up", "down"}  # the ways the arrows tool tells
_CITE = re.compile(r"\[\s*((?:[a-z]+:\d+)(?:\s*,\s*[a-z]+:\d+)*)\s*\]")
_QUOTE = re.compile(r"\"([^\"]+)\"|“([^”]+)”|«([^»]+)»|(?<![\w])'([^']{2,}?)'(?![\w])")
_SAYS = re.compile(r"\b(?:says|reads|read|written|text is|words are|printed)\s*:?\s+(.+)$", re.I)
_NUMBER = re.compile(r"(?<![\w:])[$€£]?\s?(\d+(?:[.,]\d+)?)(?![\w:])")
QUOTE_MATCH = 0.8  # difflib ratio above which quoted text counts as read


@dataclass(frozen=True)
class Given:
    """What a question already says: its words, numbers, colours and the positions it fixes. A claim's
    unit that only repeats one of these is given, not claimed."""

    words: frozenset[str] = frozenset()
    numbers: frozenset[float] = frozenset()
    positions: frozenset[str] = frozenset()

    @classmethod
    def of(cls, question: str) -> Given:
        q = question.lower()
        words = frozenset(norm(q).split()) | frozenset(singular(w) for w in norm(q).split())
        numbers = frozenset(float(m) for m in re.findall(r"(?<![\w.])\d+(?:\.\d+)?(?![\w.])", q))
        # "on the left or the right": the answer chooses; "the horse on the left": the question fixes it
        choices = {
            w for m in re.finditer(r"\b(\w+) or (?:on |at |to |in )?(?:the )?(\w+)\b", q) for w in m.groups()
        }
        positions = frozenset(w for w in words if w in POSITIONS and w not in choices)
        return cls(words, numbers, positions)

    def says(self, word: str) -> bool:
        """The question already says this word (or a form of it: "receive" for "received")."""
        w = word.lower()
        if w in self.words or singular(w) in self.words:
            return True
        return len(w) >= 5 and any(len(g) >= 5 and similarity(w, g) >= 0.8 for g in self.words)


# A new clause with its own subject inside a sentence ("..., and it is a ...") is a claim of its own.
_CLAUSE = re.compile(
    r"\s*(?:;|,?\s+(?:and|but|while|which|so|whereas)\s+(?=(?:it|this|that|the|there|they|he|she|its|a|an|is|was)\b))",
    re.I,
)


def _clauses(sentence: str) -> list[str]:
    """Split at clause boundaries that lie outside quoted text."""
    quoted = [m.span() for m in _QUOTE.finditer(sentence)]
    out, start = [], 0
    for m in _CLAUSE.finditer(sentence):
        if any(a <= m.start() < b for a, b in quoted):
            continue
        out.append(sentence[start : m.start()])
        start = m.end()
    out.append(sentence[start:])
    return [c for c in out if c.strip()]


def split_claims(text: str) -> list[tuple[str, list[str]]]:
    """(claim text without citation marks, ids it cites) per sentence, clause or bullet."""
    out = []
    sentences = re.split(r"(?<=[.!?])\s+(?=[A-Z0-9\"“(])|\n+\s*(?:[-*•]|\d+[.)])?\s*", text.strip())
    parts = [c for s in sentences if s for c in _clauses(s)]
    for p in parts:
        if not p or not p.strip():
            continue
        cites = [i.strip() for m in _CITE.finditer(p) for i in m.group(1).split(",")]
        clean = _CITE.sub("", p).strip()
        clean = re.sub(r"\s+([.,;:!?])", r"\1", clean)
        if re.search(r"[A-Za-z0-9]", clean):
            out.append((clean, cites))
    return out


def _count_of(label: str, evidence: list[Evidence]) -> list[Evidence]:
    want = singular(label.lower())
    return [e for e in evidence if e.kind == "detection" and singular(e.text.lower()) == want]


def _position_of(box, size) -> set[str]:
    vertical, horizontal = position(box, size)
    middle = {"center", "centre", "middle"}
    out = {horizontal} if horizontal else set(middle)
    return out | ({"top": {"top", "upper"}, "bottom": {"bottom", "lower"}}.get(vertical) or middle)


def verify_claim(text: str, cites: list[str], evidence: list[Evidence], sizes: dict | None = None,
                 suspicious: set[str] = frozenset(), given: Given = Given()) -> ClaimRecord:  # fmt: skip
    """Check one claim by what it adds to the question (`given`); `suspicious` are ids of OCR text that
    reads like an instruction."""
    by_id = {e.id: e for e in evidence}
    missing = [c for c in cites if c not in by_id]
    if missing:
        return ClaimRecord(
            text, False, cites, f"cites {', '.join(missing)}, which is not in the evidence", "general"
        )
    checks: list[tuple[bool, list[str], str, str]] = []  # (ok, ids, reason, kind)
    quotes = [next(g for g in m.groups() if g) for m in _QUOTE.finditer(text)]
    if not quotes:
        m = _SAYS.search(text)
        if m:
            quotes = [m.group(1).strip(" .!")]
    for q in quotes:
        tm = find_text(q, evidence)
        if tm.score >= QUOTE_MATCH:
            bad = [i for i in tm.ids if i in suspicious]
            checks.append((True, tm.ids, f"text {q!r} matches OCR {tm.text!r} ({tm.score:.2f})", "quote"))
            if bad:
                checks[-1] = (
                    True,
                    tm.ids,
                    checks[-1][2] + "; it is text on the image, reported, not obeyed",
                    "quote",
                )
        else:
            near = f" (closest read: {tm.text!r}, {tm.score:.2f})" if tm.text else ""
            checks.append((False, tm.ids, f"text {q!r} was not read in the image{near}", "quote"))
    rest = _QUOTE.sub(" ", text)
    rest = re.sub(r"\b(image|picture|photo)\s*#?\d+\b", " ", rest, flags=re.I)
    words = re.findall(r"[a-z]+", rest.lower())
    negated = bool(_NEGATION.search(rest))
    checks += _count_checks(rest, evidence)
    counted = {w for c in checks if c[3] == "count" for w in c[4:]}
    checks = [c[:4] for c in checks]
    bare = [] if counted else _bare_count(rest, evidence, given)  # "There are 2." to "how many dogs"
    checks += bare or _number_checks(rest, words, evidence, given)
    colour_ev = _main_colours(
        [
            e
            for e in evidence
            if e.kind == "color"
            and (e.extra.get("part") != "background" or "background" in words or given.says("background"))
        ]
    )  # the paper behind letters says nothing of the letters (unless the question asks for it)
    for c in [w for w in words if w in COLOURS and not given.says(w)]:
        hits = [
            e.id
            for e in colour_ev
            if c in e.text.lower()
            or (c in ("gray", "grey") and ("gray" in e.text or "grey" in e.text))
            or (c == "white" and e.text == "light gray")  # white things in a photo measure light gray
        ]
        why = (
            "found by the colour tool"
            if hits
            else ("no colour finding says so" if colour_ev else "no colour evidence")
        )
        checks.append((bool(hits), hits, f"colour {c!r} {why}", "colour"))
    labels = {singular_label(e.text) for e in evidence if e.kind == "detection"}
    named = [w for w in dict.fromkeys(words) if objects.is_object_word(w, labels) and w not in counted]
    things = [w for w in named if not given.says(w)]  # "drivers" of "what does it ask drivers to do"
    pos = [w for w in words if w in POSITIONS and w not in given.positions]
    if pos and sizes:
        subject = named or [
            w for w in given.words if objects.is_object_word(w, labels)
        ]  # "it" is the question's
        dets = [e for w in subject for e in objects.matching(w, evidence)]
        for d in dets[:1]:
            where = _position_of(d.box, sizes.get(d.image, (1, 1)))
            ok = all(p in where for p in pos) != negated
            checks.append((ok, [d.id], f"{d.text} {d.id} is at {'/'.join(sorted(where))}", "position"))
    turns = [w for w in words if w in _ARROW_WAYS]
    if turns and "arrow" in {singular(w) for w in [*words, *given.words]}:  # "the arrow points left"
        arrows = [a for a, _ in sign_arrows(evidence)]  # a shape far from any text is no sign's arrow
        if arrows:
            ok = any(e.text in turns for e in arrows) != negated
            ways = "/".join(sorted({e.text for e in arrows}))
            checks.append((ok, [arrows[0].id], f"the arrows found point {ways}", "position"))
    absence = negated and bool(_ABSENCE.search(rest))
    checks += _object_checks(things, evidence, absence, text_read=_read_tokens(evidence))
    if not quotes and not checks:  # only an answer no other check covers is read as a phrase of text
        checks += _phrase_check(words, rest, evidence, given, labels)
    if not checks:
        if cites and all(c in by_id for c in cites) and _mentions_cited(words, [by_id[c] for c in cites]):
            return ClaimRecord(text, True, cites, "matches the cited evidence", "general")
        return ClaimRecord(text, False, cites, "nothing in the evidence supports this", "general")
    ok = all(c[0] for c in checks)
    ids = [i for c in checks for i in c[1]]
    failed = [c for c in checks if not c[0]]
    reasons = "; ".join(c[2] for c in (failed or checks))
    kind = (failed or checks)[0][3]
    return ClaimRecord(text, ok, list(dict.fromkeys(ids)), reasons, kind)


# "no", "not", "never", "without", "isn't": a claim that denies what it names.
_NEGATION = re.compile(r"\b(no|not|none|never|neither|nor|without|nothing)\b|n't\b", re.I)
# Denying that a thing is there at all ("there is no dog", "no dogs are visible", "isn't any").
_ABSENCE = re.compile(
    r"\b(no|none|without|nothing)\b|\b(is|are|was|were|do|does)(n't| not) (any|a|an|see|visible|present)\b|"
    r"\bnot (any|a single)\b|\bthere (is|are)(n't| not)\b",
    re.I,
)
_SMALL = {"one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7, "eight": 8, "nine": 9,
          "ten": 10, "a single": 1}  # fmt: skip
_COUNTED = re.compile(
    r"(?<![\w.,:$€£])(\d+|" + "|".join(_SMALL) + r")\s+((?:[a-z]+\s+){0,2}?)([a-z]+)\b", re.I
)


MAIN_SHARE = 0.3  # a colour covering this much of what was measured is one of its colours


def _main_colours(found: list[Evidence]) -> list[Evidence]:
    """Colour findings that can answer "what colour is it": the largest of each measurement, or any
    covering MAIN_SHARE of it (a red stripe's thin white margin does not make the stripe white)."""
    groups: dict[tuple, list[Evidence]] = {}
    for e in found:
        groups.setdefault((e.image, e.box, e.extra.get("part"), e.extra.get("area")), []).append(e)
    out = []
    for g in groups.values():
        top = max(g, key=lambda e: float(e.extra.get("share", 0)))
        out += [e for e in g if e is top or float(e.extra.get("share", 0)) >= MAIN_SHARE]
    return out


def singular_label(label: str) -> str:
    return objects.singular(label.lower())


_BARE_COUNT = re.compile(
    r"^\s*(?:(?:there (?:are|is|were|was))|i count|i see)?\s*(\d+|" + "|".join(_SMALL) + r")\s*$", re.I
)


def _bare_count(rest: str, evidence: list[Evidence], given: Given) -> list[tuple]:
    """A number alone ("There are 2.") answering "how many dogs": against the sure boxes of the thing the
    question names (and its less certain ones: a number between the two is not against the evidence)."""
    m = _BARE_COUNT.match(rest.strip().rstrip("."))
    labels = {singular_label(e.text) for e in evidence if e.kind == "detection"}
    nouns = [
        w for w in sorted(given.words) if objects.is_object_word(w, labels) and objects.knows(evidence, w)
    ]
    if not m or not nouns:
        return []
    value = _SMALL.get(m.group(1).lower()) or int(m.group(1))
    sure, maybe = objects.split(objects.matching(nouns[0], evidence), evidence)
    ok = len(sure) <= value <= len(sure) + len(maybe)
    reason = f"{len(sure)} {nouns[0]} detected" + (f", {len(maybe)} more less surely" if maybe else "")
    return [(ok, [d.id for d in sure + maybe], reason, "count")]


def _count_checks(rest: str, evidence: list[Evidence]) -> list[tuple]:
    """A count per counted thing ("1 person and 3 cars"): each number against its own label's detections."""
    labels = {singular_label(e.text) for e in evidence if e.kind == "detection"}
    out = []
    for m in _COUNTED.finditer(rest):
        raw, noun = m.group(1).lower(), m.group(3).lower()
        if not objects.is_object_word(noun, labels):
            continue
        value = _SMALL.get(raw) or int(raw)
        dets = objects.matching(noun, evidence)
        if not dets and not objects.knows(evidence, noun):
            reason = f"no detector that knows {noun!r} ran, so {value} {noun} cannot be checked"
            out.append((False, [], reason, "count", noun, raw))
            continue
        ok = len(dets) == value
        reason = f"{len(dets)} {noun} detected" + ("" if ok else f", not {value}")
        out.append((ok, [d.id for d in dets], reason, "count", noun, raw))
    return out


# Labels of receipt and form fields: a number claimed for one must sit on that field's line.
FIELD_WORDS = {"total", "subtotal", "tax", "vat", "gst", "change", "cash", "balance", "due", "tip", "discount",
               "fare", "deposit", "rounding", "rounded"}  # fmt: skip
_STOPWORDS = {"the", "and", "for", "with", "this", "that", "there", "are", "was", "were", "its", "it's", "has",
              "have", "number", "price", "cost", "costs", "amount", "shown", "shows", "says", "reads", "which",
              "image", "picture", "photo", "sign", "text", "value", "written", "printed", "listed", "one"}  # fmt: skip


def _read_tokens(evidence: list[Evidence]) -> dict[str, set[str]]:
    """Normalised tokens read by OCR, per image."""
    out: dict[str, set[str]] = {}
    for e in evidence:
        if e.tool in ("ocr", "zoom") and e.kind in ("word", "line"):
            out.setdefault(e.image, set()).update(norm(e.text).split())
    return out


def _number_checks(
    rest: str, words: list[str], evidence: list[Evidence], given: Given = Given()
) -> list[tuple]:
    """Numbers that are not counts, against OCR numbers on the line of the field the claim names."""
    counted = {m.start(1) for m in _COUNTED.finditer(rest) if m.group(1)[0].isdigit()}
    labels = {singular_label(e.text) for e in evidence if e.kind == "detection"}
    counted = {
        m.start(1)
        for m in _COUNTED.finditer(rest)
        if m.start(1) in counted and objects.is_object_word(m.group(3).lower(), labels)
    }
    values = [parse_number(m.group(1)) for m in _NUMBER.finditer(rest) if m.start(1) not in counted]
    values = [v for v in values if v not in given.numbers]  # "Part 1" of "the heading of Part 1"
    if not values:
        return []
    read = set().union(*_read_tokens(evidence).values()) if evidence else set()
    fields = {w for w in words if len(w) >= 3 and w not in _STOPWORDS and (w in FIELD_WORDS or w in read)}
    by_id = {e.id: e for e in evidence}
    out = []
    for value in values:
        hits = [i for v, i in ocr_numbers(evidence) if abs(v - value) < 1e-6]
        if fields:
            hits = [i for i in hits if _row_has(by_id[i], fields, evidence)]
        where = f" on a line with {'/'.join(sorted(fields))}" if fields else ""
        reason = f"number {value:g} " + (
            f"read by OCR{where}" if hits else f"not found in the evidence{where}"
        )
        out.append((bool(hits), hits[:3], reason, "number"))
    return out


def _row_has(e: Evidence, fields: set[str], evidence: list[Evidence]) -> bool:
    """Whether OCR text on the same row as `e` (itself included) carries one of the field words."""

    def has(t: Evidence) -> bool:
        toks = norm(t.text).split()
        return any(f in toks or (len(f) >= 4 and any(similarity(f, w) >= 0.8 for w in toks)) for f in fields)

    if has(e):
        return True
    if not e.box:
        return False
    mid = (e.box[1] + e.box[3]) / 2
    return any(
        t.image == e.image and t.box and t.box[1] <= mid <= t.box[3] and has(t)
        for t in evidence
        if t.tool in ("ocr", "zoom") and t.kind in ("line", "word") and t is not e
    )


def _object_checks(things: list[str], evidence: list[Evidence], absence: bool, text_read) -> list[tuple]:
    """Every thing a claim names must be in the evidence; an absence only where `objects.absence` vouches."""
    out = []
    for w in things:
        dets = objects.matching(w, evidence)
        if absence:
            a = objects.absence(evidence, w)
            if dets:
                out.append((False, [d.id for d in dets[:5]], f"{dets[0].text} detected", "presence"))
            else:  # unvouched: the detector may have missed it (not a contradiction)
                out.append((a.vouched, a.ids, f"no {w} detected ({a.why})", "absence"))
        elif dets:
            out.append((True, [d.id for d in dets[:5]], f"{dets[0].text} detected", "presence"))
        elif any(w in toks or objects.singular(w) in toks for toks in text_read.values()):
            continue  # the word is read on the image: the text check covers it
        else:
            out.append((False, [], f"nothing in the evidence shows a {w}", "object"))
    return out


# Words that carry no content of an answer: how sentences are built, and the words of a reading answer.
_FUNCTION_WORDS = """a an the this that these those it its it's is are was were be been being of on in at to for
    from by with and or but as there here they them their he she his her we you i me my our your which who
    what whose when where how yes also only just very so than then some any all each both one ones called named
    says say said reads read written printed shown shows show listed labelled labeled displayed text word words
    sign image picture photo name title heading caption answer appears appear visible see seen can could would
    will may might has have had do does did not no mostly mainly mostly about around probably clearly likely
    seems looks located contains shows there's it's that's"""
_FUNCTION = set(_FUNCTION_WORDS.split())


def _phrase_check(words: list[str], rest: str, evidence: list[Evidence], given: Given, labels) -> list[tuple]:
    """An answer's own words, unquoted ("Private hire.", "The title is Civil Service Rules."): what is
    left once the question's words, function words, colours, positions, object words and numbers are
    taken out is text the answer says the image holds, checked against the OCR words like a quote."""
    new = [
        w for w in words
        if w not in _FUNCTION and not given.says(w) and w not in COLOURS and w not in POSITIONS
        and not objects.is_object_word(w, labels)
    ]  # fmt: skip
    if not new or not any(len(w) >= 3 for w in new):
        return []
    # the words as written, in order, from the first new word to the last
    spans = [m for m in re.finditer(r"[a-z]+", rest, re.I)]
    low = [m.group(0).lower() for m in spans]
    first, last = low.index(new[0]), len(low) - 1 - low[::-1].index(new[-1])
    phrase = rest[spans[first].start() : spans[last].end()]
    tm = find_text(phrase, evidence)
    if tm.score >= QUOTE_MATCH:
        return [(True, tm.ids, f"text {phrase!r} matches OCR {tm.text!r} ({tm.score:.2f})", "quote")]
    near = f" (closest read: {tm.text!r}, {tm.score:.2f})" if tm.text else ""
    return [(False, tm.ids, f"text {phrase!r} was not read in the image{near}", "quote")]


def _mentions_cited(words: list[str], cited: list[Evidence]) -> bool:
    """A claim that repeats a content word of what it cites (a label, a colour, a metadata value)."""
    vocab = {w for e in cited for w in re.findall(r"[a-z0-9]+", e.text.lower()) if len(w) > 2}
    return bool(vocab & set(words))


_ABSTAIN = re.compile(
    r"\b(can ?not|can't|cannot|unable to|not able to) (tell|determine|see|read|say)\b|\bno (text|evidence)\b",
    re.I,
)
_FILLER = re.compile(r"^(sure|okay|ok|yes|no|certainly|of course|here is|here's|answer|the answer)\W*$", re.I)


def is_abstention(text: str) -> bool:
    return bool(_ABSTAIN.search(text))


def verify_answer(
    answer: str,
    evidence: list[Evidence],
    sizes: dict | None = None,
    suspicious: set[str] = frozenset(),
    question: str = "",
) -> list[ClaimRecord]:
    """Every claim of a model's answer, checked by what it adds to `question`. Abstentions and filler are
    not claims."""
    given = Given.of(question)
    out = []
    for text, cites in split_claims(answer):
        if _FILLER.match(text.strip()) or (is_abstention(text) and not _QUOTE.search(text)):
            continue
        out.append(verify_claim(text, cites, evidence, sizes, suspicious, given))
    return out
