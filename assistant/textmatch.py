"""Where a piece of text stands in the OCR evidence: fuzzy matches of quoted text over windows of OCR
words and lines, and the numbers OCR read. The primitives every text check uses (`assistant.verify`,
the candidates and the composer)."""

from __future__ import annotations

import re
from dataclasses import dataclass

from assistant.text import norm, similarity
from tools.evidence import Evidence


@dataclass
class TextMatch:
    score: float
    ids: list[str]
    text: str


def text_words(evidence: list[Evidence]) -> dict[str, list[Evidence]]:
    """OCR and zoom words per image, in reading order (line by line, left to right)."""
    by_image: dict[str, list[Evidence]] = {}
    for e in evidence:
        if e.kind == "word" and e.tool in ("ocr", "zoom"):
            by_image.setdefault(f"{e.image}|{e.tool}", []).append(e)
    for words in by_image.values():
        words.sort(
            key=lambda e: (e.extra.get("block_id", 0), e.extra.get("line_id", 0), e.box[0] if e.box else 0)
        )
    return by_image


def find_text(quote: str, evidence: list[Evidence]) -> TextMatch:
    """Best fuzzy match of `quote` among windows of OCR words (and OCR lines)."""
    q = norm(quote).replace(" ", "")
    best = TextMatch(0.0, [], "")
    if not q:
        return best
    n_words = max(1, len(norm(quote).split()))
    for words in text_words(evidence).values():
        # windows of tokens, not of words: "M1SOL/SEUILLA" is two tokens, each may be what is quoted
        subs = [(t, w) for w in words for t in norm(w.text).split()]
        toks = [t for t, _ in subs]
        for size in {max(1, n_words - 1), n_words, n_words + 1}:
            for i in range(0, max(1, len(toks) - size + 1)):
                window = "".join(toks[i : i + size])
                if not window:
                    continue
                score = similarity(q, window)
                if score > best.score:
                    hit = list({id(w): w for _, w in subs[i : i + size]}.values())
                    best = TextMatch(score, [w.id for w in hit], " ".join(w.text for w in hit))
    for e in evidence:  # lines too: they exist even where a tool reports no words
        if e.kind == "line" and e.tool in ("ocr", "zoom"):
            score = similarity(q, norm(e.text).replace(" ", ""))
            if score > best.score:
                best = TextMatch(score, [e.id], e.text)
    if len(q) <= 3 and best.score < 1.0:  # "A" vs "4": short text must match exactly
        best.score = 0.0
    return best


def ocr_numbers(evidence: list[Evidence]) -> list[tuple[float, str]]:
    """(value, evidence id) for every number OCR read, joining "41 30" into 41.30."""
    out = []
    for e in evidence:
        if e.tool not in ("ocr", "zoom") or e.kind not in ("line", "word"):
            continue
        text = re.sub(r"(\d) (\d{2})\b(?!\s*\d)", r"\1.\2", e.text) if e.kind == "line" else e.text
        for m in re.finditer(r"\d+(?:[.,]\d+)?", text):
            out.append((parse_number(m.group(0)), e.id))
    return out


def parse_number(s: str) -> float:
    s = s.replace(" ", "")
    if "," in s and "." not in s and len(s.split(",")[-1]) == 2:
        s = s.replace(",", ".")
    return float(s.replace(",", ""))
