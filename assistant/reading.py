"""Choosing the text a reading question means, from an image's full-recall OCR evidence.

OCR reads everything it can once per image; this module picks from that reading per question:

- readings of the same region are reconciled first: where OCR and a zoomed re-read disagree about one
  line, the fuller reading (the one whose words contain the other's), else the more confident, stands,
  whichever tool ran last;
- a question that names the type of what it wants (an e-mail, a web address, a phone number, a date, a
  percentage, an amount of money, a quantity like "220ml", a code like "MU 2379", a number) gets a value
  of that type, preferring the one its label words point at ("table number" -> the value after "Table"
  on that line, beside it on the same row, or under it);
- a question that names a label ("which town is it twinned with", "the TO field") gets that line, with
  the text beside or under the label when the line is the label alone;
- otherwise the sign's own text: its large, central, confident lines in reading order, narrowed by the
  position and size words of the question ("at the top", "in large letters"), without web addresses or
  watermarks at the edges;
- a question about a person's name (a cashier, an author) or a place the text does not name has no
  answer here: `None`, and the assistant abstains.
"""

from __future__ import annotations

import re

from assistant import verify
from tools.evidence import Evidence, center_inside, near

_MONTH = r"(?:jan|feb|mar|apr|may|jun|jul|aug|sep|sept|oct|nov|dec)[a-z]*\.?"
# Value patterns of the answer types a question can name.
PATTERNS = {
    "email": r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+",
    "url": r"(?:https?://\S+|www\.\S+|\b[\w-]+\.(?:com|org|net|io|gov|edu|co\.\w+)\b\S*)",
    "phone": r"(?<![\w.])(?:\+\d{1,3}[\s-]?)?(?:\(\d{2,4}\)\s?|\d{2,4}[\s-])\d{3,4}[\s-]?\d{3,4}(?![\w.]|,\d)",
    "date": rf"\b(?:\d{{1,2}}[/.-]\d{{1,2}}[/.-]\d{{2,4}}|\d{{4}}[/.-]\d{{1,2}}[/.-]\d{{1,2}}|\d{{1,2}}\s*{_MONTH},?\s*\d{{2,4}}|"
    rf"{_MONTH}\s*\d{{1,2}},?\s*\d{{4}})\b|\d{{4}}年\d{{1,2}}月\d{{1,2}}日",
    "time": r"\b\d{1,2}[:.]\d{2}\s*(?:am|pm)?\b",
    "percent": r"\d+(?:[.,]\d+)?\s?%",
    "score": r"\b\d{1,3}\s?[-:–]\s?\d{1,3}\b",
    "quantity": r"\b\d+(?:[.,]\d+)?\s?(?:ml|l|cl|g|kg|mg|oz|lb|lbs|fl\.? ?oz)\b",
    "money": r"(?:[$€£¥￥₹₩]|\b(?:rm|usd|eur|gbp|sgd|rmb|s\$)\s?)\s?\d{1,3}(?:[,.' ]\d{3})*(?:[.,]\d{1,2})?"
    r"|(?<![\d.,:/-])\d{1,3}(?:[,' ]\d{3})*[.,]\d{2}(?![\d/-])|(?<![\d.,:/-])\d+[.,]\d{2}(?![\d/-])",
    "code": r"(?<![A-Za-z0-9-])(?:[A-Z]{1,4} ?-?\d{2,6}[A-Z]?|(?=(?:[A-Z-]*\d){3})(?=[0-9-]*[A-Z])[A-Z0-9]{1,5}(?:-[A-Z0-9]{1,6})+)"
    r"(?![A-Za-z0-9-])",
    "number": r"\b\d+(?:[.,]\d+)?\b",
    # a vehicle's plate: groups of capitals and digits, with at least one of each ("KA 05 MH 2031")
    "plate": r"(?<![\w-])(?=[A-Z0-9 -]*\d)(?=[A-Z0-9 -]*[A-Z])[A-Z0-9]{1,4}(?:[ -]?[A-Z0-9]{1,4}){1,4}(?![\w-])",
}
# Types written in capitals: matched case-sensitively ("MU 2379", not "mu 2379" inside a word).
CASED = {"code", "plate"}
# With its label beside it, a value may look plainer than it must without one (a phone number's digits).
AT_LABEL = {
    "phone": r"(?<![\w.])\+?\d[\d\s()-]{5,16}\d(?![\w.]|,\d)",
    # a document's number after its label may be digits alone ("Invoice No 60000053668"), not a date's part
    "code": r"(?<![\w/.-])(?=[A-Za-z0-9-]*\d)[A-Za-z0-9][A-Za-z0-9-]{2,}(?![\w/.-])",
}
# An amount no label points at is an amount only when its currency is marked.
MARKED_MONEY = r"(?:[$€£¥￥₹₩]|\b(?:rm|usd|eur|gbp|sgd|rmb|s\$)\s?)\s?\d{1,3}(?:[,.' ]\d{3})*(?:[.,]\d{1,2})?"
MARKED_MONEY += r"|(?<![\d.,])\d+(?:[,.' ]\d{3})*(?:[.,]\d{1,2})?\s?(?:元|圆|yuan|rmb|dollars?|euros?)"
# Question words -> the answer type they ask for (first match wins).
_TYPE_WORDS = [
    ("email", r"\be-?mail\b"),
    ("url", r"\b(website|web site|web address|url|homepage)\b"),
    ("phone", r"\b(phone|telephone|tel|fax|mobile number|contact number)\b"),
    ("percent", r"\b(percent|percentage)\b|%"),
    ("date", r"\b(date|what day|which day|when)\b"),
    ("time", r"\b(what time|opening hours|hours)\b"),
    ("score", r"\bscore\b"),
    ("quantity", r"\b(volume|net content|net weight|weight|capacity|how much (liquid|water))\b"),
    ("money", r"\b(price|cost|costs|fare|amount|dollars?|euros?|how much|paid|pay|fee|charge|total)\b"),
    (
        "code",
        r"\b(flight|train|bus|product|model|serial|invoice|order|receipt|ticket|item|reference|booking|"
        r"seat|gate|table|room|account|customer|member|article|part)\s*(number|no\.?|#|code|id)\b|\bcode\b",
    ),  # fmt: skip
    (
        "plate",
        r"\b(?:licen[cs]e|number|registration|car|vehicle)\s+plates?\b|\bplates?\s+number\b|\b(?:car|vehicle)(?:'s)?\s+registration\b",
    ),
    ("number", r"\bnumbers?\b|\bdigits?\b"),
]
# Names the text itself carries (a shop's name on its receipt, a town on its sign) and names it cannot
# carry unless a label says so (who served, who wrote, what a beach is called).
_PEOPLE = r"(cashier|author|writer|waiter|waitress|server|driver|customer|owner|person|man|woman|player|artist|photographer|manager|staff|employee)"
_PERSON = rf"\bwho\b|\bwhose\b|\bname of (?:the |this |that )?{_PEOPLE}\b|\b{_PEOPLE}(?:'s)? name\b"
_TEXT_CUES = r"\b(say|says|written|write|printed|print|listed|shown|show|text|sign|label|logo|banner|board|poster|receipt|bill|invoice|ticket|pass|page|heading|title|caption|letters?|word|words|read|menu|jersey|wall|plate|card|book cover)\b"  # fmt: skip
_BUSINESS = {
    "restaurant", "store", "shop", "bistro", "cafe", "café", "bar", "hotel", "bank", "company", "brand", "business",
    "merchant", "theatre", "theater", "station", "town", "city", "village", "street", "road", "product", "sponsor",
    "airline", "school", "mall", "market", "pub", "pharmacy", "supermarket", "museum", "outlet", "retailer", "seller",
    "vendor", "destination",
}  # fmt: skip
# Words that never name a label: question words, the kinds of things text is on, types and verbs.
_GENERIC_WORDS = """a an the this that these those is are was were be been of on in at to for from by with and or it its what
    which who whose whom how when where why does do did can could would will there here image picture photo
    shown show printed print written write listed list say says said read reads text sign label name named
    called word words letter letters appear appears mentioned mention given displayed display visible see
    receipt bill invoice ticket pass document page card paper poster banner board logo number no amount
    price cost total value type kind large big small top bottom left right middle center centre upper lower
    corner side front back above below near under over one only first last main full english according field"""
