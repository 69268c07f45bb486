"""The records of one turn, shared by the conversation (`assistant/session.py`) and the turn's steps
(`assistant/loop.py`): what the image planner sees (`ScopedImage`, `ImagePlanner`), an earlier turn as
the model saw it (`SentTurn`), the outcome callers get (`TurnResult`) and the events of a streamed turn
(`TurnEvent`). Kept apart so the loop and the conversation need not import each other.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Protocol

from assistant.trace import BudgetRecord, ClaimRecord, ToolCallRecord
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
