"""The tool policy: question -> intent -> which tools to run on which images. Works with any model.

Rules, not a model: reading questions lead to OCR (and zoom when the text read is small), counting,
presence and where-questions to the detector, colour questions to the colour tool, questions about when
or with what a photo was taken to metadata, open questions to several tools. A follow-up without an
intent of its own ("and the first picture?") inherits the previous turn's intent. Which images a
question is about is resolved here too (ordinals, "both", "the previous one").
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace

from assistant import colours, ink, objects, qualifiers, regions, roles, scope
from assistant.text import singular

# Intents whose answer is text read from the image.
READING_INTENTS = {"read", "total", "price", "field"}
# Intents answered from the detector's boxes.
OBJECT_INTENTS = {"count", "presence", "where"}
# How long a drafted answer may be, by intent: a count, a colour, a side, a total or a field is a
# phrase, and what a sign says is a line or two (VQA benchmarks prompt "answer with a single word or
# phrase"). Longer drafts only add claims to check, and a small model fills them with repetition.
# Open questions (describe, other) keep the configured `max_new_tokens`. These drafts also stop at a
# blank line: one paragraph answers a short question.
ANSWER_TOKENS = {"read": 96} | {
    name: 48
    for name in ("total", "price", "field", "count", "presence", "where", "color", "metadata", "identify")
}

# Fields a question may ask for, with the regular expression that finds one in OCR text.
FIELDS = {
    "phone": (r"\b(phone|telephone|tel|mobile|cell|fax)\b", r"\+?\d[\d\s().-]{6,}\d"),
    "email": (r"\b(e-?mail|email address)\b", r"[\w.+-]+@[\w-]+\.[\w.]+"),
    "url": (
        r"\b(website|web site|url|web address|site)\b",
        r"(https?://\S+|www\.\S+|\b[\w-]+\.(com|org|net|io)\b)",
    ),
    "date": (
        r"\b(date|day|when was (it|this) (bought|paid|issued))\b",
        r"\b\d{1,4}[/.-]\d{1,2}[/.-]\d{1,4}\b",
    ),
    "time": (r"\b(what time|opening hours|hours)\b", r"\b\d{1,2}[:.]\d{2}\s*(am|pm)?\b"),
}

_INTENT_RULES: list[tuple[str, str]] = [
    # order matters: the first rule that matches wins
    (
        "metadata",
        r"\b(when was (this|the|it) (photo|picture|image)?\s*taken|what camera|which camera|taken with|exif|"
        r"gps|resolution|dimensions|how (big|large) is (this|the) (image|photo|picture)|image size|file format)\b",
    ),
    ("field", r"\b(phone|telephone|tel\.?|fax|e-?mail|website|web address|url)\b"),
    (
        "total",
        r"\b(total|grand total|amount due|balance due|how much (did|do|was|is) (i|we|it|the bill|the receipt)"
        r"( \w+)? ?(pay|paid|owe|cost)?|what did (i|we) pay|bill come to)\b",
    ),
    ("price", r"\b(price of|how much (is|was|does|did) (the |a |an )?\w+|cost of)\b"),
    ("count", r"\b(how many|count|number of)\b"),
    ("color", r"\b(colou?rs?|what shade|which shade)\b"),
    (
        "where",
        r"\b(where|which side|what side|which (way|direction) (does|do|is|are) .* (point|face|go|show)|"
        r"locat(ed|ion) of|position of|"
        r"(left|right|top|bottom) or (on |at |in |to )?(the )?(left|right|top|bottom))\b",
    ),
    (
        "presence",
        r"^\s*(is|are|was|were|do|does|can you see|could you see)\b.*\b(there|any|see|contain|show|visible|"
        r"anyone|anybody|someone|somebody)\b",
    ),
    (
        "read",
        r"\b(say|says|said|written|write|writing|text|word|words|read|reads|transcribe|letters|sign|label|"
        r"caption|title|headline|heading|spell|menu|what does it say|printed|listed|mentioned|logo|brand|"
        r"names?|named|called|who|whose|author|(what|which) (numbers?|digits?)|(what|which)\b.*\b\w+ (number|no\.?|code)|date|score|fare|"
        r"percentage|purchased|bought|"
        r"destination|station)\b",
    ),
    (
        "identify",
        r"\bwhat (kind|type|sort|breed|species|make) of\b|\bwhat (animal|bird|dog|cat|vehicle|food|dish|fruit|"
        r"plant|flower|object|thing|instrument|tool)s? (is|are) (this|that|these|those|it|shown|in)\b|"
        r"\bwhat is (this|that) (animal|bird|thing|object|vehicle|dish)\b",
    ),
    (
        "describe",
        r"\b(describe|what is (in|on|shown)|what's (in|on)|what do you see|what can you see|what is this|"
        r"what's this|what is happening|tell me about|caption)\b",
    ),
]

_STOP = {
    "the",
    "a",
    "an",
    "this",
    "that",
    "these",
    "those",
    "in",
    "on",
    "of",
    "image",
    "picture",
    "photo",
    "there",
}


@dataclass(frozen=True)
class Intent:
    """What a question asks for."""

    name: str  # "read" | "total" | "price" | "field" | "count" | "presence" | "where" | "color" | "metadata" | "identify" | "describe" | "other"
    target: str = ""  # the object or item asked about ("dog", "coffee"), singular
    field: str = ""  # for "field": "phone" | "email" | "url" | "date" | "time"
    inherited: bool = False  # taken from the previous turn (a follow-up like "and the first one?")
    ink: str = ""  # for reading intents: the colour the question names the letters by ("the red text")
    # for object intents: the words that single out one of several things ("the dog in the background")
    qualifier: qualifiers.Qualifier = qualifiers.Qualifier()


@dataclass
class PlannedCall:
    """A tool call the policy wants, before it runs."""

    tool: str
    image_index: int  # 1-based among the conversation's images
    args: dict = field(default_factory=dict)
    reason: str = ""


def classify(question: str, previous: Intent | None = None) -> Intent:
    """The intent of a question; a short follow-up without one inherits `previous`."""
    q = question.lower().strip()
    for name, pattern in _INTENT_RULES:
        if re.search(pattern, q):
            if name == "count" and roles.reads_a_number(q):
                name = "read"  # "how many miles", "how many litres": a unit is read, not detected
            colour = ink.ink_colour(q) if name in READING_INTENTS else ""
            target = _target(name, q)
            return Intent(
                name,
                target=target,
                field=_field(q) if name == "field" else "",
                ink=colour,
                qualifier=_qualifier(name, q, target),
            )
    if previous is not None and previous.name != "other" and _is_follow_up(q):
        return replace(previous, inherited=True)
    if _asks_for_text(q):
        return Intent("read", ink=ink.ink_colour(q))
    return Intent("other")


def _qualifier(name: str, q: str, target: str) -> qualifiers.Qualifier:
    """The words that single out the thing asked about, for object intents. A colour question is asked
    by depth only ("what colour is the player in the background"): the colour is what it asks."""
    if name in ("where", "count", "presence"):
        return qualifiers.parse(q, target)
    if name == "color":
        return replace(qualifiers.parse(q), colour="", garment="")
    return qualifiers.Qualifier()


def _asks_for_text(q: str) -> bool:
    """A question with no reading word that still asks for what only text can say: a typed value ("how
    much change", "what interest rate"), or the name of an organisation or place ("in which city is X")."""
    role = roles.role_of(q)
    return (
        (role.typed and role.kind != "number")
        or role.kind in ("org", "place")
        or bool(re.search(r"\b(address|rate|interest)\b", q))
    )


def _is_follow_up(q: str) -> bool:
    words = re.findall(r"[a-z0-9']+", q)
    return len(words) <= 8 or q.startswith(("and ", "what about", "how about", "same for", "and what"))


def _field(q: str) -> str:
    for name, (ask, _) in FIELDS.items():
        if re.search(ask, q):
            return name
    return ""


def _target(name: str, q: str) -> str:
    """The thing a count/where/presence/price question is about, singularised."""
    patterns = {
        "count": [
            r"how many ([a-z][a-z ]*?)(?: are| is| do| can| in| on| there|\?|$)",
            r"count (?:the )?([a-z ]+?)(?: in|\?|$)",
            r"number of ([a-z ]+?)(?: in| on|\?|$)",
        ],
        "where": [
            r"where (?:is|are) (?:the |a |an )?([a-z ]+?)(?:\?| in| on|$)",
            r"(?:location|position) of (?:the )?([a-z ]+?)(?:\?|$)",
            r"(?:is|are|does|do) (?:the |a |an )?([a-z ]+?) (?:on |at |in |to |along |near |by |[a-z]+ing |point|face|look)[a-z ]*?"
            r"\b(?:left|right|top|bottom) or\b",
            r"which (?:way|direction) (?:does|do|is|are) (?:the |a |an )?([a-z ]+?) (?:point|face|go|show)",
        ],
        "presence": [
            r"(?:is|are) there (?:a |an |any |some )?([a-z ]+?)(?: in| on|\?|$)",
            r"see (?:a |an |any )?([a-z ]+?)(?: in|\?|$)",
            r"^(?:is|are|was|were) (anyone|anybody|someone|somebody)\b",
        ],
        "price": [
            r"price of (?:the |a )?([a-z ]+?)(?:\?| on|$)",
            r"how much (?:is|was|does|did) (?:the |a |an )?([a-z ]+?)(?: cost|\?|$)",
            r"cost of (?:the |a )?([a-z ]+?)(?:\?|$)",
        ],
        "color": [r"(?:colou?r) (?:is|are|of) (?:the |a |an )?([a-z' ]+?)(?:\?|$)"],
    }
    if name == "where":  # "the man in the dark shirt, sitting on the chair, on the left or the right"
        q = q.replace(",", "")
    for pat in patterns.get(name, []):
        m = re.search(pat, q)
        if m:
            words = [w for w in re.sub(r"'s?\b", "", m.group(1)).split() if w not in _STOP]
            if words and name == "color":  # the whole phrase: "stripe at bottom", "bird feet", "letters"
                return " ".join([*words[:-1], singular(words[-1])][:6])
            if name == "price":  # the item, not where it goes: "a ticket to HarbourFront" -> "ticket"
                words = re.split(r"\b(?:to|for|from|at|with|in|on)\b", " ".join(words))[0].split() or words
            if words:
                return singular(" ".join(words[-2:]))
    return ""


def resolve_scope(question: str, n_images: int, current: list[int], previous: list[int]) -> list[int]:
    """Which images (1-based) a question is about (`assistant.scope.resolve`, shared with the budget)."""
    return scope.resolve(question, n_images, current, previous)


# The OCR call of every plan: the tool's defaults, its full-recall reading (one cached call per image).
OCR_ARGS: dict = {}


def plan(intent: Intent, images: list[int], available: set[str]) -> list[PlannedCall]:
    """First-round tool calls for an intent on the images in scope (only tools that are available)."""
    wanted: list[tuple[str, dict, str]] = []
    if intent.name in READING_INTENTS:
        # One full-recall reading per image, whatever the question: answers are selected from it, so
        # no argument may narrow what OCR reads (a "document" mode lost prices far right of their items).
        wanted.append(("ocr", dict(OCR_ARGS), f"{intent.name} question: read the text"))
    elif intent.name == "where" and arrow_thing(intent.target):
        # "which way does the arrow point": arrow shapes, and the text they stand beside
        wanted += [
            ("ocr", dict(OCR_ARGS), "where does the arrow point: the sign's text"),
            ("arrows", {}, "where does the arrow point: arrow shapes"),
        ]
    elif intent.name == "where" and text_thing(intent.target):
        # "where is the exit sign": a sign is where its text was read
        wanted.append(("ocr", dict(OCR_ARGS), f"where is the {intent.target}: find its text"))
    elif intent.name in OBJECT_INTENTS:
        wanted.append(("detect", {}, f"{intent.name} question: find objects"))
        if intent.name in ("count", "presence"):
            # the image's ImageNet labels: a "mountain bike" label speaks against "there is no bicycle"
            wanted.append(("classify", {}, f"{intent.name} question: what the whole image shows"))
    elif intent.name == "color":
        # Measure where the question points: the whole image only for questions about the whole image.
        subject = regions.subject(intent.target)
        if subject.kind == "image":
            wanted.append(("color", {}, "colour question: dominant colours"))
        elif subject.kind == "area":
            wanted.append(("color", {"area": subject.area}, f"colour of the {subject.area} of the image"))
        elif subject.kind == "text":
            wanted.append(("ocr", dict(OCR_ARGS), f"colour of the {subject.thing}: find its text first"))
        elif subject.kind == "object":
            wanted.append(("detect", {}, f"colour of {intent.target!r}: find the {subject.thing} first"))
    elif intent.name == "metadata":
        wanted.append(("metadata", {}, "question about the file or the camera"))
    elif (
        intent.name == "identify"
    ):  # "what kind of dog is this": the classifier's labels, the detector's boxes
        wanted += [
            ("classify", {}, "what kind of thing: image labels"),
            ("detect", {}, "what kind of thing: objects"),
        ]
    else:
        wanted += [
            ("detect", {}, "open question: objects"),
            ("ocr", dict(OCR_ARGS), "open question: any text"),
            ("color", {}, "open question: colours"),
        ]
    calls = []
    for idx in images:
        for tool, args, reason in wanted:
            if tool in available:
                calls.append(PlannedCall(tool, idx, dict(args), reason))
    return calls


# Things whose place in the image is where its text was read.
TEXT_OBJECTS = {
    "sign",
    "text",
    "letter",
    "writing",
    "label",
    "word",
    "board",
    "banner",
    "note",
    "poster",
    "notice",
}


def arrow_thing(target: str) -> bool:
    """The target is an arrow ("the arrow on the wall"): the arrows tool finds it, beside a sign's text."""
    return any(singular(w) == "arrow" for w in target.lower().split())


def text_thing(target: str) -> bool:
    """The target is a thing of text ("the exit sign", "the word EXIT"): OCR finds it, not a detector
    (a detector class like "stop sign" stays the detector's)."""
    t = target.lower().strip()
    return t not in objects.COCO_CLASSES and any(singular(w) in TEXT_OBJECTS for w in t.split())


# Words shorter than this (pixels) are small enough that a zoomed re-read helps.
SMALL_TEXT_PX = 12
# For a question that names the letters' colour, the ink of at most this many lines (the tallest) is measured.
INK_LINES = 12


def follow_ups(
    intent: Intent, image_index: int, evidence: list, available: set[str], image_size
) -> list[PlannedCall]:
    """Second-round calls after the first results: zoom on small text, colour of a found target."""
    calls: list[PlannedCall] = []
    words = [e for e in evidence if e.kind == "word" and e.box is not None]
    if intent.name in READING_INTENTS and "zoom" in available and words:
        heights = sorted(e.box[3] - e.box[1] for e in words)
        if heights[len(heights) // 2] < SMALL_TEXT_PX:
            x0 = min(e.box[0] for e in words)
            y0 = min(e.box[1] for e in words)
            x1 = max(e.box[2] for e in words)
            y1 = max(e.box[3] for e in words)
            if x1 > x0 and y1 > y0:
                calls.append(
                    PlannedCall(
                        "zoom", image_index, {"box": [x0, y0, x1, y1]}, "small text: zoom in and re-read"
                    )
                )
    if intent.name in READING_INTENTS and intent.ink and "color" in available:
        # "the red text": the ink of each prominent line, measured, so the red ones can be chosen
        lines = [e for e in evidence if e.kind == "line" and e.box is not None and e.tool in ("ocr", "zoom")]
        for e in sorted(lines, key=lambda e: -(e.box[3] - e.box[1]))[:INK_LINES]:
            calls.append(
                PlannedCall("color", image_index, {"text_boxes": [list(e.box)]}, f"ink colour of {e.id}")
            )
    subject = regions.subject(intent.target) if intent.name == "color" else None
    if subject is not None and subject.kind == "text" and "color" in available:
        lines = [e for e in evidence if e.kind == "line" and e.box is not None and e.confidence >= 0.6]
        if subject.area:  # "the letters at the top": the lines there
            w, hh = image_size
            x0, y0, x1, y1 = regions.area_box(subject.area, w, hh)
            lines = [
                e
                for e in lines
                if x0 <= (e.box[0] + e.box[2]) / 2 <= x1 and y0 <= (e.box[1] + e.box[3]) / 2 <= y1
            ]
        if lines:
            boxes = [list(e.box) for e in lines]
            calls.append(
                PlannedCall(
                    "color", image_index, {"text_boxes": boxes}, f"colour of the ink of the {subject.thing}"
                )
            )
    elif subject is not None and subject.kind == "object" and "color" in available:
        sure, maybe = objects.split(objects.matching(subject.thing, evidence), evidence)
        dets = [e for e in sure or maybe if e.box is not None]
        if dets:
            picked = regions.pick(dets, subject.area, image_size, intent.qualifier.depth)
            one = qualifiers.by_depth(sure, intent.qualifier)
            # "the woman's jacket", two people found: each is measured (the answer holds if all agree)
            several = 1 < len(sure) <= colours.AGREE_BOXES and not subject.area and one is None
            for d in sorted(sure, key=lambda e: -e.confidence) if several else [picked]:
                what = f"the {subject.garment} of {d.id}" if subject.garment else f"{d.id} ({d.text})"
                calls.append(_colour_of(d, subject.garment, image_index, image_size, f"colour of {what}"))
    elif intent.qualifier.colour and intent.name in OBJECT_INTENTS and "color" in available:
        calls += _qualifier_colours(intent, image_index, evidence, image_size)
    return calls


# The boxes of a class measured to tell which is "the white truck": the most confident ones.
QUALIFIER_BOXES = 6


def _qualifier_colours(intent: Intent, image_index: int, evidence: list, image_size) -> list[PlannedCall]:
    """Colour calls on each box of the class a question singles one out of by colour ("the white
    truck", "the man in the dark shirt"): on the garment's band of a person when a garment is named."""
    q = intent.qualifier
    sure, maybe = objects.split(objects.matching(intent.target, evidence), evidence)
    dets = sorted((e for e in sure + maybe if e.box is not None), key=lambda e: -e.confidence)
    return [
        _colour_of(d, q.garment, image_index, image_size, f"is {d.id} {q.words()}?")
        for d in dets[:QUALIFIER_BOXES]
    ]


def _colour_of(d, garment: str, image_index: int, image_size, reason: str) -> PlannedCall:
    """The colour call on a detection: the object apart from its background, on the garment's band of a
    person when a garment is named."""
    args: dict = {"region": list(d.box)}
    rows = qualifiers.garment_rows(garment, d.box, image_size) if garment else None
    if rows:
        args["rows"] = list(rows)
    return PlannedCall("color", image_index, args, reason)


def _label_matches(label: str, target: str) -> bool:
    a, b = singular(label.lower()), singular(target.lower())
    return a == b or a in b.split() or b in a.split()