_GENERIC = set(_GENERIC_WORDS.split())
_COLOURS = set(verify.COLOURS)


def wanted_type(question: str) -> str:
    """The answer type a question names ("" when it names none)."""
    q = question.lower()
    for name, pattern in _TYPE_WORDS:
        if re.search(pattern, q):
            return name
    return ""


def label_words(question: str) -> list[str]:
    """Words of the question that may label the answer in the text: content words, words written in
    capitals ("the TO field") and text in other scripts, without question words, types, places on the
    image, colours and the kinds of things text is on."""
    caps = [w.lower() for w in re.findall(r"\b[A-Z]{2,}\b", question) if w != "I"]
    # A name the question already knows ("which town is Epping twinned with") is its subject, not a label.
    names = {w.lower() for w in re.findall(r"(?<=[a-z,] )[A-Z][a-z]+[A-Za-z]*", question)}
    other = re.findall(r"[^\x00-\u024f\s\W]{2,}", question)  # CJK and other scripts, as written
    words = [w for w in re.findall(r"[a-z][a-z'-]+", question.lower()) if len(w) >= 3]
    words = [w.strip("'s") if w.endswith("'s") else w for w in words]
    keep = [
        w for w in words
        if w not in _GENERIC and w not in _COLOURS and w not in names and not re.fullmatch(_TYPE_ANY, w)
    ]  # fmt: skip
    return list(dict.fromkeys(caps + keep + other))


