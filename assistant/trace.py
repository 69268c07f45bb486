"""Traces: what one turn did, as plain dataclasses that serialise to JSON lines and read back.

One JSONL file per conversation, `<trace_dir>/<conversation_id>.jsonl`, one `TurnTrace` per line, appended
as each turn ends (a crash loses at most the turn in flight; no line is ever half-rewritten). The default
trace directory is `tools.paths.cache_dir("traces")` (that is `$GROUNDED_VLM_HOME/traces`); an
`AssistantConfig.trace_dir` overrides it.

A turn records everything needed to inspect it and to replay its last stage: the question, the images
(hashes, sizes), each tool call (arguments, result summary, evidence ids, duration, cache hit, error),
the budget decision per image, the evidence itself, the model and prompt versions, tokens and timings,
the model's raw output, and the verified answer with each claim. This module holds the records and their
JSONL I/O only, so every layer can import it; replaying a turn lives in `assistant.replay`.
"""

from __future__ import annotations

import json
import re
import threading
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

from tools.errors import BadInputError

# A conversation id names its trace file: no path separators, no leading dot, bounded length.
SAFE_CONVERSATION_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,127}")
TRACE_FORMAT = 1  # bumped when a field changes meaning; readers accept older files field by field


def _from_dict(cls, d: dict):
    """Build a dataclass from a dict, ignoring unknown keys (files written by a newer version)."""
    names = {f.name for f in fields(cls)}
    return cls(**{k: v for k, v in d.items() if k in names})


@dataclass
class ImageRecord:
    """An image as the conversation saw it: identity and size, never the pixels."""

    id: str  # ImageRef.id (first 16 hex digits of the content sha256)
    sha256: str
    index: int  # 1-based position among all images of the conversation ("the first picture" = 1)
    turn: int  # the turn that brought it
    source: str = ""  # file path or "<pil>"/"<bytes>"
    width: int = 0
    height: int = 0


@dataclass
class ToolCallRecord:
    """One tool call as it happened."""

    tool: str
    image: str  # image id
    image_index: int
    args: dict = field(default_factory=dict)
    source: str = "policy"  # "policy" (rule-based plan) | "model" (the model asked for it)
    reason: str = ""  # why it was called (the policy's rule or the model's step)
    step: int = 0  # model-driven step number (0 for the policy's calls)
    ok: bool = True
    error: str | None = None
    summary: str = ""  # one line: "12 findings: 'OPEN' 'DAILY' ..."
    evidence_ids: list[str] = field(default_factory=list)
    duration_s: float = 0.0
    cache_hit: bool = False

    def short(self) -> str:
        status = "ok" if self.ok else f"error: {self.error}"
        hit = " (cached)" if self.cache_hit else ""
        return f"{self.tool}(image {self.image_index}, {json.dumps(self.args, default=list)}) {status}{hit} {self.duration_s * 1000:.0f} ms - {self.summary}"


@dataclass
class BudgetRecord:
    """How one image entered the model this turn: in full, cropped, reduced, or as text only."""

    image: str  # image id
    image_index: int
    choice: str  # "full" | "crop" | "reduced" | "text"
    tokens: int = 0  # image tokens spent on it (0 for text)
    reason: str = ""
    status: str = "new"  # "new" | "kept" (already in context) | "readmitted" | "demoted"
    full_tokens: int = 0  # what the whole image would cost, for "saved" accounting
    crop: list[float] | None = None  # region shown, original pixels, when choice is "crop"
    max_side: int | None = None  # resolution cap when reduced
    evidence: list[str] = field(default_factory=list)  # evidence ids a crop region came from


@dataclass
class ClaimRecord:
    """One claim of the answer and what the verifier found."""

    text: str
    supported: bool
    evidence: list[str] = field(default_factory=list)  # ids that support (or contradict) it
    reason: str = ""
    kind: str = "general"  # "quote" | "number" | "count" | "colour" | "position" | "general" | "abstain"
    source: str = "model"  # "model" (the model wrote it) | "evidence" (composed from evidence)


