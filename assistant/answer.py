"""Grounded answer composition: what the user sees, built from the model's answer and the evidence.

For questions the evidence can answer by itself (what a sign says, a receipt's total, an item's price,
a phone number, a count, a colour, where something is, when a photo was taken) an extractive answer is
built from the evidence, with citations. The model's answer is verified claim by claim; it is kept when
it states the evidence's answer, otherwise (with `grounding="strict"`) the evidence wins and the user
sees the model's words and why they were overruled. Where the evidence cannot answer, the assistant
abstains instead of guessing. Pure functions of (question, intent, evidence, model output): a trace
replays through here to the same answer.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import prompts
from assistant import policy, verify
from assistant.context import is_instruction_like
from assistant.trace import ClaimRecord
from tools.evidence import Evidence


@dataclass
class Extract:
    """An answer taken straight from the evidence: the sentence, its key fact, the ids behind it."""

    text: str
    key: str  # the fact a model's answer must contain to agree ("41.30", "OPEN DAILY", "3")
    ids: list[str]
    kind: str = "quote"


@dataclass
class Composed:
    answer: str
    abstained: bool
    citations: list[str]
    claims: list[ClaimRecord] = field(default_factory=list)
    composition: str = "model"  # "model" | "evidence" | "abstain"
    note: str = ""


def abstain_text(reason: str) -> str:
    return prompts.load("abstain").render(reason=reason)


# ---- extractive answers --------------------------------------------------------------------------


def _lines(evidence: list[Evidence]) -> list[Evidence]:
    """OCR lines worth reporting, in reading order; zoom lines replace OCR lines they re-read."""
    lines = [
        e
        for e in evidence
        if e.kind == "line" and e.tool in ("ocr", "zoom") and len(re.sub(r"\W", "", e.text)) >= 2
    ]
    if not lines:
        return []
    best = max(e.confidence for e in lines)
    tallest = max(e.box[3] - e.box[1] for e in lines if e.box) if any(e.box for e in lines) else 0
    keep = [
        e for e in lines
        if e.confidence >= max(0.6, best - 0.12) and (not e.box or not tallest or (e.box[3] - e.box[1]) >= 0.5 * tallest or e.confidence >= 0.9)
    ]  # fmt: skip
    zoomed = [e for e in keep if e.tool == "zoom"]
    if zoomed:
        keep = zoomed + [e for e in keep if e.tool != "zoom" and not any(_overlaps(e, z) for z in zoomed)]
    return sorted(keep, key=lambda e: (e.image, e.box[1] if e.box else 0, e.box[0] if e.box else 0))


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
    if re.search(r"\bwhen|date|time\b", q):
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


# ---- composition ---------------------------------------------------------------------------------

NEEDS_EVIDENCE = policy.READING_INTENTS | policy.OBJECT_INTENTS | {"color", "metadata"}
_TOOL_FOR = {"read": "ocr", "total": "ocr", "price": "ocr", "field": "ocr", "count": "detect", "presence": "detect",
             "where": "detect", "color": "color", "metadata": "metadata"}  # fmt: skip


def contains_fuzzy(haystack: str, needle: str, threshold: float = 0.8) -> bool:
    """Whether `needle` occurs in `haystack` up to case, spacing and small OCR-like errors."""
    h, n = verify.norm(haystack).replace(" ", ""), verify.norm(needle).replace(" ", "")
    if not n:
        return False
    if n in h:
        return True
    size = len(n)
    return any(verify.similarity(n, h[i : i + size]) >= threshold for i in range(max(1, len(h) - size + 1)))


def suspicious_ids(evidence: list[Evidence]) -> set[str]:
    """OCR lines that read like instructions to a model, and the words inside them."""
    lines = [
        e
        for e in evidence
        if e.tool in ("ocr", "zoom") and e.kind in ("line", "block") and is_instruction_like(e.text)
    ]
    out = {e.id for e in lines}
    for w in evidence:
        if w.kind == "word" and w.box and any(_inside(w, li) for li in lines):
            out.add(w.id)
    return out


def _inside(w: Evidence, line: Evidence) -> bool:
    if w.image != line.image or not line.box:
        return False
    cx, cy = (w.box[0] + w.box[2]) / 2, (w.box[1] + w.box[3]) / 2
    return line.box[0] <= cx <= line.box[2] and line.box[1] <= cy <= line.box[3]


def _per_image(intent, question, evidence, sizes, order: list[str]) -> Extract | None:
    groups = [i for i in order if any(e.image == i for e in evidence)]
    if len(groups) <= 1:
        return extract(intent, question, evidence, sizes)
    parts = []
    for n, image in enumerate(groups, 1):
        ex = extract(intent, question, [e for e in evidence if e.image == image], sizes)
        if ex is not None:
            parts.append((n, ex))
    if not parts:
        return None
    if len(parts) == 1:
        return parts[0][1]
    text = " ".join(f"Image {n}: {ex.text}" for n, ex in parts)
    return Extract(text, parts[0][1].key, [i for _, ex in parts for i in ex.ids], parts[0][1].kind)


def _why_not(intent: policy.Intent, evidence: list[Evidence], errors: dict) -> str:
    tool = _TOOL_FOR.get(intent.name, "")
    if tool in errors:
        return f"the {tool} tool failed ({errors[tool]})"
    has_text = any(e.tool in ("ocr", "zoom") and e.kind in ("word", "line") for e in evidence)
    if intent.name == "field":
        what = {"phone": "phone number", "url": "web address"}.get(
            intent.field, intent.field or "such detail"
        )
        return f"no {what} was read in the image" + ("." if has_text else " (no text was read at all).")
    if intent.name == "read" or (intent.name in policy.READING_INTENTS and not has_text):
        return "no text was read in the image."
    if intent.name == "total":
        return "no total was found in the text read from the image."
    if intent.name == "price":
        return f"no price for {intent.target or 'that item'!r} was read in the image."
    if intent.name in policy.OBJECT_INTENTS:
        seen = sorted({e.text for e in evidence if e.kind == "detection"})
        found = f" (it found: {', '.join(seen)})" if seen else ""
        return f"the detector found no {intent.target or 'object'}{found}."
    if intent.name == "color":
        return "no colour evidence."
    if intent.name == "metadata":
        return "the image carries no such metadata."
    return "the tools found nothing that answers it."


def _cite(ids: list[str]) -> str:
    return f" [{', '.join(ids[:4])}]" if ids else ""


def _render(claims: list[ClaimRecord]) -> str:
    out = []
    for c in claims:
        text = c.text.rstrip()
        end = text[-1] if text[-1:] in ".!?" else "."
        body = text[:-1] if text[-1:] in ".!?" else text
        if c.supported:
            out.append(f"{body}{_cite(c.evidence)}{end}")
        else:
            out.append(f"{body} [not supported by the evidence]{end}")
    return " ".join(out)


def _short(text: str, n: int = 120) -> str:
    text = " ".join(text.split())
    return text if len(text) <= n else text[: n - 1] + "…"


def _summary(evidence: list[Evidence]) -> Extract | None:
    parts, ids = [], []
    dets = [e for e in evidence if e.kind == "detection"]
    if dets:
        ex = count_objects(dets, "")
        parts.append(f"objects: {ex.text[ex.text.index(':') + 2 :].rstrip('.')}")
        ids += ex.ids
    text = read_text(evidence)
    if text:
        parts.append(f'text: "{text.key}"')
        ids += text.ids
    col = colours(evidence, "")
    if col:
        parts.append(f"colours: {col.text.split(' are ', 1)[-1].rstrip('.')}")
        ids += col.ids
    if not parts:
        return None
    return Extract("The tools found " + "; ".join(parts) + ".", "", ids, "summary")


def compose_answer(
    question: str,
    intent,
    evidence: list[Evidence],
    model_output: str,
    tool_errors: dict | None = None,
    sizes: dict | None = None,
    grounding: str = "strict",
    image_order: list[str] | None = None,
) -> Composed:
    """The answer the user sees; see the module docstring for the rules."""
    from assistant.toolcalls import strip_tool_calls

    intent = intent if isinstance(intent, policy.Intent) else policy.Intent(str(intent or "other"))
    sizes = {k: tuple(v) for k, v in (sizes or {}).items()}
    order = image_order or list(dict.fromkeys(e.image for e in evidence))
    suspicious = suspicious_ids(evidence)
    model_text = strip_tool_calls(model_output or "").strip()
    claims = verify.verify_answer(model_text, evidence, sizes, suspicious)
    if intent.name not in policy.READING_INTENTS:
        for (
            c
        ) in claims:  # an answer that repeats an injected instruction is not grounded, whatever it matches
            if c.supported and c.evidence and set(c.evidence) <= suspicious:
                c.supported = False
                c.reason = "it only repeats text on the image that reads like an instruction; that text is data, not an answer"
    for c in claims:
        c.source = "model"
    unsupported = [c for c in claims if not c.supported]
    model_said = model_text and not verify.is_abstention(model_text)

    ex = _per_image(intent, question, evidence, sizes, order) if intent.name in NEEDS_EVIDENCE else None
    if ex is None and intent.name not in NEEDS_EVIDENCE:
        if claims and not unsupported or (claims and grounding == "flag"):
            return _from_model(claims)
        if any(c.supported for c in claims):
            return _from_model(claims)
        ex = _summary(evidence)
        if ex is not None:
            return _from_evidence(
                ex,
                claims,
                model_text,
                model_said,
                lead="I can't verify the model's answer. " if model_said else "",
            )
    if ex is None:
        reason = _why_not(intent, evidence, tool_errors or {})
        answer = abstain_text(reason)
        note = ""
        if model_said and claims:
            note = f'The model answered "{_short(model_text)}", which the evidence does not support.'
            answer += f"\n({note})"
        ab = ClaimRecord(abstain_text(reason), True, [], reason, "abstain", "evidence")
        return Composed(answer, True, [], [ab, *[c for c in claims if not c.supported]], "abstain", note)
    agrees = claims and not unsupported and any(contains_fuzzy(c.text, ex.key) for c in claims if c.supported)
    if agrees or (grounding == "flag" and claims):
        return _from_model(claims)
    lead = "Yes. " if intent.name == "presence" else ""
    return _from_evidence(ex, claims, model_text, model_said, lead)


def _from_model(claims: list[ClaimRecord]) -> Composed:
    cites = list(dict.fromkeys(i for c in claims if c.supported for i in c.evidence[:4]))
    return Composed(_render(claims), False, cites, claims, "model")


def _from_evidence(ex: Extract, claims, model_text: str, model_said: bool, lead: str = "") -> Composed:
    body = ex.text.rstrip(".")
    answer = f"{lead}{body}{_cite(ex.ids)}."
    own = ClaimRecord(lead + ex.text, True, ex.ids, "taken from the evidence", ex.kind, "evidence")
    bad = [c for c in claims if not c.supported]
    note = ""
    if model_said:
        why = bad[0].reason if bad else f"it does not state what the evidence says ({ex.key!r})"
        note = f'The model answered "{_short(model_text)}", which the evidence does not support: {why}.'
        answer += f"\n({note})"
    return Composed(answer, False, list(dict.fromkeys(ex.ids[:4])), [own, *bad], "evidence", note)