_TYPE_ANY = r"e-?mail|website|url|phone|telephone|percent|percentage|date|day|volume|content|weight|dollars?|paid|pay|digits?|numbers?|code|score"  # fmt: skip


# ---- how sure a reading is ------------------------------------------------------------------------

# A reading that only one OCR engine made, with less confidence than this, is not shown as fact: it is
# shown marked as uncertain (`doubt`). Two engines agreeing on a line is independent confirmation
# whatever their scores; a lone reading below 0.8 is where the misreads of scene text are (a logo's
# letters, a stylised word, a cut-off line), the level OCR systems commonly treat as unreliable.
# Words where the engines disagree are not doubted by themselves: fusion picks the better reading there,
# and it is usually right (`tools.ocr_fuse`).
SURE_READING = 0.80


def engines(e: Evidence) -> set[str]:
    """The OCR engines that made this reading (fusion records them on lines, and one engine on words)."""
    return set(e.extra.get("engines") or ([e.extra["engine"]] if e.extra.get("engine") else []))


def doubt(e: Evidence) -> str:
    """Why this OCR reading (a word or a line) is uncertain, in words for the user; "" when it is not."""
    if e.tool not in ("ocr", "zoom") or e.kind not in ("word", "line") or e.confidence >= SURE_READING:
        return ""
    engines_ = engines(e)
    if len(engines_) >= 2:
        return ""
    who = f"only {next(iter(engines_))} read it" if engines_ else "one OCR engine read it"
    return f"{who}, with confidence {e.confidence:.2f}"


def doubts(readings: list[Evidence]) -> str:
    """Why these readings are uncertain, in one phrase (the least sure one speaks for several)."""
    unsure = [e for e in readings if doubt(e)]
    if len(unsure) <= 1:
        return doubt(unsure[0]) if unsure else ""
    return f"one OCR engine alone read each, with confidence {min(e.confidence for e in unsure):.2f} at least"


# ---- the lines -----------------------------------------------------------------------------------


def text_lines(evidence: list[Evidence]) -> list[Evidence]:
    """OCR and zoom lines worth reading, one reading per region, in reading order per image."""
    lines = [e for e in evidence if e.kind == "line" and e.tool in ("ocr", "zoom") and meaningful(e)]
    groups: list[list[Evidence]] = []
    for e in lines:
        for g in groups:
            if any(_same_region(e, o) for o in g):
                g.append(e)
                break
        else:
            groups.append([e])
    kept = [_reconcile(g) for g in groups]
    return sorted(kept, key=lambda e: (e.image, e.box[1] if e.box else 0, e.box[0] if e.box else 0))


