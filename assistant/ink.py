"""The colour a question names the letters by ("the red text", "in large white digits"), and the text
lines written in that colour: the colour tool measures each line's ink (`policy.follow_ups`), and
`extract.read_text` keeps the lines whose ink is that colour."""

from __future__ import annotations

import re

from tools.evidence import Evidence

# Colour words a question may name the letters by, and the names the colour tool may give that ink.
INK_COLOURS = {
    "red": {"red", "dark red"}, "white": {"white"}, "black": {"black"}, "blue": {"blue", "dark blue", "light blue"},
    "green": {"green", "dark green", "light green"}, "yellow": {"yellow"}, "orange": {"orange"},
    "purple": {"purple"}, "pink": {"pink"}, "brown": {"brown"}, "gray": {"gray", "light gray", "dark gray"},
    "grey": {"gray", "light gray", "dark gray"}, "gold": {"yellow", "orange"}, "silver": {"gray", "light gray"},
}  # fmt: skip
_INK_NOUNS = r"(?:text|letters?|lettering|words?|writing|digits?|numbers?|numerals?|characters?|print|font|script|heading|title)"
_INK = re.compile(
    rf"\b({'|'.join(INK_COLOURS)})\s+(?:\w+\s+)?{_INK_NOUNS}\b|\b(?:in|printed in|written in)\s+({'|'.join(INK_COLOURS)})\b",
    re.I,
)
# An ink colour measured on a line counts when it covers at least this share of the line's ink.
INK_SHARE = 0.25


def ink_colour(question: str) -> str:
    """The colour a question names the letters by ("the red text", "in large white digits"), or ""."""
    m = _INK.search(question)
    return next((g.lower() for g in m.groups() if g), "") if m else ""


def by_ink(lines: list[Evidence], evidence: list[Evidence], colour: str) -> list[Evidence]:
    """The lines whose letters were measured to be `colour` (the colour tool's ink of each line's box);
    `lines` itself when none was measured, none matches (the question's colour may be the sign's) or
    all do."""
    names = INK_COLOURS.get(colour, set())
    inks = [e for e in evidence if e.tool == "color" and e.extra.get("part") == "ink" and e.box]
    if not names or not inks:
        return lines

    def matches(line: Evidence) -> bool:
        return any(
            e.image == line.image
            and line.box
            and max(abs(a - b) for a, b in zip(e.box, line.box, strict=True)) <= 1.0
            and e.text in names
            and e.extra.get("share", 0) >= INK_SHARE
            for e in inks
        )

    kept = [e for e in lines if matches(e)]
    return kept if kept and len(kept) < len(lines) else lines  # `lines` itself when it narrows nothing
