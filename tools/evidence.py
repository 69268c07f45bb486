"""Evidence records and the one coordinate frame they live in.

A tool returns `Finding`s; an `EvidenceStore` (one per conversation) turns them into `Evidence`
with ids that stay stable for the conversation (`ocr:3`, `det:2`, `color:1`): running the same tool
with the same arguments on the same image again gives back the same ids.

Every box is `(x0, y0, x1, y1)` in pixels of the original, upright image (after EXIF orientation).
The converters below map to and from normalised 0-1, 0-1000 (the frame many VLMs emit) and a
resized-image frame (what the model's processor saw), and from a crop back to the original.
"""

from __future__ import annotations

import json
import threading
from dataclasses import asdict, dataclass, field

Box = tuple[float, float, float, float]

# Evidence id prefixes per tool; tools declare theirs, this is the fallback.
DEFAULT_PREFIX = {"ocr": "ocr", "detect": "det", "zoom": "zoom", "color": "color", "metadata": "meta"}


@dataclass
class Finding:
    """One thing a tool found, before it gets an id."""

    kind: str  # "word" | "line" | "block" | "detection" | "color" | "metadata" | ...
    text: str  # the text read, the class label, the colour name, or "key: value"
    confidence: float = 1.0  # 0..1
    box: Box | None = None  # original-image pixels, None for whole-image facts
    extra: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        d = asdict(self)
        d["box"] = list(self.box) if self.box is not None else None
        return d

    @classmethod
    def from_dict(cls, d: dict) -> Finding:
        box = d.get("box")
        return cls(
            kind=d["kind"],
            text=d["text"],
            confidence=float(d.get("confidence", 1.0)),
            box=tuple(box) if box is not None else None,
            extra=dict(d.get("extra") or {}),
        )


@dataclass
class Evidence:
    """A finding with its conversation-stable id, the tool that produced it and the image it is about."""

    id: str
    tool: str
    image: str  # ImageRef.id
    kind: str
    text: str
    confidence: float
    box: Box | None = None
    extra: dict = field(default_factory=dict)

    @property
    def label(self) -> str:
        return self.text

    def to_dict(self) -> dict:
        d = {
            "id": self.id,
            "tool": self.tool,
            "image": self.image,
            "kind": self.kind,
            "text": self.text,
            "confidence": round(float(self.confidence), 4),
            "box": [round(float(v), 1) for v in self.box] if self.box is not None else None,
        }
        if self.kind == "detection":
            d["label"] = self.text
        if self.extra:
            d["extra"] = self.extra
        return d

    @classmethod
    def from_dict(cls, d: dict) -> Evidence:
        box = d.get("box")
        return cls(
            id=d["id"],
            tool=d["tool"],
            image=d["image"],
            kind=d["kind"],
            text=d["text"],
            confidence=float(d["confidence"]),
            box=tuple(box) if box is not None else None,
            extra=dict(d.get("extra") or {}),
        )

    def short(self) -> str:
        """One line for prompts and timelines: `[ocr:3] "OPEN" (0.91) box=[10,20,80,40]`."""
        box = "" if self.box is None else " box=[" + ",".join(str(round(v)) for v in self.box) + "]"
        return f"[{self.id}] {self.kind} {json.dumps(self.text)} ({self.confidence:.2f}){box}"


class EvidenceStore:
    """All evidence of one conversation, with ids that never change once given."""

    def __init__(self):
        self._by_id: dict[str, Evidence] = {}
        self._by_call: dict[tuple, list[str]] = {}
        self._counters: dict[str, int] = {}
        self._lock = threading.Lock()

    def add(
        self, tool: str, image_id: str, findings: list[Finding], call_key: str = "", prefix: str | None = None
    ):
        """Register a tool call's findings; the same (tool, image, call_key) returns the ids it got before."""
        prefix = prefix or DEFAULT_PREFIX.get(tool, tool)
        key = (tool, image_id, call_key)
        with self._lock:
            if key in self._by_call:
                return [self._by_id[i] for i in self._by_call[key]]
            out = []
            for f in findings:
                n = self._counters.get(prefix, 0) + 1
                self._counters[prefix] = n
                ev = Evidence(
                    id=f"{prefix}:{n}",
                    tool=tool,
                    image=image_id,
                    kind=f.kind,
                    text=f.text,
                    confidence=f.confidence,
                    box=f.box,
                    extra=f.extra,
                )
                self._by_id[ev.id] = ev
                out.append(ev)
            self._by_call[key] = [e.id for e in out]
            return out

    def get(self, evidence_id: str) -> Evidence | None:
        return self._by_id.get(evidence_id)

    def __contains__(self, evidence_id: str) -> bool:
        return evidence_id in self._by_id

    def all(self, image_id: str | None = None) -> list[Evidence]:
        return [e for e in self._by_id.values() if image_id is None or e.image == image_id]

    def __len__(self) -> int:
        return len(self._by_id)

    def to_list(self) -> list[dict]:
        return [e.to_dict() for e in self._by_id.values()]