def meaningful(e: Evidence) -> bool:
    """Not texture read as letters ("aa a", "|l"): a word of 3+ letters or digits, or a sure short word."""
    tokens = [re.sub(r"\W", "", t) for t in e.text.split()]
    return any(len(t) >= 3 for t in tokens) or (e.confidence >= 0.9 and any(len(t) >= 2 for t in tokens))


def _same_region(a: Evidence, b: Evidence) -> bool:
    """Two readings of one line: boxes sharing most of the smaller one (nearly all of it for one tool's
    lines, which only overlap that much when two calls read the same line)."""
    if a.image != b.image or not a.box or not b.box:
        return False
    ix = min(a.box[2], b.box[2]) - max(a.box[0], b.box[0])
    iy = min(a.box[3], b.box[3]) - max(a.box[1], b.box[1])
    if ix <= 0 or iy <= 0:
        return False
    small = min((a.box[2] - a.box[0]) * (a.box[3] - a.box[1]), (b.box[2] - b.box[0]) * (b.box[3] - b.box[1]))
    return ix * iy >= (0.5 if a.tool != b.tool else 0.8) * max(small, 1e-9)


def _contains_words(big: str, small: str) -> bool:
    """Every word of `small` is (up to OCR errors) a word of `big`."""
    bw, sw = verify.norm(big).split(), verify.norm(small).split()
    return bool(sw) and all(any(verify.similarity(s, b) >= 0.75 for b in bw) for s in sw)


def _reconcile(group: list[Evidence]) -> Evidence:
    """The reading of a region that contains the others' words; else the most confident."""
    if len(group) == 1:
        return group[0]

    def score(e: Evidence):
        covers = sum(1 for o in group if o is not e and _contains_words(e.text, o.text))
        return (covers, e.confidence, len(verify.norm(e.text)))

    return max(group, key=score)


def _h(e: Evidence) -> float:
    return (e.box[3] - e.box[1]) if e.box else 0.0


def same_row(a: Evidence, b: Evidence) -> bool:
    """Lines of one image whose vertical extents overlap by half the smaller height."""
    if a.image != b.image or not a.box or not b.box:
        return False
    overlap = min(a.box[3], b.box[3]) - max(a.box[1], b.box[1])
    return overlap >= 0.5 * min(_h(a), _h(b))


def beside(line: Evidence, lines: list[Evidence]) -> list[Evidence]:
    """Lines on the same row to the right of `line`, nearest first."""
    out = [e for e in lines if e is not line and same_row(line, e) and e.box[0] >= line.box[0] + 0.5 * (line.box[2] - line.box[0])]  # fmt: skip
    return sorted(out, key=lambda e: e.box[0])


def below(line: Evidence, lines: list[Evidence], n: int = 2) -> list[Evidence]:
    """Up to `n` lines under `line` (within three line heights) that share some of its columns."""
    if not line.box:
        return []
    h = max(_h(line), 1.0)
    out = [
        e for e in lines
        if e is not line and e.image == line.image and e.box and line.box[3] - 0.3 * h <= e.box[1] <= line.box[3] + 3 * h
        and min(e.box[2], line.box[2] + h) - max(e.box[0], line.box[0] - h) > 0 and not same_row(line, e)
    ]  # fmt: skip
    return sorted(out, key=lambda e: (e.box[1], e.box[0]))[:n]


def has_label(line: Evidence, labels: list[str]) -> int:
    """How many label words the line carries (a word of 3+ letters matching up to OCR errors, or CJK text)."""
    words = verify.norm(line.text).split()
    n = 0
    for lab in labels:
        if not lab.isascii():
            n += lab in line.text
        elif any(w == lab or (len(lab) >= 4 and verify.similarity(w, lab) >= 0.85) for w in words):
            n += 1
    return n


def _after_label(line: Evidence, labels: list[str]) -> str:
    """The text of a line after its last label word ("Table: A10" -> "A10")."""
    text = line.text
    end = 0
    for lab in labels:
        pattern = rf"(?<![a-z]){re.escape(lab)}(?![a-z])" if lab.isascii() else re.escape(lab)
        m = re.search(pattern, text, re.I) if len(lab) >= 2 else None
        if m:
            end = max(end, m.end())
    return text[end:].strip(" :#.-\t") if end else ""


