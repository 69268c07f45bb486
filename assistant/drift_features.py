"""What drift monitoring measures of one turn, per modality, from what the turn already produced.

Each image new to its conversation gives its size, aspect ratio, brightness, contrast and sharpness (a
thumbnail's luma), the vision tower's pooled features as the embedding cache holds them (no extra model cost: an
image the model did not see gives none), what OCR read of it (words, mean confidence, dominant script)
and what the detector found (boxes, mean score, the top class). Each turn gives its question's length
and words (hashed: the monitor keeps no text) and whether it abstained. `FEATURES` names them all;
`assistant/drift.py` compares their distributions.
"""

from __future__ import annotations

import hashlib
import math
import re
import unicodedata
from collections import Counter
from dataclasses import dataclass
from functools import lru_cache


@dataclass(frozen=True)
class Feature:
    modality: str  # "image" | "vision" | "ocr" | "detector" | "text" | "outcome"
    kind: str  # "numeric" | "categorical" | "words" (hashed words: scored by vocabulary coverage)
    what: str  # one line for people (health, docs)


FEATURES: dict[str, Feature] = {
    "image.pixels": Feature("image", "numeric", "width x height of the decoded image"),
    "image.aspect": Feature("image", "numeric", "width / height"),
    "image.brightness": Feature("image", "numeric", "mean luma, 0-1"),
    "image.contrast": Feature("image", "numeric", "standard deviation of luma, 0-1"),
    "image.sharpness": Feature("image", "numeric", "mean luma gradient of the thumbnail (blur lowers it)"),
    "vision.mean_activation": Feature("vision", "numeric", "mean of the vision tower's pooled features"),
    "vision.activation_std": Feature(
        "vision", "numeric", "spread of the vision features over tokens and dims"
    ),
    "vision.pooled_norm": Feature("vision", "numeric", "RMS of the pooled feature vector"),
    "vision.projection": Feature("vision", "numeric", "pooled features on a fixed random direction"),
    "ocr.words": Feature("ocr", "numeric", "words OCR read in the image"),
    "ocr.confidence": Feature("ocr", "numeric", "mean word confidence"),
    "ocr.script": Feature("ocr", "categorical", "the words' dominant script (latin, digits, cjk, ...)"),
    "detector.boxes": Feature("detector", "numeric", "detections in the image"),
    "detector.score": Feature("detector", "numeric", "mean detection score"),
    "detector.top_class": Feature("detector", "categorical", "class of the highest-scoring detection"),
    "text.question_words": Feature("text", "numeric", "words in the question"),
    "text.vocabulary": Feature("text", "words", "share of the question's words the reference used"),
    "outcome.abstained": Feature("outcome", "categorical", "whether the answer abstained"),
}

_WORD = re.compile(r"[^\W_]+")
_SCRIPTS = {"LATIN": "latin", "CJK": "cjk", "HIRAGANA": "cjk", "KATAKANA": "cjk", "HANGUL": "cjk"}
_SCRIPTS |= {"CYRILLIC": "cyrillic", "GREEK": "greek", "ARABIC": "arabic", "HEBREW": "hebrew"}
THUMBNAIL = 256  # longest side light and sharpness are measured at (fine enough to see a blur)


def turn_features(line) -> list[tuple[str, object]]:
    """(feature, value) pairs of one observed turn (`assistant.observe.TurnTimeline`)."""
    trace = line.trace
    if trace is None:
        return []
    out: list[tuple[str, object]] = []
    new = [r for r in trace.images if r.turn == trace.turn]
    refs = {r.id: r for r in line.conversation.image_refs()} if new else {}
    cache = getattr(getattr(line.conversation.assistant, "engine", None), "embed_cache", None)
    for rec in new:
        ref = refs.get(rec.id)
        if ref is not None:
            out += image_features(ref.image)
            entry = cache.peek_image(ref.sha256) if cache is not None else None
            if entry:
                out += vision_features(entry)
    evidence = {e["id"]: e for e in trace.evidence}
    seen: set[tuple[str, str]] = set()
    ids = {r.id for r in new}
    for call in trace.tool_calls:
        if not call.ok or call.image not in ids or (call.tool, call.image) in seen:
            continue
        found = [evidence[i] for i in call.evidence_ids if i in evidence]
        if call.tool == "ocr":
            seen.add((call.tool, call.image))
            out += ocr_features([e for e in found if e["kind"] == "word"])
        elif call.tool == "detect":
            seen.add((call.tool, call.image))
            out += detector_features([e for e in found if e["kind"] == "detection"])
    words = _WORD.findall(trace.question.lower())
    out += [("text.question_words", float(len(words))), ("text.vocabulary", hashed(words))]
    if line.outcome == "done":
        out.append(("outcome.abstained", "abstained" if trace.abstained else "answered"))
    return out


