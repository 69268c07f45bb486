"""Extractive answers: the answer to a question taken straight from the evidence, with its ids.

What a sign says (the confident OCR lines, in reading order; zoomed re-reads replace what they cover),
a receipt's total (the TOTAL line's amount, "76 44" read as 76.44; a price OCR put beside the label),
an item's price, a phone number / email / web address / date, counts of detected objects, where an
object is, the colours of the image or of a region, and metadata. `answer.compose_answer` uses these
when a model's answer is unsupported or contradicts the evidence.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from assistant import policy, verify
from tools.evidence import Evidence


@dataclass
class Extract:
    """An answer taken straight from the evidence: the sentence, its key fact, the ids behind it."""

    text: str
    key: str  # the fact a model's answer must contain to agree ("41.30", "OPEN DAILY", "3")
    ids: list[str]
    kind: str = "quote"


def _lines(evidence: list[Evidence]) -> list[Evidence]:
    """OCR lines worth reporting, in reading order; zoom lines replace OCR lines they re-read."""
    lines = [e for e in evidence if e.kind == "line" and e.tool in ("ocr", "zoom") and _meaningful(e)]
    if not lines:
        return []
    best = max(e.confidence for e in lines)
    tallest = max(e.box[3] - e.box[1] for e in lines if e.box) if any(e.box for e in lines) else 0
    keep = [
        e for e in lines
        if e.confidence >= max(0.6, best - 0.12) and (not e.box or not tallest or (e.box[3] - e.box[1]) >= 0.5 * tallest or e.confidence >= 0.9)
    ]  # fmt: skip
    # A less confident line right next to a kept one is on the same plate or page: it belongs to the text.
    for e in lines:
        if e not in keep and e.confidence >= 0.6 and any(_near(e, k) for k in keep):
            keep.append(e)
    zoomed = [e for e in keep if e.tool == "zoom"]
    if zoomed:
        keep = zoomed + [e for e in keep if e.tool != "zoom" and not any(_overlaps(e, z) for z in zoomed)]
    return sorted(keep, key=lambda e: (e.image, e.box[1] if e.box else 0, e.box[0] if e.box else 0))


def _meaningful(e: Evidence) -> bool:
    """Not texture read as letters ("aa a", "|l"): a word of 3+ letters or digits, or a sure short word."""
    tokens = [re.sub(r"\W", "", t) for t in e.text.split()]
    return any(len(t) >= 3 for t in tokens) or (e.confidence >= 0.9 and any(len(t) >= 2 for t in tokens))


def _near(a: Evidence, b: Evidence) -> bool:
    """Boxes of one image within 1.5 line heights of each other."""
    if a.image != b.image or not a.box or not b.box:
        return False
    gap = 1.5 * max(a.box[3] - a.box[1], b.box[3] - b.box[1])
    dx = max(0.0, max(a.box[0], b.box[0]) - min(a.box[2], b.box[2]))
    dy = max(0.0, max(a.box[1], b.box[1]) - min(a.box[3], b.box[3]))
    return dx <= gap and dy <= gap


def _overlaps(a: Evidence, b: Evidence) -> bool:
    if not a.box or not b.box:
        return False
    ix = min(a.box[2], b.box[2]) - max(a.box[0], b.box[0])
    iy = min(a.box[3], b.box[3]) - max(a.box[1], b.box[1])
    return ix > 0 and iy > 0


def read_text(evidence: list[Evidence]) -> Extract | None:
    lines = _lines(evidence)
    if not lines:
        return None
    text = " ".join(e.text for e in lines)
    return Extract(f'It says "{text}".', text, [e.id for e in lines])


_MONEY = re.compile(r"(\d{1,6})(?:[.,]\s?|\s)(\d{2})\b|(\d{1,6})\b")


def _amount(text: str) -> str | None:
    """The last amount on a line: "TOTAL 76 44" -> "76.44", "Total: $12" -> "12"."""
    found = None
    for m in _MONEY.finditer(text):
        found = f"{m.group(1)}.{m.group(2)}" if m.group(1) else m.group(3)
    return found


def receipt_total(evidence: list[Evidence]) -> Extract | None:
    lines = [e for e in evidence if e.kind == "line" and e.tool in ("ocr", "zoom")]
    scored = []
    for e in lines:
        words = verify.norm(e.text).split()
        for w in words:
            if w in ("subtotal", "sub"):
                break
            if w in ("total", "amount", "due", "balance") or (
                len(w) >= 4 and verify.difflib.SequenceMatcher(None, w, "total").ratio() >= 0.8
            ):
                amount = _amount(e.text)
                if amount is None:
                    amount = _amount_beside(e, lines)
                if amount:
                    scored.append((0 if w == "total" else 1, -(e.box[1] if e.box else 0), e, amount))
                break
    if not scored:
        return None
    scored.sort(key=lambda t: (t[0], t[1]))
    _, _, line, amount = scored[0]
    return Extract(f"The total is {amount}.", amount, [line.id], "number")


def _amount_beside(line: Evidence, lines: list[Evidence]) -> str | None:
    """A price OCR put on its own line, level with the TOTAL label."""
    if not line.box:
        return None
    mid = (line.box[1] + line.box[3]) / 2
    for e in lines:
        if e is not line and e.box and e.box[1] <= mid <= e.box[3] and e.box[0] > line.box[0]:
            amount = _amount(e.text)
            if amount:
                return amount
    return None


def item_price(evidence: list[Evidence], item: str) -> Extract | None:
    if not item:
        return None
    best, best_score = None, 0.0
    for e in evidence:
        if e.kind != "line" or e.tool not in ("ocr", "zoom"):
            continue
        name = verify.norm(re.sub(r"[\d.,$€£]+", " ", e.text))
        score = max((verify.difflib.SequenceMatcher(None, verify.norm(item), name).ratio(),
                     1.0 if verify.norm(item) in name.split() or policy.singular(verify.norm(item)) in name else 0.0))  # fmt: skip
        if score > best_score and _amount(e.text):
            best, best_score = e, score
    if best is None or best_score < 0.75:
        return None
    amount = _amount(best.text)
    return Extract(f"The {item} costs {amount}.", amount, [best.id], "number")


def find_field(evidence: list[Evidence], name: str) -> Extract | None:
    pattern = policy.FIELDS.get(name, (None, None))[1]
    if not pattern:
        return None
    for e in evidence:
        if e.kind == "line" and e.tool in ("ocr", "zoom"):
            m = re.search(pattern, e.text, re.I)
            if m:
                value = m.group(0).strip()
                return Extract(f'The {name} is "{value}".', value, [e.id])
    return None


def count_objects(evidence: list[Evidence], target: str) -> Extract | None:
    dets = [e for e in evidence if e.kind == "detection"]
    if target:
        dets = [e for e in dets if policy.singular(e.text.lower()) == policy.singular(target.lower())]
        if not dets:
            return None
        label = target if len(dets) == 1 else _plural(target)
        return Extract(f"I count {len(dets)} {label}.", str(len(dets)), [e.id for e in dets], "count")
    if not dets:
        return None
    per: dict[str, list[str]] = {}
    for e in dets:
        per.setdefault(e.text, []).append(e.id)
    parts = ", ".join(f"{len(v)} {k if len(v) == 1 else _plural(k)}" for k, v in per.items())
    return Extract(f"I count {len(dets)} objects: {parts}.", str(len(dets)), [e.id for e in dets], "count")


def _plural(w: str) -> str:
    return (
        w if w.endswith("s") else (w[:-1] + "ies" if w.endswith("y") and w[-2:-1] not in "aeiou" else w + "s")
    )


def locate(evidence: list[Evidence], target: str, sizes: dict) -> Extract | None:
    dets = [
        e
        for e in evidence
        if e.kind == "detection"
        and (not target or policy.singular(e.text.lower()) == policy.singular(target.lower()))
    ]
    if not dets or not sizes:
        return None
    d = max(dets, key=lambda e: e.confidence)
    w, h = sizes.get(d.image, (0, 0))
    if not w:
        return None
    cx, cy = (d.box[0] + d.box[2]) / 2 / w, (d.box[1] + d.box[3]) / 2 / h
    v = "top" if cy < 0.4 else "bottom" if cy > 0.6 else ""
    hz = "left" if cx < 0.4 else "right" if cx > 0.6 else ""
    where = f"{v} {hz}".strip() or "center"
    return Extract(f"The {d.text} is at the {where} of the image.", where, [d.id], "position")


def colours(evidence: list[Evidence], target: str, sizes: dict | None = None) -> Extract | None:
    found = [e for e in evidence if e.kind == "color"]
    regional = [e for e in found if e.box and not _whole_image(e, sizes or {})]
    if target and regional:  # the colour call on the target's box (the latest one)
        found = [e for e in regional if e.box == regional[-1].box]
        subject, verb = f"The {target}", "is mostly"
    else:
        found = [e for e in found if e not in regional] or found
        subject, verb = "The main colours of the image", "are"
    if not found:
        return None
    found.sort(key=lambda e: -float(e.extra.get("share", 0)))
    top = found[:3]
    names = ", ".join(f"{e.text} ({float(e.extra.get('share', 0)) * 100:.0f}%)" for e in top)
    return Extract(f"{subject} {verb} {names}.", top[0].text, [e.id for e in top], "colour")


def _whole_image(e: Evidence, sizes: dict) -> bool:
    w, h = sizes.get(e.image, (0, 0))
    if not w:
        return e.box[0] <= 1 and e.box[1] <= 1
    return e.box[0] <= 1 and e.box[1] <= 1 and e.box[2] >= w - 1 and e.box[3] >= h - 1


_META_KEYS = {
    "when": ("datetime", "date", "time"),
    "camera": ("make", "model", "camera"),
    "size": ("size", "width", "height", "resolution"),
    "gps": ("gps", "latitude", "longitude"),
    "format": ("format",),
}


def metadata(evidence: list[Evidence], question: str) -> Extract | None:
    q = question.lower()
    keys = ()
    if re.search(r"\b(when|date|time)\b", q):
        keys = _META_KEYS["when"]
    elif re.search(r"camera|taken with|device", q):
        keys = _META_KEYS["camera"]
    elif re.search(r"gps|where was|location", q):
        keys = _META_KEYS["gps"]
    elif re.search(r"format|file type", q):
        keys = _META_KEYS["format"]
    elif re.search(r"size|big|large|resolution|dimension", q):
        keys = _META_KEYS["size"]
    found = [
        e for e in evidence if e.tool == "metadata" and any(k in e.text.lower().split(":")[0] for k in keys)
    ]
    if not found:
        return None
    return Extract(
        "; ".join(e.text for e in found[:3]) + ".",
        found[0].text.split(":", 1)[-1].strip(),
        [e.id for e in found[:3]],
        "metadata",
    )


def extract(intent: policy.Intent, question: str, evidence: list[Evidence], sizes: dict) -> Extract | None:
    name = intent.name
    if name == "read":
        return read_text(evidence)
    if name == "total":
        return receipt_total(evidence)
    if name == "price":
        return item_price(evidence, intent.target) or None
    if name == "field":
        return find_field(evidence, intent.field)
    if name in ("count", "presence"):
        return count_objects(evidence, intent.target)
    if name == "where":
        return locate(evidence, intent.target, sizes)
    if name == "color":
        return colours(evidence, intent.target, sizes)
    if name == "metadata":
        return metadata(evidence, question)
    return None