def _words_in(line: Evidence, evidence: list[Evidence]) -> list[Evidence]:
    """The word records of a line (same tool and image, centre inside its box), left to right."""
    if not line.box:
        return []
    out = []
    for w in evidence:
        same = w.kind == "word" and w.tool == line.tool and w.image == line.image
        if same and w.box and center_inside(w.box, line.box):
            out.append(w)
    return sorted(out, key=lambda w: w.box[0])


def under_label(line: Evidence, labels: list[str], lines: list[Evidence], evidence: list[Evidence]):
    """A form's value: on a header row ("目的地 TO  FROM  GATE"), the words of the next line that sit
    under the label's column (each word goes to the header word nearest above it). (text, line) or None."""
    header = _words_in(line, evidence)
    at = [i for i, w in enumerate(header) if has_label(w, labels)]
    nxt = below(line, lines, 1)
    if not at or not nxt or len(header) < 2:
        return None
    group = {at[0]} | ({at[0] - 1} if at[0] > 0 and not header[at[0] - 1].text.isascii() else set())
    values = []
    for w in _words_in(nxt[0], evidence):
        cx = (w.box[0] + w.box[2]) / 2
        nearest = min(range(len(header)), key=lambda i: abs((header[i].box[0] + header[i].box[2]) / 2 - cx))
        if nearest in group:
            values.append(w.text)
    return (" ".join(values), nxt[0]) if values else None


# ---- choosing ------------------------------------------------------------------------------------


def narrow(lines: list[Evidence], question: str) -> list[Evidence]:
    """The lines a question's position and size words point at (all of them when none do)."""
    q = question.lower()
    out = lines
    boxes = [e for e in lines if e.box]
    if not boxes:
        return lines
    y0, y1 = min(e.box[1] for e in boxes), max(e.box[3] for e in boxes)
    x0, x1 = min(e.box[0] for e in boxes), max(e.box[2] for e in boxes)

    def cy(e):
        return ((e.box[1] + e.box[3]) / 2 - y0) / max(y1 - y0, 1)

    def cx(e):
        return ((e.box[0] + e.box[2]) / 2 - x0) / max(x1 - x0, 1)

    picks = [
        (r"\b(top|upper|above|heading|header)\b", lambda e: cy(e) <= 0.4),
        (r"\b(bottom|lower|foot|footer)\b", lambda e: cy(e) >= 0.6),
        (r"\bleft\b", lambda e: cx(e) <= 0.45),
        (r"\bright\b", lambda e: cx(e) >= 0.55),
    ]
    for pattern, keep in picks:
        if re.search(pattern, q):
            sub = [e for e in out if e.box and keep(e)]
            out = sub or out
    if re.search(r"\b(large|big|biggest|largest|huge|headline|title|heading)\b", q) and out:
        tallest = max(_h(e) for e in out)
        out = [e for e in out if _h(e) >= 0.75 * tallest]
    return out


# A line that says where something goes ("to Harbourfront", "towards Joo Koon", "→ Exit"), not what the
# place or thing is called: a name question does not take it as the name.
_DIRECTION = re.compile(r"^\s*(?:to|towards?|for|via|bound for|[→←↑↓➔>])\s+\S|[→←➔]\s*$", re.I)


def is_direction(e: Evidence) -> bool:
    """Does the line point somewhere ("to X", "towards X", "for X", an arrow) rather than name something?"""
    return bool(_DIRECTION.search(e.text))


_EDGE_JUNK = re.compile(
    r"(https?://|www\.|\.com\b|\.net\b|\.org\b|@|©|\(c\)|copyright|shutterstock|alamy|getty)", re.I
)