# ---- coordinate frames ---------------------------------------------------------------------------


def to_normalized(box: Box, size: tuple[int, int]) -> Box:
    w, h = size
    return (box[0] / w, box[1] / h, box[2] / w, box[3] / h)


def from_normalized(box: Box, size: tuple[int, int]) -> Box:
    w, h = size
    return (box[0] * w, box[1] * h, box[2] * w, box[3] * h)


def to_1000(box: Box, size: tuple[int, int]) -> Box:
    return tuple(v * 1000.0 for v in to_normalized(box, size))


def from_1000(box: Box, size: tuple[int, int]) -> Box:
    return from_normalized(tuple(v / 1000.0 for v in box), size)


def to_resized(box: Box, original: tuple[int, int], resized: tuple[int, int]) -> Box:
    """Original-image pixels -> pixels of the image resized to `resized` (what a processor saw)."""
    sx, sy = resized[0] / original[0], resized[1] / original[1]
    return (box[0] * sx, box[1] * sy, box[2] * sx, box[3] * sy)


def from_resized(box: Box, original: tuple[int, int], resized: tuple[int, int]) -> Box:
    return to_resized(box, resized, original)


def crop_to_original(box: Box, crop_origin: tuple[float, float], scale: float = 1.0) -> Box:
    """A box found in a crop (taken at `crop_origin`, then upscaled by `scale`) -> original pixels."""
    ox, oy = crop_origin
    return (box[0] / scale + ox, box[1] / scale + oy, box[2] / scale + ox, box[3] / scale + oy)


def clip_box(box: Box, size: tuple[int, int]) -> Box:
    w, h = size
    x0, y0, x1, y1 = box
    return (min(max(x0, 0.0), w), min(max(y0, 0.0), h), min(max(x1, 0.0), w), min(max(y1, 0.0), h))


def iou(a: Box, b: Box) -> float:
    ix0, iy0, ix1, iy1 = max(a[0], b[0]), max(a[1], b[1]), min(a[2], b[2]), min(a[3], b[3])
    inter = max(0.0, ix1 - ix0) * max(0.0, iy1 - iy0)
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


# Where a box sits: its centre in the left/top 40 %, the right/bottom 40 %, or the middle band between.
POSITION_LOW, POSITION_HIGH = 0.4, 0.6


def position(box: Box, size: tuple[int, int]) -> tuple[str, str]:
    """("top" | "bottom" | "", "left" | "right" | "") of the box's centre in an image of `size`."""
    w, h = size
    cx, cy = (box[0] + box[2]) / 2 / w, (box[1] + box[3]) / 2 / h
    vertical = "top" if cy < POSITION_LOW else "bottom" if cy > POSITION_HIGH else ""
    horizontal = "left" if cx < POSITION_LOW else "right" if cx > POSITION_HIGH else ""
    return vertical, horizontal


def near(a: Box, b: Box, gap: float) -> bool:
    """The boxes overlap or lie within `gap` pixels of each other on both axes."""
    return a[0] - gap <= b[2] and b[0] - gap <= a[2] and a[1] - gap <= b[3] and b[1] - gap <= a[3]


def center_inside(box: Box, outer: Box) -> bool:
    """The centre of `box` lies inside `outer` (a word of a line, a line in an area)."""
    cx, cy = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2
    return outer[0] <= cx <= outer[2] and outer[1] <= cy <= outer[3]