def image_features(im) -> list[tuple[str, object]]:
    """Size, aspect ratio, and a thumbnail's brightness and contrast (luma, 0-1)."""
    import numpy as np

    w, h = im.size
    factor = max(1, max(w, h) // THUMBNAIL)
    luma = np.asarray((im.reduce(factor) if factor > 1 else im).convert("L"), dtype=np.float32) / 255.0
    gradient = (
        np.abs(np.diff(luma, axis=0)).mean() + np.abs(np.diff(luma, axis=1)).mean() if luma.size > 1 else 0.0
    )
    return [
        ("image.pixels", float(w * h)),
        ("image.aspect", w / h if h else 0.0),
        ("image.brightness", float(luma.mean())),
        ("image.contrast", float(luma.std())),
        ("image.sharpness", float(gradient)),
    ]


def vision_features(entry: dict) -> list[tuple[str, object]]:
    """Statistics of the vision stage's output for one image (an embedding cache entry)."""
    t = next((v for v in entry.values() if getattr(v, "is_floating_point", lambda: False)()), None)
    if t is None or t.ndim < 2:
        return []
    x = t.detach().float().reshape(-1, t.shape[-1])
    pooled = x.mean(0)
    d = pooled.shape[0]
    return [
        ("vision.mean_activation", float(pooled.mean())),
        ("vision.activation_std", float(x.std())),
        ("vision.pooled_norm", float(pooled.norm()) / math.sqrt(d)),
        ("vision.projection", float(pooled @ _direction(d))),
    ]


@lru_cache(maxsize=8)
def _direction(d: int):
    import torch

    g = torch.Generator().manual_seed(20)
    u = torch.randn(d, generator=g)
    return u / u.norm()


def ocr_features(words: list[dict]) -> list[tuple[str, object]]:
    out: list[tuple[str, object]] = [("ocr.words", float(len(words)))]
    if words:
        out.append(("ocr.confidence", sum(float(w["confidence"]) for w in words) / len(words)))
        scripts = Counter(script(w["text"]) for w in words)
        out.append(("ocr.script", scripts.most_common(1)[0][0]))
    else:
        out.append(("ocr.script", "none"))
    return out


def detector_features(boxes: list[dict]) -> list[tuple[str, object]]:
    out: list[tuple[str, object]] = [("detector.boxes", float(len(boxes)))]
    if boxes:
        out.append(("detector.score", sum(float(b["confidence"]) for b in boxes) / len(boxes)))
        out.append(("detector.top_class", max(boxes, key=lambda b: b["confidence"])["text"].lower()))
    else:
        out.append(("detector.top_class", "none"))
    return out


def script(word: str) -> str:
    """A word's script: the Unicode script most of its letters are in; "digits" for numbers."""
    names = Counter()
    for ch in word:
        if ch.isdigit():
            names["digits"] += 1
        elif ch.isalpha():
            first = unicodedata.name(ch, "OTHER").split()[0]
            names[_SCRIPTS.get(first, "other")] += 1
    return names.most_common(1)[0][0] if names else "other"


def hashed(words: list[str]) -> list[str]:
    """Words as short hashes: coverage can be measured, the question cannot be read back."""
    return [hashlib.blake2b(w.encode(), digest_size=4).hexdigest() for w in words[:64]]