def main_text(lines: list[Evidence], sizes: dict) -> list[Evidence]:
    """The text's own large, confident lines (and the lines of the same plate), in reading order."""
    lines = [e for e in lines if e.confidence >= 0.5]
    plain = [e for e in lines if not _EDGE_JUNK.search(e.text)] or lines
    if not plain:
        return []
    tallest = max((_h(e) for e in plain), default=0)
    best = max(e.confidence for e in plain)
    keep = [
        e for e in plain if (not tallest or _h(e) >= 0.5 * tallest) and e.confidence >= max(0.55, best - 0.3)
    ]
    for e in plain:  # a smaller line right next to a kept one is on the same plate: it belongs to the text
        if e not in keep and (not tallest or _h(e) >= 0.3 * tallest) and any(_near(e, k) for k in keep):
            keep.append(e)
    return sorted(keep, key=lambda e: (e.image, e.box[1] if e.box else 0, e.box[0] if e.box else 0))[:12]


def _near(a: Evidence, b: Evidence) -> bool:
    if a.image != b.image or not a.box or not b.box:
        return False
    return near(a.box, b.box, 1.5 * max(_h(a), _h(b)))


def _prominence(e: Evidence) -> float:
    return _h(e) * (0.5 + e.confidence)


def _flags(kind: str) -> int:
    return 0 if kind in CASED else re.I


def holds_type(kind: str, text: str) -> bool:
    """`text` holds a value of the type (an e-mail address for "email"), as a label beside it allows."""
    flags = _flags(kind)
    return bool(
        re.search(PATTERNS[kind], text, flags) or re.search(AT_LABEL.get(kind, PATTERNS[kind]), text, flags)
    )


def find_typed(kind: str, lines: list[Evidence], pool: list[Evidence], labels: list[str]):
    """(value, evidence) of the type asked for: at the label the question names, else the most
    prominent one in the lines its position words point at. None when there is none."""
    flags = _flags(kind)
    pattern = re.compile(PATTERNS[kind], flags)
    at_label = re.compile(AT_LABEL.get(kind, PATTERNS[kind]), flags)
    labelled = sorted((e for e in lines if has_label(e, labels)), key=lambda e: -has_label(e, labels))
    for line in labelled:
        after = _after_label(line, labels)
        for text, ev in [(after, line)] + [(e.text, e) for e in beside(line, lines) + below(line, lines)]:
            m = pattern.search(text) or at_label.search(
                text
            )  # the type's own form first: "MU 2379", not "2379"
            if m:
                return m.group(0).strip(), ev
    if labels and not labelled and kind in ("money", "number", "score", "time"):
        # "what fare was paid": a number no label of the question points at is not the fare
        if kind != "money":
            return None
        pattern = re.compile(MARKED_MONEY, re.I)
    heights = sorted(_h(e) for e in lines)
    small = 0.4 * heights[len(heights) // 2] if len(heights) >= 4 else 0.0  # fine print: a camera's stamp
    found = [(m.group(0).strip(), e) for e in pool if _h(e) >= small for m in pattern.finditer(e.text)]
    if not found:
        return None
    return max(found, key=lambda t: _prominence(t[1]))


def asks_person_or_unnamed(question: str, labels: list[str]) -> bool:
    """A question about a name the text carries only if a label says so: a person, or a named thing
    ("this beach") asked about without pointing at any text."""
    q = question.lower()
    if re.search(_PERSON, q):
        return True
    m = re.search(r"\bname of (?:the |this |that )?([a-z]+)", q)
    return bool(m and m.group(1) not in _BUSINESS and not re.search(_TEXT_CUES, q))


_TYPE_NAMES = {"email": "e-mail address", "url": "web address", "phone": "phone number", "percent": "percentage",
               "quantity": "quantity", "money": "amount of money", "code": "code or number", "number": "number",
               "plate": "licence plate number"}  # fmt: skip


def why_not(question: str, evidence: list[Evidence]) -> str:
    """Why a reading question has no answer in the evidence, in words for the user."""
    if not any(e.tool in ("ocr", "zoom") and e.kind in ("word", "line") for e in evidence):
        return "no text was read in the image."
    labels = label_words(question)
    if asks_person_or_unnamed(question, labels):
        what = next((w for w in labels if w.isascii()), "name")
        return f"the text read in the image names no {what}."
    kind = wanted_type(question)
    if kind:
        what = _TYPE_NAMES.get(kind, kind)
        at = [w for w in labels if w.isascii()][:2]
        return f"no {what}{' for ' + ' '.join(at) if at else ''} was read in the image."
    return "nothing in the text read from the image answers it."
