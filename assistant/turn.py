"""The records of one turn, shared by the conversation (`assistant/session.py`) and the turn's steps
(`assistant/loop.py`), kept apart so those two need not import each other.

`Turn` is the one record a turn's steps fill in order (scope -> tools -> image plan -> prompt ->
generate -> ground -> record): its `trace` (`assistant.trace.TurnTrace`) is what is written, shown
by `trace show` and replayed, and `TurnResult` is a view of it for callers; the rest is the steps'
working state. Also here: what the image planner sees (`ScopedImage`, `ImagePlanner`), an earlier turn
as the model saw it (`SentTurn`) and the events of a streamed turn (`TurnEvent`).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from typing import Protocol

from assistant.trace import BudgetRecord, ClaimRecord, ImageRecord, ToolCallRecord, TurnTrace
from tools.evidence import Evidence
from tools.images import ImageRef


@dataclass
class ScopedImage:
    """An image of the conversation as the image planner sees it."""

    ref: ImageRef
    index: int  # 1-based among the conversation's images
    turn: int  # the turn that brought it
    current: bool  # arrived this turn
    in_scope: bool  # the question is about it


class ImagePlanner(Protocol):
    """Decides, per turn, how each image enters the model: an ImageInput (full, crop, reduced) or text only.

    One planner per conversation (it may keep state across turns), made by
    `Assistant.planner_factory(engine, config)`; the default is the image-token budget planner
    (`assistant.budget.planner_factory`), the one production runs. `plan` is called every turn after the tools ran and before the
    model; it returns one (ImageInput | None, BudgetRecord) per image of the conversation, in the
    conversation's order; None means the image enters as text only (its evidence stands in).
    """

    def plan(
        self, engine, question: str, images: list[ScopedImage], evidence: list[Evidence]
    ) -> list[tuple]: ...


@dataclass
class SentTurn:
    """An earlier turn as the model saw it: kept so the next prompt repeats it exactly (KV cache reuse)."""

    images: list[tuple[str, str]]  # (image id, ImageInput.key()) of its image parts, in order
    text: str  # its user message's text part (image notes, evidence block, question), as sent
    evidence: list[str]  # evidence ids its block showed
    answer: str  # the assistant message after it (see `assistant.loop._history_answer`)
    question: str = ""  # the question alone: what the turn's message becomes when compacted to fit


@dataclass
class TurnResult:
    """The outcome of one turn: the verified answer and everything behind it."""

    answer: str
    conversation_id: str
    turn: int
    citations: list[str] = field(default_factory=list)
    claims: list[ClaimRecord] = field(default_factory=list)
    abstained: bool = False
    trace: str | None = None  # path of the conversation's JSONL trace
    timings: dict = field(default_factory=dict)
    model: str = ""
    evidence: list[dict] = field(default_factory=list)
    tool_calls: list[ToolCallRecord] = field(default_factory=list)
    budget: list[BudgetRecord] = field(default_factory=list)
    tokens: dict = field(default_factory=dict)
    model_output: str = ""  # the model's own words, before verification
    composition: str = ""  # "model" | "evidence" | "abstain"
    note: str = ""  # one sentence for people: why the model's draft was not shown, when it was not
    intent: str = ""
    draft: str = ""  # the model's answer before verification (tool calls stripped); also in the trace
    overruled_because: str = ""  # why the evidence replaced the draft; "" when the draft was kept
    # "verified" | "unverified" (the model's answer shown, marked: no loaded tool could check it) | "abstained"
    status: str = ""

    @classmethod
    def view(cls, trace: TurnTrace, path: str | None) -> TurnResult:
        """The result of the turn `trace` records (written to `path`): its fields, read from the trace."""
        own = {"trace": path, "model": trace.model.get("id", "")}
        return cls(**{f.name: own[f.name] if f.name in own else getattr(trace, f.name) for f in fields(cls)})

    def to_dict(self) -> dict:
        d = asdict(self)
        d["claims"] = [asdict(c) for c in self.claims]
        return d


@dataclass
class TurnEvent:
    """One step of a turn as it happens.

    type: "tool_start" / "tool_end" (tool: the call), "budget" (budget: the decisions),
    "token" (text: a chunk of the model's output), "done" (result), "error" (text: one-line message).
    """

    type: str
    text: str = ""
    tool: ToolCallRecord | None = None
    budget: list[BudgetRecord] | None = None
    result: TurnResult | None = None
    error: Exception | None = field(default=None, repr=False)

    def to_dict(self) -> dict:
        d: dict = {"type": self.type}
        if self.text:
            d["text"] = self.text
        if self.tool is not None:
            d["tool"] = asdict(self.tool)
        if self.budget is not None:
            d["budget"] = [asdict(b) for b in self.budget]
        if self.result is not None:
            d["result"] = self.result.to_dict()
        return d


@dataclass
class Turn:
    """One turn, filled by the loop's steps in order; `trace` is its record, the rest working state."""

    trace: TurnTrace
    t0: float  # perf_counter at the turn's start
    # scope
    arrived: list[ImageRecord] = field(default_factory=list)  # this turn's images
    intent: object = None  # policy.Intent
    scope: list[int] = field(default_factory=list)  # 1-based numbers of the images the question is about
    refs: list[ImageRef] = field(default_factory=list)  # the conversation's images, in order
    # tools
    available: set[str] = field(default_factory=set)
    model_driven: bool = False  # the model may call tools itself
    tools_s: float = 0.0
    # image plan and prompt
    decisions: list[tuple] = field(default_factory=list)  # (ImageInput | None, BudgetRecord) per image
    admitted: dict = field(default_factory=dict)  # image id -> ImageInput the model gets
    history: list[dict] = field(default_factory=list)  # earlier messages as they were sent
    shown: object = ()  # evidence ids earlier messages already showed
    new_parts: list[BudgetRecord] = field(default_factory=list)  # images that go in this turn's message
    parts: list[int] = field(default_factory=list)
    inputs: list = field(default_factory=list)  # ImageInputs in message order
    index_of: dict = field(default_factory=dict)  # image id -> its 1-based number
    text_only: list[int] = field(default_factory=list)  # images in scope that enter as text
    counter: object = None  # window.Counter: the engine's tokens and context
    sent: list[str] = field(default_factory=list)  # evidence ids the last generation's block showed
    # generate and ground
    stats: list = field(default_factory=list)  # GenerationStats per generation
    ttft: float | None = None
    gen_s: float = 0.0
    verify_s: float = 0.0
    composed: object = None  # answer.Composed
