"""Small text rules shared by the policy, the budget, the verifier and the extractors.

One place for what "the same word" means across the assistant: normalisation and OCR-tolerant
similarity (verify, extract, answer), singular and plural of object names (policy, objects, extract),
and the stop words that never name what a question is about (the image budget's cues).
"""

from __future__ import annotations

import difflib
import re


def norm(s: str) -> str:
    """Lower case, letters and digits only, single spaces: what text comparison looks at."""
    return " ".join(re.sub(r"[^0-9a-z]+", " ", s.lower()).split())


# Characters OCR confuses; folded on both sides before comparing text.
_FOLD = str.maketrans({"0": "o", "1": "l", "i": "l", "|": "l", "5": "s", "8": "b", "6": "b", "2": "z"})


def similarity(a: str, b: str) -> float:
    """difflib ratio of two normalised strings, also tried with OCR-confusable characters folded."""
    plain = difflib.SequenceMatcher(None, a, b, autojunk=False).ratio()
    if plain == 1.0:
        return plain
    return max(
        plain,
        0.95 * difflib.SequenceMatcher(None, a.translate(_FOLD), b.translate(_FOLD), autojunk=False).ratio(),
    )


# Plurals no suffix rule undoes; -ses words whose singular keeps no "e" (bus, gas, lens).
_IRREGULAR = {
    "people": "person",
    "men": "man",
    "women": "woman",
    "children": "child",
    "mice": "mouse",
    "geese": "goose",
    "feet": "foot",
    "teeth": "tooth",
    "oxen": "ox",
    "buses": "bus",
    "gases": "gas",
    "lenses": "lens",
    "canvases": "canvas",
    "atlases": "atlas",
    "taxis": "taxi",
}


def singular(word: str) -> str:
    """The last word of a phrase made singular ("red cars" -> "red car", "boxes" -> "box")."""
    parts = word.split()
    w = parts[-1]
    low = w.lower()
    if low in _IRREGULAR:
        w = _IRREGULAR[low]
    elif low.endswith("ies") and len(w) > 4:
        w = w[:-3] + "y"
    elif low.endswith("ives"):
        w = w[:-3] + "fe"
    elif low.endswith("lves"):
        w = w[:-3] + "f"
    elif low.endswith(("sses", "xes", "ches", "shes", "zzes")):
        w = w[:-2]
    elif low.endswith("s") and not low.endswith(("ss", "us", "is")) and len(w) > 3:
        w = w[:-1]
    return " ".join([*parts[:-1], w])


def plural(w: str) -> str:
    """A detector label made plural for an answer ("person" stays as the detector says: "persons")."""
    return (
        w if w.endswith("s") else (w[:-1] + "ies" if w.endswith("y") and w[-2:-1] not in "aeiou" else w + "s")
    )


def word_set(text: str) -> frozenset[str]:
    """The words of a space-separated list, as a set."""
    return frozenset(text.split())


# Words that never name what an image shows (function words, image nouns, ordinals, asking verbs).
STOPWORDS = word_set(
    "the a an and or of on in at to is are was were what which who how does did do it its this that "
    "these those there again about with for from me you can could please tell show look see back "
    "first second third last previous earlier other same image images picture pictures photo photos "
    "pic one some any all your my be say says read here now then also "
)


def content_words(text: str) -> set[str]:
    """The words of `text` that can name what an image shows, with their -s forms stripped too."""
    words = {w for w in re.findall(r"[a-z0-9]+", text.lower()) if len(w) >= 3 and w not in STOPWORDS}
    return words | {w[:-1] for w in words if w.endswith("s") and len(w) > 3}