@dataclass
class TurnTrace:
    """Everything one turn did. `to_dict` is one JSON line; `from_dict` reads it back."""

    conversation_id: str
    turn: int  # 1-based
    question: str
    created: str = ""  # ISO 8601 UTC
    format: int = TRACE_FORMAT
    images: list[ImageRecord] = field(default_factory=list)  # images given with this turn's question
    in_scope: list[str] = field(default_factory=list)  # ids of the images this question is about
    in_scope_numbers: list[int] = field(default_factory=list)  # their 1-based numbers in the conversation
    intent: str = ""  # the policy's reading of the question ("read", "total", "count", ...)
    intent_detail: dict = field(default_factory=dict)  # {"target", "field", "inherited"}
    image_sizes: dict = field(default_factory=dict)  # image id -> [width, height], images in scope
    grounding: str = "strict"  # AssistantConfig.grounding when the turn ran
    tool_policy: str = ""  # "policy" | "model" | "auto->policy" ...
    tool_calls: list[ToolCallRecord] = field(default_factory=list)
    budget: list[BudgetRecord] = field(default_factory=list)
    evidence: list[dict] = field(default_factory=list)  # Evidence.to_dict() of the images in scope
    model: dict = field(default_factory=dict)  # {"id", "revision", "family", "device"}
    prompt_versions: dict = field(default_factory=dict)  # {"system": "3", ...}
    tokens: dict = field(default_factory=dict)  # {"in", "out", "image", "kv_reused"}
    # What fitted the model's context (assistant/window.py): "evidence_sent" (the ids its evidence block
    # showed; the rest of `evidence` was left out to fit), "evidence_left_out", "history_turns" (earlier
    # turns kept), "history_dropped" (left out to fit), "prompt_tokens", "prompt_limit", "context_limit",
    # "counted_by". Empty for traces written before it existed.
    context: dict = field(default_factory=dict)
    timings: dict = field(default_factory=dict)  # seconds: tools, ttft, generate, verify, total
    messages: list[dict] = field(
        default_factory=list
    )  # the text messages sent to the model (images as parts)
    model_output: str = ""  # the model's raw final generation
    answer: str = ""  # what the user saw
    composition: str = ""  # "model" | "evidence" | "abstain": who the answer came from
    note: str = ""  # why the evidence overrode the model, when it did
    draft: str = ""  # the model's own answer as composition read it (tool calls stripped)
    overruled_because: str = ""  # why the evidence replaced the draft; "" when it was kept
    status: str = ""  # "verified" | "unverified" (shown, checked by no tool) | "abstained"
    abstained: bool = False
    citations: list[str] = field(default_factory=list)
    claims: list[ClaimRecord] = field(default_factory=list)
    error: str | None = None

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> TurnTrace:
        t = _from_dict(cls, d)
        t.images = [_from_dict(ImageRecord, x) for x in d.get("images", [])]
        t.tool_calls = [_from_dict(ToolCallRecord, x) for x in d.get("tool_calls", [])]
        t.budget = [_from_dict(BudgetRecord, x) for x in d.get("budget", [])]
        t.claims = [_from_dict(ClaimRecord, x) for x in d.get("claims", [])]
        return t

    def short(self) -> str:
        tools = ", ".join(c.tool for c in self.tool_calls) or "no tools"
        flag = " [abstained]" if self.abstained else ""
        return f"turn {self.turn}: {self.question!r} -> {self.answer!r}{flag} ({tools}; {self.timings.get('total_s', 0):.2f} s)"


@dataclass
class ConversationTrace:
    """All turns of one conversation, read from its JSONL file."""

    conversation_id: str
    turns: list[TurnTrace]
    path: str = ""

    def turn(self, n: int) -> TurnTrace:
        for t in self.turns:
            if t.turn == n:
                return t
        raise KeyError(
            f"trace {self.path or self.conversation_id} has no turn {n} (turns: {[t.turn for t in self.turns]})"
        )


class TraceWriter:
    """Appends turns of one conversation to `<trace_dir>/<conversation_id>.jsonl`."""

    def __init__(self, trace_dir: str | Path, conversation_id: str):
        if not isinstance(conversation_id, str) or not SAFE_CONVERSATION_ID.fullmatch(conversation_id):
            raise BadInputError(
                f"conversation id {str(conversation_id)[:40]!r} is not usable: use 1-128 letters, digits, "
                "'.', '_' or '-', starting with a letter or digit"
            )
        self.path = Path(trace_dir) / f"{conversation_id}.jsonl"
        self._lock = threading.Lock()

    def write(self, turn: TurnTrace) -> Path:
        line = json.dumps(turn.to_dict(), ensure_ascii=False, default=_json_default)
        with self._lock:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            # One write call per line in append mode: concurrent writers never interleave inside a line.
            with open(self.path, "a", encoding="utf-8") as f:
                f.write(line + "\n")
        return self.path


def _json_default(o):
    if isinstance(o, (tuple, set)):
        return list(o)
    if isinstance(o, Path):
        return str(o)
    return str(o)


def load_trace(path: str | Path) -> ConversationTrace:
    """Read a conversation's JSONL trace; a torn last line (a crash mid-write) is skipped."""
    p = Path(path)
    if not p.is_file():
        raise BadInputError(f"trace file not found: {p}")
    turns = []
    lines = p.read_text(encoding="utf-8").splitlines()
    for i, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            turns.append(TurnTrace.from_dict(json.loads(line)))
        except (ValueError, TypeError, KeyError) as e:
            if i == len(lines):
                break  # the turn in flight when the process died
            raise BadInputError(f"{p}:{i}: not a trace line ({e})") from None
    if not turns:
        raise BadInputError(f"trace file {p} has no turns")
    return ConversationTrace(conversation_id=turns[0].conversation_id, turns=turns, path=str(p))
