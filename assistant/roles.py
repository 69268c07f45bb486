"""Answer roles: what a question wants, and what type a piece of text is, decided the same way for both.

The first step of the answer pipeline (role -> candidates -> ranking -> check -> compose). A question
asks for a role: a person's name, an organisation's or shop's name, a place, a year, a date, a time, an
amount of money, a quantity with its unit, a phone number, an e-mail or web address, a code, a plate, a
number, the words of a sign or heading, or a phrase. Every candidate answer, from the model's draft or
from the evidence, is typed by `types_of`, and `conflict` says when its type contradicts the role (a web
address for a name, an address for a shop, a price for a year): such a candidate is never shown as
verified. Qualifiers of the question ("at the bottom", "the small sign", "in red letters") narrow the
evidence later (`assistant.reading.qualify`); they are parsed here, once.

A question's kind follows from its role too: "how many miles is it to X" wants a quantity read from the
text, not a count of detected objects, because a mile is a unit and not a thing (`reads_a_number`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from assistant.text import singular

_MONTH = r"(?:jan|feb|mar|apr|may|jun|jul|aug|sep|sept|oct|nov|dec)[a-z]*\.?"
# Value patterns of the typed roles: one definition for questions, drafts and evidence alike.
PATTERNS = {
    "email": r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+",
    "url": r"(?:https?://\S+|www\.\S+|\b[\w-]+\.(?:com|org|net|io|gov|edu|co\.\w+)\b\S*)",
    "phone": r"(?<![\w.])(?:\+\d{1,3}[\s-]?)?(?:\(\d{2,4}\)\s?|\d{2,4}[\s-])\d{3,4}[\s-]?\d{3,4}(?![\w.]|,\d)",
    "date": rf"\b(?:\d{{1,2}}[/.-]\d{{1,2}}[/.-]\d{{2,4}}|\d{{4}}[/.-]\d{{1,2}}[/.-]\d{{1,2}}|\d{{1,2}}\s*{_MONTH},?\s*\d{{2,4}}|"
    rf"{_MONTH}\s*\d{{1,2}},?\s*\d{{4}})\b|\d{{4}}年\d{{1,2}}月\d{{1,2}}日",
    "time": r"\b\d{1,2}[:.]\d{2}\s*(?:am|pm)?\b",
    "year": r"(?<![\d.,/-])(?:1[5-9]\d\d|20\d\d)(?![\d.,/-]\d)",
    "percent": r"\d+(?:[.,]\d+)?\s?%",
    "score": r"\b\d{1,3}\s?[-:–]\s?\d{1,3}\b",
    "quantity": r"\b\d+(?:[.,]\d+)?\s?(?:ml|l|cl|g|kg|mg|oz|lb|lbs|fl\.? ?oz|km|m|cm|mm|mi|miles?|kms?|litres?|liters?)\b",
    "money": r"(?:[$€£¥￥₹₩]|\b(?:rm|usd|eur|gbp|sgd|rmb|s\$)\s?)\s?\d{1,3}(?:[,.' ]\d{3})*(?:[.,]\d{1,2})?"
    r"|(?<![\d.,:/-])\d{1,3}(?:[,' ]\d{3})*[.,]\d{2}(?![\d/-])|(?<![\d.,:/-])\d+[.,]\d{2}(?![\d/-])",
    "code": r"(?<![A-Za-z0-9-])(?:[A-Z]{1,4} ?-?\d{2,6}[A-Z]?|(?=(?:[A-Z-]*\d){3})(?=[0-9-]*[A-Z])[A-Z0-9]{1,5}(?:-[A-Z0-9]{1,6})+)"
    r"(?![A-Za-z0-9-])",
    "number": r"\b\d{1,3}(?:,\d{3})+(?:\.\d+)?\b|\b\d+(?:[.,]\d+)?\b",
    # a vehicle's plate: groups of capitals and digits, with at least one of each ("KA 05 MH 2031")
    "plate": r"(?<![\w-])(?=[A-Z0-9 -]*\d)(?=[A-Z0-9 -]*[A-Z])[A-Z0-9]{1,4}(?:[ -]?[A-Z0-9]{1,4}){1,4}(?![\w-])",
}
# Types written in capitals: matched case-sensitively ("MU 2379", not "mu 2379" inside a word).
CASED = {"code", "plate"}
# With its label beside it, a value may look plainer than it must without one (a phone number's digits).
AT_LABEL = {
    "phone": r"(?<![\w.])\+?\d[\d\s()-]{5,16}\d(?![\w.]|,\d)",
    # an amount at its label may lack decimals and currency ("CHANGE DUE 3,000")
    "money": r"(?<![\w.,/-])\d{1,3}(?:[,.]\d{3})+(?:[.,]\d{1,2})?(?![\w/-])|(?<![\w.,/:-])\d+[.,]\d{2}(?![\d/-])",
    # a document's number after its label may be digits alone ("Invoice No 60000053668"), not a date's part
    "code": r"(?<![\w/.-])(?=[A-Za-z0-9-]*\d)[A-Za-z0-9][A-Za-z0-9-]{2,}(?![\w/.-])",
}
TYPED = set(PATTERNS)
NAMES = {"person", "org", "place"}
TEXT = {"words", "phrase"}

# Units, and what only text counts (a record's tracks, a disk's notes): a question that counts one ("how many miles", "how many litres") reads a quantity from the text.
UNITS = {
    "mile", "km", "kilometre", "kilometer", "metre", "meter", "foot", "feet", "yard", "inch", "litre",
    "liter", "gallon", "ml", "gram", "kilogram", "kg", "pound", "ounce", "calorie", "minute", "hour",
    "second", "day", "week", "month", "year", "page", "percent", "degree", "volt", "watt", "byte",
    "megabyte", "gigabyte", "dollar", "euro", "cent", "track", "note", "mph", "kph",
}  # fmt: skip

# What text counts without a unit of measure: "32 tracks", "110,000 notes", "300 pages".
_COUNTED_IN_TEXT = {"track", "note", "page"}
# Question words -> the typed role they ask for (the first match wins).
_TYPE_WORDS = [
    ("email", r"\be-?mail\b"),
    ("url", r"\b(website|web site|web address|url|homepage)\b"),
    ("phone", r"\b(phone|telephone|tel|fax|mobile number|contact number)\b"),
    ("percent", r"\b(percent|percentage)\b|%"),
    (
        "year",
        r"\b(what|which|in what|in which) year\b|\bwhat year\b|\b(founded|established|built|since when)\b",
    ),
    ("date", r"\b(date|what day|which day|when)\b"),
    ("time", r"\b(what time|opening hours|hours)\b"),
    ("score", r"\bscore\b"),
    (
        "quantity",
        r"\b(volume|net content|net weight|weight|capacity|how much (liquid|water)|how (far|long|tall|high|heavy))\b",
    ),
    (
        "money",
        r"\b(price|cost|costs|fare|amount|dollars?|euros?|how much|paid|pay|fee|charge|total|change)\b",
    ),
    (
        "code",
        r"\b(flight|train|bus|product|model|serial|invoice|order|receipt|ticket|item|reference|booking|"
        r"seat|gate|table|room|account|customer|member|article|part)\s*(number|no\.?|#|code|id)\b|\bcode\b",
    ),  # fmt: skip
    (
        "plate",
        r"\b(?:licen[cs]e|number|registration|car|vehicle)\s+plates?\b|\bplates?\s+number\b|\b(?:car|vehicle)(?:'s)?\s+registration\b",
    ),
    ("number", r"\bnumbers?\b|\bdigits?\b|\bhow many\b"),
]
_PEOPLE = r"(cashier|author|writer|waiter|waitress|server|driver|customer|owner|person|man|woman|player|artist|photographer|manager|staff|employee|account holder|holder|signatory|sender|recipient|emperor|king|queen|president|mother|father|wife|husband|son|daughter)"
_PERSON = (
    rf"\bwho\b|\bwhose\b|\bname of (?:the |this |that |his |her |its )?{_PEOPLE}\b|\b{_PEOPLE}(?:'s)? name\b"
)
ORGS = {
    "restaurant", "store", "shop", "bistro", "cafe", "café", "bar", "hotel", "bank", "company", "brand", "business",
    "merchant", "theatre", "theater", "product", "sponsor", "airline", "school", "mall", "market", "pub", "pharmacy",
    "supermarket", "museum", "outlet", "retailer", "seller", "vendor", "newspaper", "magazine", "publisher",
    "manufacturer", "maker", "firm", "team", "club", "organisation", "organization", "corporation", "label",
    "station", "gallery", "galleries", "church", "university", "college", "hospital",
}  # fmt: skip
PLACES = {
    "town", "city", "village", "country", "street", "road", "destination", "place", "location", "county", "state",
    "region", "island", "avenue", "district", "suburb", "area", "terminal", "platform", "stop",
}  # fmt: skip
_WORDS = r"\b(say|says|said|written|write|writing|text|word|words|read|reads|printed|title|heading|headline|caption|logo|letters)\b"
_POSITIONS = {
    "top": r"\b(top|upper|above|header)\b",
    "bottom": r"\b(bottom|lower|foot|footer|footnotes?)\b",
    "left": r"\bleft\b",
    "right": r"\bright\b",
}
_LARGE = r"\b(large|big|biggest|largest|huge|headline|title|heading|main)\b"
_SMALL = r"\b(small|smaller|smallest|tiny|fine print)\b"


@dataclass(frozen=True)
class Role:
    """What a question wants read from the image."""

    kind: str  # a typed kind (PATTERNS), "person" | "org" | "place", or "words" | "phrase"
    noun: str = ""  # what the answer names or counts: "newspaper" (org), "mile" (a quantity's unit)
    where: tuple[str, ...] = ()  # position qualifiers: "top", "bottom", "left", "right"
    size: str = ""  # "large" | "small": the text's size among the lines read
    ink: str = ""  # the letters' colour the question names ("the red text")

    @property
    def typed(self) -> bool:
        return self.kind in TYPED


def role_of(question: str, ink: str = "") -> Role:
    """The role a reading question asks for, with its qualifiers."""
    q = question.lower()
    where = tuple(name for name, pattern in _POSITIONS.items() if re.search(pattern, q))
    size = "small" if re.search(_SMALL, q) else "large" if re.search(_LARGE, q) else ""
    counted = singular(counted_noun(q)) if counted_noun(q) else ""
    kind, noun = "", ""
    if counted in UNITS:
        kind, noun = ("number" if counted in _COUNTED_IN_TEXT else "quantity"), counted
    elif re.search(_PERSON, q):
        kind = "person"
    else:
        kind = next((name for name, pattern in _TYPE_WORDS if re.search(pattern, q)), "")
        if not kind:
            named = _named_thing(q)
            if named in ORGS:
                kind, noun = "org", named
            elif named in PLACES:
                kind, noun = "place", named
            elif re.search(_WORDS, q):
                kind = "words"
            else:
                kind = "phrase"
    if kind == "number" and counted:
        noun = counted
    return Role(kind, noun, where, size, ink)


def counted_noun(question: str) -> str:
    """The noun of "how many X" ("" when the question counts nothing)."""
    m = re.search(r"\bhow many ([a-z]+)", question.lower())
    return m.group(1) if m else ""


def reads_a_number(question: str) -> bool:
    """A "how many" question whose noun is a unit or a thing only text can count (miles, litres, tracks):
    a reading question, not a count of detected objects."""
    noun = counted_noun(question)
    return bool(noun) and singular(noun) in UNITS


def _named_thing(q: str) -> str:
    """The thing whose name a question asks for: "which newspaper", "the name of the shop", "what brand"."""
    for pattern in (
        r"\b(?:which|what) (?:\w+ )?([a-z]+)(?:'s)? name\b",
        r"\bname of (?:the |this |that )?([a-z]+)",
        r"\b([a-z]+)(?:'s)? name\b",
        r"\b(?:which|what) ([a-z]+)\b",
        r"\b(?:in|at|to|from) which ([a-z]+)\b",
    ):
        for m in re.finditer(pattern, q):
            word = singular(m.group(1))
            if word in ORGS or word in PLACES or m.group(1) in ORGS or m.group(1) in PLACES:
                return word if word in ORGS or word in PLACES else m.group(1)
    return ""


def flags(kind: str) -> int:
    return 0 if kind in CASED else re.I


def holds(kind: str, text: str, at_label: bool = False) -> bool:
    """`text` holds a value of the typed kind (as a label beside it allows, with `at_label`)."""
    if kind not in PATTERNS:
        return False
    if re.search(PATTERNS[kind], text, flags(kind)):
        return True
    return at_label and kind in AT_LABEL and bool(re.search(AT_LABEL[kind], text, flags(kind)))


_STREET_WORDS = {"street", "st", "road", "rd", "avenue", "ave", "lane", "ln", "drive", "dr", "boulevard", "blvd",
                 "way", "jalan", "jln", "floor", "suite", "unit"}  # fmt: skip
_STREET = r"\b(" + "|".join(sorted(_STREET_WORDS)) + r")\b\.?"


def types_of(text: str) -> set[str]:
    """The types a text holds: the typed kinds it matches, "address" (a number with a street word),
    "name" (words without digits or addresses: a candidate for a person, organisation or place)."""
    found = {
        k
        for k in ("email", "url", "phone", "date", "time", "year", "percent", "money", "quantity")
        if holds(k, text)
    }
    if re.search(r"\d", text) and re.search(_STREET, text, re.I):
        found.add("address")
    letters = re.findall(r"[^\W\d_]", text)
    if letters and not re.search(r"\d", text) and not found & {"email", "url"}:
        found.add("name")
    return found


def conflict(role: Role, text: str) -> str:
    """Why `text` cannot be the answer to `role` ("" when its type fits): a web address for a name, a price
    for a year, an address for a shop's name."""
    t = types_of(text)
    if role.kind in NAMES:
        # what is left once the values of other types are taken out must hold a name ("www.example.com"
        # leaves nothing; "Linn Electronics, 18720 Oxnard Street, Tarzana, 818 708-8131" leaves the place)
        rest = text
        for kind in ("email", "url", "phone", "money", "date", "percent", "time"):
            rest = re.sub(PATTERNS[kind], " ", rest, flags=flags(kind))
        if role.kind != "place":  # a street address is not the name of a shop or a person
            rest = re.sub(rf"\d[\w/-]*\s+(?:[^\W\d_]+\s+){{0,3}}{_STREET}", " ", rest, flags=re.I)
        words = [w for w in re.findall(r"[^\W\d_]{2,}", rest) if w.lower() not in _STREET_WORDS]
        if not words:
            bad = sorted(t - {"name", "year", "quantity"}) or ["name"]
            what = _A[bad[0]] if bad[0] != "name" else "no word"
            return (
                f"it is {what}, not {_A[role.kind]}"
                if bad[0] != "name"
                else f"it holds no word, so it is not {_A[role.kind]}"
            )
        return ""
    if role.kind == "year":
        other = sorted(t - {"name", "year"})
        return "" if "year" in t else f"it holds no year{' (it is ' + _A[other[0]] + ')' if other else ''}"
    if role.kind == "quantity" and role.noun and re.search(r"\d", text):
        return ""  # "how many litres": the number says it, the unit is the question's
    if role.typed and not holds(role.kind, text, at_label=True):
        return f"it holds no {NOUNS.get(role.kind, role.kind)}"
    return ""


# A typed role's value in words, without an article ("no e-mail address was read").
NOUNS = {"email": "e-mail address", "url": "web address", "phone": "phone number", "money": "amount of money",
         "percent": "percentage", "quantity": "quantity", "code": "code or number", "number": "number",
         "plate": "licence plate number", "score": "score", "date": "date", "time": "time", "year": "year"}  # fmt: skip
_A = {
    "email": "an e-mail address", "url": "a web address", "phone": "a phone number", "money": "an amount of money",
    "date": "a date", "address": "an address", "percent": "a percentage", "person": "a person's name",
    "org": "the name of an organisation or shop", "place": "a place's name", "year": "a year", "time": "a time",
    "quantity": "a quantity", "code": "a code or number", "number": "a number", "plate": "a licence plate number",
    "score": "a score", "name": "a name",
}  # fmt: skip


def describe(role: Role) -> str:
    """The role in words ("a person's name", "a year")."""
    return _A.get(role.kind, "the text asked for")
