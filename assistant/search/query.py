"""A search query read as words and structured filters.

"the receipt from the bakery over 20 euros", "photos with two people and a dog", "a green sign from 2014",
"the sign that says EXIT": the filters are the things a query states that the index holds as facts:
- objects with a count ("two people" -> person, 2; "a dog" -> dog, at least 1), by the detector's classes;
- colours ("green" -> the colour family of the image's dominant colours);
- money with a comparison ("over 20 euros" -> > 20, "under $5", "exactly 12.50");
- dates ("in 2018", "before March 2015", "after 2013", "on 2018-03-12");
- quoted phrases ('says "EXIT"') that the text must contain.
What is left, without stop words, is what full-text search reads; the embeddings read the whole query.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from assistant import objects
from assistant.text import STOPWORDS, singular

NUMBER_WORDS = {
    "a": 1, "an": 1, "one": 1, "single": 1, "two": 2, "pair": 2, "couple": 2, "three": 3, "four": 4, "five": 5,
    "six": 6, "seven": 7, "eight": 8, "nine": 9, "ten": 10, "several": 0, "some": 0, "many": 0,
}  # fmt: skip
COLOURS = {
    "red", "green", "blue", "yellow", "orange", "purple", "pink", "brown", "black", "white", "gray", "grey",
    "olive", "teal", "navy", "beige", "gold", "silver", "maroon", "cyan", "magenta", "violet",
}  # fmt: skip
COLOUR_FAMILY = {"grey": "gray", "silver": "gray", "navy": "blue", "maroon": "red", "gold": "yellow",
                 "beige": "brown", "violet": "purple", "magenta": "pink", "cyan": "teal"}  # fmt: skip
# Words of a search request, not of what is sought.
SEARCH_WORDS = {
    "photo", "photos", "picture", "pictures", "image", "images", "shot", "find", "show", "showing", "shows",
    "with", "that", "says", "say", "saying", "reads", "read", "written", "where", "which", "taken", "from",
    "the", "one", "any", "all", "some", "there", "over", "under", "above", "below", "more", "less", "than",
}  # fmt: skip
_CUR = r"(?:\$|€|£|¥|rm|eur|euros?|usd|dollars?|pounds?|gbp|ringgit|yen|sgd|s\$)"
_OP = r"(over|above|more than|greater than|at least|under|below|less than|at most|cheaper than|exactly|of|for|costing|>=|<=|>|<|=)"
MONEY_Q = re.compile(rf"(?i)\b{_OP}\s*{_CUR}?\s*(\d+(?:[.,]\d{{1,2}})?)\s*{_CUR}?(?!\w)")
MONTHS = [
    "january",
    "february",
    "march",
    "april",
    "may",
    "june",
    "july",
    "august",
    "september",
    "october",
    "november",
    "december",
]
_MON = r"(jan(?:uary)?|feb(?:ruary)?|mar(?:ch)?|apr(?:il)?|may|june?|july?|aug(?:ust)?|sep(?:t(?:ember)?)?|oct(?:ober)?|nov(?:ember)?|dec(?:ember)?)"
DATE_Q = re.compile(rf"(?i)\b(in|from|on|during|before|after|since|until)\s+(?:{_MON}\s+)?((?:19|20)\d\d)\b")
ISO_Q = re.compile(r"\b((?:19|20)\d\d)-(\d\d)-(\d\d)\b")
QUOTED = re.compile(r"[\"“”']([^\"“”']{2,})[\"“”']")


@dataclass
class ObjectWant:
    word: str  # as the query says it ("people")
    classes: set[str]  # detector classes it means ({"person"})
    count: int | None  # None: present at all


@dataclass
class Query:
    text: str  # the query as typed
    words: list[str] = field(default_factory=list)  # content words for full-text search
    phrases: list[str] = field(default_factory=list)  # quoted: the text must hold them
    objects: list[ObjectWant] = field(default_factory=list)
    colours: list[str] = field(default_factory=list)  # colour families
    money: tuple[str, float] | None = None  # (op: > >= < <= ==, value)
    date: tuple[str, str, str] | None = None  # (op, first day, last day) as YYYY-MM-DD

    @property
    def has_filters(self) -> bool:
        return bool(self.objects or self.colours or self.money or self.date or self.phrases)

    def describe(self) -> dict:
        return {
            "words": self.words,
            "phrases": self.phrases,
            "objects": [
                {"word": o.word, "classes": sorted(o.classes), "count": o.count} for o in self.objects
            ],
            "colours": self.colours,
            "money": list(self.money) if self.money else None,
            "date": list(self.date) if self.date else None,
        }


def colour_family(name: str) -> str:
    """'dark green' -> 'green', 'light grey' -> 'gray'."""
    last = name.lower().split()[-1] if name.strip() else name
    return COLOUR_FAMILY.get(last, last)


def parse(text: str) -> Query:
    q = Query(text=text)
    rest = text
    q.phrases = [m.strip() for m in QUOTED.findall(text)]
    m = MONEY_Q.search(rest)
    if m:
        q.money = (_money_op(m.group(1)), float(m.group(2).replace(",", ".")))
        rest = rest[: m.start()] + " " + rest[m.end() :]
    q.date, rest = _date(rest)
    tokens = re.findall(r"[A-Za-z][A-Za-z'-]*|\d+", rest)
    used: set[int] = set()
    for i, tok in enumerate(tokens):
        low = tok.lower()
        if low in COLOURS:
            q.colours.append(COLOUR_FAMILY.get(low, low))
            used.add(i)
            continue
        if low in STOPWORDS or low in SEARCH_WORDS or low in NUMBER_WORDS or low.isdigit():
            continue
        classes = objects.classes_for(low) & set(objects.COCO_CLASSES)
        if classes and objects.is_object_word(low):
            count = _count_before(tokens, i)
            q.objects.append(ObjectWant(low, classes, count))
    for i, tok in enumerate(tokens):
        low = tok.lower()
        if i in used or low in STOPWORDS or low in SEARCH_WORDS or low in NUMBER_WORDS or len(low) < 2:
            continue
        q.words.append(low)
    return q


def _count_before(tokens: list[str], i: int) -> int | None:
    """The count a noun is given: 'two people', 'three small dogs', '2 cars'; 'a dog' is 'at least one'."""
    for back in (1, 2):
        if i - back < 0:
            break
        t = tokens[i - back].lower()
        if t.isdigit():
            return int(t)
        if t in NUMBER_WORDS:
            n = NUMBER_WORDS[t]
            plural_noun = singular(tokens[i].lower()) != tokens[i].lower() or tokens[i].lower() == "people"
            return n if (n > 1 or plural_noun) and n else None
    return None


def _money_op(word: str) -> str:
    w = word.lower()
    if w in ("over", "above", "more than", "greater than", ">"):
        return ">"
    if w in ("at least", ">="):
        return ">="
    if w in ("under", "below", "less than", "cheaper than", "<"):
        return "<"
    if w in ("at most", "<="):
        return "<="
    return "=="


def _date(rest: str) -> tuple[tuple[str, str, str] | None, str]:
    m = ISO_Q.search(rest)
    if m:
        day = m.group(0)
        return ("in", day, day), rest.replace(day, " ")
    m = DATE_Q.search(rest)
    if not m:
        return None, rest
    word, mon, year = m.group(1).lower(), m.group(2), int(m.group(3))
    if mon:
        n = next(i for i, name in enumerate(MONTHS, 1) if name.startswith(mon.lower()[:3]))
        first, last = f"{year:04d}-{n:02d}-01", f"{year:04d}-{n:02d}-31"
    else:
        first, last = f"{year:04d}-01-01", f"{year:04d}-12-31"
    op = {"before": "before", "until": "before", "after": "after", "since": "after"}.get(word, "in")
    return (op, first, last), rest[: m.start()] + " " + rest[m.end() :]


def money_ok(money: tuple[str, float], value: float) -> bool:
    op, want = money
    return {
        ">": value > want,
        ">=": value >= want,
        "<": value < want,
        "<=": value <= want,
        "==": abs(value - want) < 0.005,
    }[op]


def date_ok(date: tuple[str, str, str], day: str) -> bool:
    op, first, last = date
    if op == "before":
        return day < first
    if op == "after":
        return day > last
    return first <= day <= last
