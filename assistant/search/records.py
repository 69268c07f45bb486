"""One image's document: its tools' evidence, and what search reads off it.

An `ImageDoc` holds the evidence records the tools gave one image (ids as a one-image conversation gives
them: `ocr:3`, `det:2`, `cls:1`, `color:1`, `meta:5`), with the call key (tool, version, arguments) of each
tool that produced them. From it come the fields search uses, each keeping the ids it came from:
- `lines`: OCR lines (what full-text search and the sentence embeddings read);
- `objects`: detector classes with their sure and maybe counts (by the detector's measured thresholds);
- `labels`: ImageNet labels (from 5 % up) and the COCO class each nests under;
- `colours`: dominant colour names of the whole image with their share;
- `amounts`: money read on the image (a receipt's total marked), for "over 20 euros";
- `dates`: the photo's EXIF date and dates read on it, for "from 2019".
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from assistant import objects
from assistant.text import plural as text_plural
from tools.evidence import Evidence

LABEL_MIN = 0.05  # ImageNet labels below this probability say little (top-5 tails)
COLOUR_MIN = 0.08  # colours covering less of the image are not what it "is"

_NUM = r"(\d{1,3}(?:[ ,.]\d{3})*[.,]\d{2}|\d+(?:[.,]\d{1,2})?)"
_CURRENCY = r"(?:[$€£¥]|rm|eur|euro|euros|usd|gbp|s\$|rs\.?|chf)"
MONEY = re.compile(
    rf"(?i)(?:{_CURRENCY}\s*{_NUM}|{_NUM}\s*{_CURRENCY}\b|(?<![\d.,:/-])(\d+[.,]\d{{2}})(?![\d%]))"
)
TOTAL_WORDS = re.compile(r"(?i)\b(total|amount due|balance due|grand total|to pay|net amt|amount)\b")
_MONTHS = ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"]
DATE_PATTERNS = (
    (re.compile(r"\b(19\d\d|20\d\d)[-/.:](\d{1,2})[-/.:](\d{1,2})\b"), "ymd"),
    (re.compile(r"\b(\d{1,2})[-/.](\d{1,2})[-/.](19\d\d|20\d\d)\b"), "dmy"),
    (re.compile(r"\b(\d{1,2})[-/.](\d{1,2})[-/.](\d\d)\b"), "dmy2"),
    (re.compile(r"(?i)\b(\d{1,2})\s*(jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec)[a-z]*\.?,?\s*(19\d\d|20\d\d)\b"), "dMy"),
)  # fmt: skip


@dataclass
class ImageDoc:
    """What the index keeps of one image."""

    sha256: str
    path: str  # where it was first found (absolute)
    width: int = 0
    height: int = 0
    evidence: list[Evidence] = field(default_factory=list)
    tools: dict[str, str] = field(default_factory=dict)  # tool -> call key (name, version, arguments)
    errors: dict[str, str] = field(default_factory=dict)  # tool -> its one-line error, when it failed

    def of(self, tool: str) -> list[Evidence]:
        return [e for e in self.evidence if e.tool == tool]

    def lines(self) -> list[Evidence]:
        return [e for e in self.of("ocr") if e.kind == "line" and e.text.strip()]

    def text(self) -> str:
        return "\n".join(e.text for e in self.lines())

    def objects(self) -> dict[str, dict]:
        """class -> {"sure": n, "maybe": n, "ids": [...], "best": score} by the detector's thresholds."""
        dets = [e for e in self.of("detect") if e.kind == "detection"]
        out: dict[str, dict] = {}
        record = objects.record_for(self.evidence, self.evidence[0].image) if self.evidence else None
        sure, maybe = objects.thresholds(record)
        for d in dets:
            if d.confidence < maybe:
                continue
            o = out.setdefault(d.text.lower(), {"sure": 0, "maybe": 0, "ids": [], "best": 0.0})
            o["sure" if d.confidence >= sure else "maybe"] += 1
            o["ids"].append(d.id)
            o["best"] = max(o["best"], d.confidence)
        return out

    def labels(self) -> list[tuple[str, float, str, str | None]]:
        """(ImageNet label, probability, evidence id, COCO class it nests under) from LABEL_MIN up."""
        return [
            (e.text, e.confidence, e.id, e.extra.get("coco"))
            for e in self.of("classify")
            if e.kind == "label" and e.confidence >= LABEL_MIN
        ]

    def colours(self) -> list[tuple[str, float, str]]:
        """(colour name, share of the image, evidence id), largest first."""
        found = [
            (e.text, float(e.extra.get("share", 0.0)), e.id) for e in self.of("color") if e.kind == "color"
        ]
        return sorted((c for c in found if c[1] >= COLOUR_MIN), key=lambda c: -c[1])

    def amounts(self) -> list[dict]:
        """Money read on the image: {"value", "id", "text", "total": the line names a total}."""
        out = []
        for line in self.lines():
            for m in MONEY.finditer(line.text):
                raw = next(g for g in m.groups() if g)
                value = parse_number(raw)
                if value is not None and 0 < value < 1e7:
                    out.append(
                        {
                            "value": value,
                            "id": line.id,
                            "text": line.text,
                            "total": bool(TOTAL_WORDS.search(line.text)),
                        }
                    )
        return out

    def dates(self) -> list[dict]:
        """{"date": "YYYY-MM-DD", "id", "source": "exif" | "text"}: when it was taken, dates read on it."""
        out = []
        for e in self.of("metadata"):
            if e.text.startswith(("timestamp:", "date:", "datetime:")):
                d = parse_date(e.text.split(":", 1)[1])
                if d:
                    out.append({"date": d, "id": e.id, "source": "exif"})
        for line in self.lines():
            d = parse_date(line.text)
            if d:
                out.append({"date": d, "id": line.id, "source": "text"})
        return out

    def caption(self) -> str:
        """The labels in words, for the sentence embedding: 'two persons, a dog; German shepherd; gray, olive'."""
        parts = []
        objs = self.objects()
        if objs:
            parts.append(
                ", ".join(
                    f"{count_words(o['sure'] or o['maybe'])} {plural(c, o['sure'] or o['maybe'])}"
                    for c, o in objs.items()
                )
            )
        labels = self.labels()
        if labels:
            parts.append(", ".join(label for label, *_ in labels))
        colours = self.colours()
        if colours:
            parts.append("colours " + ", ".join(c for c, *_ in colours[:3]))
        return "; ".join(parts)

    def label_text(self) -> str:
        """Every label word the image has, for BM25 over labels: classes, ImageNet labels, colours."""
        words = []
        for c, o in self.objects().items():
            words += [c] * max(1, o["sure"])
        for label, _, _, coco in self.labels():
            words += [label] + ([coco] if coco else [])
        words += [c for c, *_ in self.colours()]
        return " ".join(words)


