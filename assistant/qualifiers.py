"""Which of the detected things a question means: the words that single one out.

A detector finds every person in a photo; "the player in the background", "the white pickup truck" and
"the man in the dark shirt" each mean one of them. The words around the question's noun are read here:

- **depth**: "in the background", "in the distance" mean the thing drawn smallest; "in the foreground",
  "nearest" the one drawn largest. A box is taken as the one meant only when it is clearly smaller (or
  larger) than every other box of its class: by `DEPTH_RATIO` in area;
- **colour**: "the white truck", "the man in the dark shirt", "the woman wearing a red coat". Each box of
  the class is measured (the colour tool on the object, apart from its background; on a garment's band
  of a person, `garment_rows`) and kept when the colour said covers much of it (`COLOUR_YES`), dropped
  when it covers little (`COLOUR_NO`); in between, or unmeasured, it stays undecided, and an answer
  that depends on it is uncertain.

Nothing here is keyed to a question: the words are general English, and each choice is one a person
could check on the image (which box, what it measured). Hand-written: no library parses these phrases
into a detection filter.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from tools.evidence import Evidence
from tools.ocr_layout import area

BACK_WORDS = r"in the (?:background|distance|back)|far away|farthest|furthest|behind (?:him|her|them)"
FRONT_WORDS = r"in the (?:foreground|front)|nearest|closest"
# A box is the one meant by "in the background" when every other box of its class is this much larger.
DEPTH_RATIO = 1.5

# Colour words a question may single a thing out by, and the tool's colour names each covers. A white
# thing in a photo measures "white" or "light gray"; "dark" and "light" cover every shade of their kind.
COLOUR_NAMES = {
    "red": {"red", "dark red"},
    "orange": {"orange", "light orange"},
    "yellow": {"yellow", "light yellow"},
    "green": {"green", "dark green", "light green", "olive"},
    "blue": {"blue", "dark blue", "light blue", "teal"},
    "purple": {"purple", "dark purple", "light purple"},
    "pink": {"pink", "light pink"},
    "brown": {"brown", "dark brown"},
    "black": {"black", "dark gray"},
    "white": {"white", "light gray"},
    "gray": {"gray", "dark gray", "light gray"},
    "grey": {"gray", "dark gray", "light gray"},
}
SHADES = ("dark", "light")
_COLOUR_RE = "|".join([*COLOUR_NAMES, *SHADES])

# Garments a person is singled out by or asked about, and the band of a standing person's box (0 top,
# 1 bottom) each covers. A person's box holds face, hair, arms and legs too: a shirt is measured where a
# shirt is. The bands are proportions of an adult standing upright (head about the top seventh).
GARMENT_ROWS = {
    "upper": (0.15, 0.55),  # shirt, jacket, coat, jersey, sweater, top, vest, suit, dress, uniform
    "lower": (0.5, 0.9),  # trousers, jeans, shorts, skirt
    "head": (0.0, 0.15),  # hat, cap, helmet
}
GARMENTS = {
    **{w: "upper" for w in ("shirt", "t-shirt", "tshirt", "jacket", "coat", "jersey", "sweater", "hoodie",
                            "vest", "top", "blouse", "suit", "dress", "uniform", "bib", "sweatshirt",
                            "cardigan", "jumper", "raincoat", "parka", "scarf")},
    **{w: "lower" for w in ("trousers", "pants", "jeans", "shorts", "skirt", "leggings")},
    **{w: "head" for w in ("hat", "cap", "helmet", "beanie", "hood")},
}  # fmt: skip
# A person's box that reaches the image's bottom edge is cut off there (a portrait, a crowd's front row):
# the upper body is then most of what it holds.
CUT_OFF_UPPER = (0.35, 1.0)

# The colour said covers at least this share of a box's measured pixels: the box is that colour; at most
# COLOUR_NO: it is not. (A white truck measures 44% white or light gray, its windows and tyres the rest.)
COLOUR_YES = 0.35
COLOUR_NO = 0.12

_GARMENT_RE = "|".join(sorted(GARMENTS, key=len, reverse=True))


@dataclass(frozen=True)
class Qualifier:
    """The words of a question that single out one of several things of a class."""

    depth: str = ""  # "back" | "front"
    colour: str = ""  # a key of COLOUR_NAMES, or "dark" / "light"
    garment: str = ""  # the garment the colour is of ("shirt"); "" when it is the thing's own
    # "are the two people in the foreground...": several things placed by depth ("back" | "front"), not
    # one box; with the number the question says (0: none said)
    group: str = ""
    number: int = 0

    def __bool__(self) -> bool:
        return bool(self.depth or self.colour)

    def words(self) -> str:
        """How an answer names the qualifier: "white", "in the background", "in a dark shirt"."""
        parts = [self.colour] if self.colour and not self.garment else []
        parts += [{"back": "in the background", "front": "in the foreground"}.get(self.depth, "")]
        parts += [f"in a {self.colour} {self.garment}"] if self.garment else []
        return " ".join(p for p in parts if p)


def parse(question: str, noun: str = "") -> Qualifier:
    """The qualifier of a question about `noun` (the intent's target: "truck", "man")."""
    q = " ".join(re.sub(r"[^a-z' -]", " ", question.lower()).split())
    depth = (
        "back"
        if re.search(rf"\b(?:{BACK_WORDS})\b", q)
        else "front"
        if re.search(rf"\b(?:{FRONT_WORDS})\b", q)
        else ""
    )
    colour = garment = ""
    worn = re.search(
        rf"\b(?:in|wearing|with) (?:a |an |the |his |her )?({_COLOUR_RE})(?: ({_COLOUR_RE}))? ({_GARMENT_RE})s?\b",
        q,
    )
    if worn:
        colour, garment = worn.group(2) or worn.group(1), worn.group(3)
        if worn.group(2) and worn.group(1) in SHADES and worn.group(2) in COLOUR_NAMES:
            colour = worn.group(2)
    elif noun:
        last = re.escape(noun.split()[-1].lower())
        said = re.search(rf"\b({_COLOUR_RE})(?: ({_COLOUR_RE}))?(?: [a-z-]+)? {last}", q)
        if said and said.group(0).split()[-2:-1] != ["colour"]:
            colour = said.group(2) if said.group(2) in COLOUR_NAMES else said.group(1)
    group, number = "", 0
    if depth and _plural(q, noun):  # "are the two people in the foreground...": not one box, the nearest
        group, depth = depth, ""
        said = re.search(rf"\b({'|'.join(_COUNTED)})\b", f"{noun.lower()} {q}")
        number = _COUNTED[said.group(1)] if said else 0
    return Qualifier(depth, colour.replace("grey", "gray"), garment, group, number)  # fmt: skip


_COUNTED = {"two": 2, "both": 2, "three": 3, "four": 4, "five": 5}


NUMBER_WORDS = {"two", "three", "four", "five", "both", "several", "many", "some", "all"}


def _plural(q: str, noun: str) -> bool:
    """Whether the question is about several things ("are the two people...", "the dogs"): depth words
    then place a group, and no one box is the one meant."""
    words = noun.lower().split()
    asks_several = re.match(r"(?:are|were|do) ", q) or re.search(r"\bcolou?rs? (?:are|were)\b", q)
    return bool(asks_several) or bool(words and words[0] in NUMBER_WORDS)


def bare(noun: str) -> str:
    """A target without its colour words ("white car" -> "car"): how an answer names the thing."""
    words = [w for w in noun.split() if w not in COLOUR_NAMES and w not in SHADES]
    return " ".join(words) or noun


def garment_rows(garment: str, box, image_size) -> tuple[float, float] | None:
    """The band of a person's box a garment covers (None: the whole person)."""
    g = garment.lower()
    part = GARMENTS.get(g, GARMENTS.get(g.removesuffix("s")))
    if part is None:
        return None
    h = image_size[1] if image_size else 0
    if part == "upper" and h and box[3] >= 0.98 * h:
        return CUT_OFF_UPPER
    return GARMENT_ROWS[part]


def verdict(covered: float | None) -> str:
    """Whether a box is the colour the question names, from its `coverage`: "yes", "no" or "unsure"."""
    if covered is None:
        return "unsure"
    if covered >= COLOUR_YES:
        return "yes"
    return "no" if covered <= COLOUR_NO else "unsure"


def coverage(q: Qualifier, measured: list[Evidence]) -> float | None:
    """The share of a box's measured pixels in the colour the question names (None: not measured)."""
    if not measured:
        return None
    if q.colour in SHADES:
        return sum(float(e.extra.get("share", 0)) for e in measured if _shade(e.text) == q.colour)
    names = COLOUR_NAMES.get(q.colour, {q.colour})
    return sum(float(e.extra.get("share", 0)) for e in measured if e.text in names)


# "The man in the dark shirt" (one of two): the box measured darkest is meant when it is a "yes" and every
# undecided one measured clearly less of the colour: this much less of the pixels, and by this ratio.
LEAD_MARGIN = 0.1
LEAD_RATIO = 1.3


def _shade(name: str) -> str:
    """Whether a tool colour name is a dark or a light one ("dark red", "black" are dark)."""
    if name.startswith("dark ") or name == "black":
        return "dark"
    if name.startswith("light ") or name == "white":
        return "light"
    return ""


def measured_for(box, evidence: list[Evidence], banded: bool = False) -> list[Evidence]:
    """The colour evidence measured on an object's box (on a garment's band of it when `banded`)."""
    want = tuple(box)
    return [
        e
        for e in evidence
        if e.kind == "color" and e.box and tuple(e.box) == want
        and not e.extra.get("part") and bool(e.extra.get("rows")) == banded
    ]  # fmt: skip


# Boxes drawn at least this many times larger than the next are nearer: where the gap between the
# foreground and the rest is.
NEAR_GAP = 2.0


def front(dets: list[Evidence], sizes: dict, large: float) -> tuple[list[Evidence], bool]:
    """The boxes in the foreground: those above the first clear gap in size (`NEAR_GAP`), else all;
    and whether each covers at least `large` of its image (the size the detector finds nearly always)."""
    near = depth_group(dets, "front")
    whole = lambda e: sizes.get(e.image, (0, 0))[0] * sizes.get(e.image, (0, 0))[1]  # noqa: E731
    return near, all(whole(e) and area(e.box) >= large * whole(e) for e in near)


def depth_group(dets: list[Evidence], depth: str) -> list[Evidence]:
    """The boxes drawn largest ("front") or smallest ("back"): those before the first clear gap in size
    (`NEAR_GAP`) from that end, else all."""
    ranked = sorted(dets, key=lambda e: area(e.box), reverse=depth == "front")
    for i in range(1, len(ranked)):
        a, b = area(ranked[i - 1].box), area(ranked[i].box)
        if (a >= NEAR_GAP * b) if depth == "front" else (b >= NEAR_GAP * a):
            return ranked[:i]
    return ranked


def colour_ids(dets: list[Evidence], evidence: list[Evidence], q: Qualifier) -> list[str]:
    """The colour finding an answer cites for each box chosen by its colour (its largest colour)."""
    return [c.id for d in dets for c in measured_for(d.box, evidence, bool(q.garment))[:1]]


@dataclass
class Selection:
    """The boxes a qualified question means: `chosen` for sure, `unsure` perhaps, with why."""

    chosen: list[Evidence]
    unsure: list[Evidence]
    why: str = ""


def by_depth(dets: list[Evidence], q: Qualifier) -> Evidence | None:
    """The one box among several that the question's depth words single out ("the player in the
    background"), or None (no depth words, one box, or none clearly smallest/largest)."""
    if not q.depth or len(dets) < 2:
        return None
    chosen = select(dets, q, []).chosen
    return chosen[0] if len(chosen) == 1 else None


def select(dets: list[Evidence], q: Qualifier, evidence: list[Evidence]) -> Selection:
    """The boxes among `dets` (one class's detections) that the qualifier means: those measured the
    colour it names (`unsure`: not measured clearly either way), then the one clearly drawn smallest
    ("in the background") or largest ("in the foreground")."""
    if not q:
        return Selection(list(dets), [])
    chosen, unsure, why = list(dets), [], ""
    if q.colour:
        share = {d.id: coverage(q, measured_for(d.box, evidence, banded=bool(q.garment))) for d in dets}
        chosen = [d for d in dets if verdict(share[d.id]) == "yes"]
        unsure = [d for d in dets if verdict(share[d.id]) == "unsure"]
        if len(chosen) == 1 and unsure and all(share[d.id] is not None for d in unsure):
            # the question says "the" dark shirt: one box measured clearly more of it than any other
            lead = share[chosen[0].id]
            if all(share[d.id] <= lead - LEAD_MARGIN and share[d.id] * LEAD_RATIO <= lead for d in unsure):
                unsure = []
        if unsure:
            why = f"the colour of {', '.join(d.id for d in unsure)} could not be told {q.colour} or not"
        elif not chosen:
            why = f"none of the {len(dets)} found measured {q.colour}"
    if q.depth and len(chosen) + len(unsure) > 1:
        pool = sorted(chosen + unsure, key=lambda e: area(e.box), reverse=q.depth == "front")
        first, second = area(pool[0].box), area(pool[1].box)
        clear = second >= DEPTH_RATIO * first if q.depth == "back" else first >= DEPTH_RATIO * second
        if clear and pool[0] in chosen:
            return Selection([pool[0]], [], "")
        why = why or f"the boxes found differ too little in size to tell which is {q.words()}"
        return Selection([], pool, why)
    return Selection(chosen, unsure, why)
