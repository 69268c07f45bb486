"""The colour a question names the letters by ("the red text", "in large white digits"), and the text
lines written in that colour: the colour tool measures each line's ink (`policy.follow_ups`), and
`reading.qualify` keeps the lines whose ink is that colour. A person's colour word and the tool's plain
names differ (white letters in a photo measure "light gray", red ones "dark pink"): `colour_agrees`
says which names a word may mean, here and wherever a draft's colour meets a measured one."""

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
# The words a person may use for a colour the tool names (the tool's names are plain, a person's are not:
# a white horse measures light gray, a bay horse brown, a silver car gray).
_FAMILY = {
    "white": {"white", "silver", "cream", "beige", "ivory"}, "gray": {"gray", "grey", "silver", "white", "black"},
    "black": {"black", "dark"}, "red": {"red", "maroon", "pink", "orange", "brown", "crimson"},
    "brown": {"brown", "chestnut", "bay", "tan", "orange", "red", "bronze", "beige"},
    "orange": {"orange", "red", "brown", "gold", "yellow"}, "yellow": {"yellow", "gold", "orange"},
    "olive": {"olive", "green", "yellow", "brown"}, "green": {"green", "olive", "teal"},
    "teal": {"teal", "green", "blue", "cyan", "turquoise"}, "blue": {"blue", "navy", "teal", "cyan", "turquoise"},
    "purple": {"purple", "violet", "magenta", "pink"}, "pink": {"pink", "red", "magenta", "purple"},
}  # fmt: skip
_FAMILY_WORDS = {w for ws in _FAMILY.values() for w in ws} | set(INK_COLOURS)


def colours_said(text: str) -> set[str]:
    return {w for w in re.findall(r"[a-z]+", text.lower()) if w in _FAMILY_WORDS}


def colour_agrees(word: str, name: str) -> bool:
    """A person's colour word fits a colour the tool measured ("white" fits "light gray")."""
    base = name.lower().replace("light ", "").replace("dark ", "").replace("grey", "gray")
    if name.lower().startswith("light gray") and word == "white":
        return True
    word = "gray" if word == "grey" else word
    return word == base or word in _FAMILY.get(base, set())


# An ink colour measured on a line counts when it covers at least this share of the line's ink.
INK_SHARE = 0.25


def ink_colour(question: str) -> str:
    """The colour a question names the letters by ("the red text", "in large white digits"), or ""."""
    m = _INK.search(question)
    return next((g.lower() for g in m.groups() if g), "") if m else ""


def _inks(evidence: list[Evidence]) -> list[Evidence]:
    return [e for e in evidence if e.tool == "color" and e.extra.get("part") == "ink" and e.box]


def _measured_on(line: Evidence, inks: list[Evidence]) -> list[Evidence]:
    """The colour tool's ink findings of this line's box."""
    return [
        e
        for e in inks
        if e.image == line.image
        and line.box
        and max(abs(a - b) for a, b in zip(e.box, line.box, strict=True)) <= 1.0
    ]


def measured(lines: list[Evidence], evidence: list[Evidence]) -> list[Evidence] | None:
    """The lines whose ink the colour tool measured; None when it measured none of them."""
    inks = _inks(evidence)
    out = [e for e in lines if _measured_on(e, inks)]
    return out or None


def by_ink(lines: list[Evidence], evidence: list[Evidence], colour: str) -> list[Evidence]:
    """The lines whose letters were measured to be `colour` (the colour tool's ink of each line's box;
    a colour counts when it covers INK_SHARE of the ink). [] when none is: the caller says so."""
    inks = _inks(evidence)
    return [
        e
        for e in lines
        if any(
            colour_agrees(colour, f.text) and f.extra.get("share", 0) >= INK_SHARE
            for f in _measured_on(e, inks)
        )
    ]