def parse_number(raw: str) -> float | None:
    """'1,234.50' -> 1234.5; '12,50' -> 12.5 (a decimal comma); '1 234,00' -> 1234.0."""
    s = raw.replace(" ", "")
    if re.fullmatch(r"\d+,\d{1,2}", s):
        s = s.replace(",", ".")
    elif "," in s and "." in s and s.rfind(",") > s.rfind("."):
        s = s.replace(".", "").replace(",", ".")
    else:
        s = s.replace(",", "")
    try:
        return float(s)
    except ValueError:
        return None


def parse_date(text: str) -> str | None:
    """The first plausible date in `text` as YYYY-MM-DD, or None."""
    for pattern, order in DATE_PATTERNS:
        m = pattern.search(text)
        if not m:
            continue
        a, b, c = m.groups()
        if order == "ymd":
            y, mo, d = int(a), int(b), int(c)
        elif order == "dMy":
            y, mo, d = int(c), _MONTHS.index(b.lower()[:3]) + 1, int(a)
        else:
            y = int(c) + (2000 if order == "dmy2" else 0)
            d, mo = int(a), int(b)
            if mo > 12 >= d:
                d, mo = mo, d  # a US date (month first)
        if 1 <= mo <= 12 and 1 <= d <= 31 and 1970 <= y <= 2100:
            return f"{y:04d}-{mo:02d}-{d:02d}"
    return None


_SMALL = ["no", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten"]


def count_words(n: int) -> str:
    return _SMALL[n] if n < len(_SMALL) else str(n)


def plural(word: str, n: int) -> str:
    return word if n == 1 else ("people" if word == "person" else text_plural(word))
