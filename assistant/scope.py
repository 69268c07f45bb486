"""Which images of a conversation a question means: one grammar, used by the tool policy and the budget.

Ordinals ("the first picture", "image 2"), the previous or another image ("the previous one", "the
other photo"), the image the conversation was about ("that picture", "the original photo"), and every
image ("both", "all of them"). `named` is what the question says itself; `resolve` falls back to the
images that arrived this turn, else the previous turn's scope, else the latest image.
"""

from __future__ import annotations

import re

_ORDINALS = {
    "first": 1,
    "1st": 1,
    "second": 2,
    "2nd": 2,
    "third": 3,
    "3rd": 3,
    "fourth": 4,
    "4th": 4,
    "fifth": 5,
}
_NOUN = r"(?:image|picture|photo|pic|one|screenshot|scan|shot)"
_NUMBERS = ["one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten"]
_NUMBER_WORDS = "|".join(_NUMBERS)


def named(question: str, n_images: int, current: list[int], previous: list[int]) -> list[int]:
    """Images (1-based) the question names itself; empty when it names none.

    `current`: images that arrived this turn; `previous`: the last turn's scope.
    """
    if n_images == 0:
        return []
    q = question.lower()
    picked: list[int] = []
    for word, n in _ORDINALS.items():
        if re.search(rf"\b{word}\b", q) and n <= n_images:
            picked.append(n)
    # "image 2", and a page or frame of a file read as images ("page two", "frame 3")
    for m in re.finditer(rf"\b(?:image|picture|photo|pic|img|page|frame)\s*#?\s*(\d+|{_NUMBER_WORDS})\b", q):
        word = m.group(1)
        n = int(word) if word.isdigit() else _NUMBERS.index(word) + 1
        if 1 <= n <= n_images:
            picked.append(n)
    older = [i for i in range(1, n_images + 1) if i not in current] or [n_images]
    if re.search(r"\b(last|latest|previous|earlier|other) (image|picture|photo|one|pic)\b", q):
        picked.append(older[-1] if "last" in q or "latest" in q or "previous" in q else older[0])
    # "that picture", "the original photo": the image the conversation was about, not the newest one
    if re.search(rf"\b(that|same|original)\s+(?:\w+\s+)?{_NOUN}\b", q):
        picked += [i for i in previous if 1 <= i <= n_images] or [older[-1]]
    if picked:
        return sorted(set(picked))
    if re.search(r"\b(both|all|each|every|these) (images?|pictures?|photos?|of them)\b|\bboth\b", q):
        return list(range(1, n_images + 1))
    return []


def resolve(question: str, n_images: int, current: list[int], previous: list[int]) -> list[int]:
    """Which images (1-based) a question is about: those it names, else this turn's, else the previous
    turn's scope, else the latest image."""
    if n_images == 0:
        return []
    return named(question, n_images, current, previous) or list(current) or list(previous) or [n_images]
