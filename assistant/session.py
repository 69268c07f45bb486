"""The turn loop: an `Assistant` holds an engine and tools; a `Conversation` answers turn by turn.

One turn: take the images, decide which images the question is about, plan tools (rules for any
model, or the model's own JSON function calls), run them concurrently, give their findings
conversation-stable evidence ids, decide per image how it enters the model (the image planner seam),
assemble the messages from `prompts/`, generate (streaming), verify each claim against the evidence,
compose the answer the user sees (the evidence wins over a model that contradicts it), and append the
turn to the conversation's JSONL trace. `Conversation.stream` yields `TurnEvent`s as this happens;
`Conversation.ask` runs the same and returns the `TurnResult`.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from assistant import budget, policy
from assistant.observe import observe_turn
from assistant.trace import ImageRecord, TraceWriter, TurnTrace
from assistant.turn import ImagePlanner, ScopedImage, SentTurn, TurnEvent, TurnResult  # noqa: F401  (assistant.session.X)
from tools.errors import UserError
from tools.evidence import EvidenceStore
from tools.images import ImageRef
from tools.images import pages as image_pages
from tools.runner import ToolCall


@dataclass
class AssistantConfig:
    """How the assistant runs a turn (the model itself is configured by ModelConfig)."""

    tools: list[str] | None = field(
        default=None, metadata={"help": "tools to enable (ocr detect zoom color metadata); default: all"}
    )
    no_tools: bool = field(
        default=False, metadata={"help": "run without any tool (answers cannot be grounded)"}
    )
    tool_policy: str = field(
        default="auto",
        metadata={
            "help": "who decides tool calls: 'policy' (rules, any model), 'model' (the model's JSON function "
            "calls), 'auto' (rules, plus model calls for models known to emit them)",
            "choices": ["auto", "policy", "model"],
        },
    )
    max_tool_steps: int = field(
        default=3, metadata={"help": "most rounds of model-driven tool calls per turn"}
    )
    tool_timeout_s: float = field(default=60.0, metadata={"help": "time limit per tool call, seconds"})
    detector_weights: str | None = field(
        default=None,
        metadata={
            "help": "detector weights for the detect tool: a .pt file (e.g. from `detector train`) or a "
            "cached Ultralytics name; default: COCO yolo11n.pt if cached, else the offline shapes detector"
        },
    )
    tool_cache_disk: bool = field(
        default=False,
        metadata={
            "help": "also keep tool results on disk (the cache's tool-results/), so a restart or another "
            "process reuses them; keyed by image hash, tool, version and arguments"
        },
    )
    max_new_tokens: int = field(default=160, metadata={"help": "most tokens the model generates per answer"})
    history_turns: int = field(
        default=6, metadata={"help": "earlier turns given to the model as history (older ones are left out)"}
    )
    temperature: float = field(default=0.0, metadata={"help": "sampling temperature; 0 = greedy"})
    grounding: str = field(
        default="strict",
        metadata={
            "help": "'strict': evidence overrides an unsupported answer and flags unverified claims; "
            "'flag': keep the model's answer, only flag",
            "choices": ["strict", "flag"],
        },
    )
    trace_dir: str | None = field(
        default=None, metadata={"help": "where conversation traces (JSONL) go; default: the cache's traces/"}
    )
    write_traces: bool = field(default=True, metadata={"help": "write a JSONL trace per conversation"})
    image_tokens_per_turn: int | None = field(
        default=None, metadata={"help": "image-token budget per turn (default: the model's own)"}
    )
    image_tokens_per_conversation: int | None = field(
        default=None, metadata={"help": "image-token budget per conversation"}
    )


class Assistant:
    """An engine, optional tools and a config; hands out conversations."""

    def __init__(self, engine, tools=None, config: AssistantConfig | None = None, planner_factory=None):
        self.engine = engine
        self.tools = tools  # tools.runner.ToolRunner or None
        self.config = config or AssistantConfig()
        # (engine, config) -> ImagePlanner, one per conversation; default: the image-token budget planner
        self.planner_factory = planner_factory or budget.planner_factory
        # Called once per turn with its timeline (metrics, drift, spans, logs: `assistant.observe`).
        self.observers: list = []

    @property
    def description(self) -> str:
        return getattr(self.engine, "description", getattr(self.engine, "model_id", "model"))

    def trace_dir(self) -> Path:
        if self.config.trace_dir:
            return Path(self.config.trace_dir)
        from tools.paths import cache_dir

        return cache_dir("traces")

    def tool_names(self) -> list[str]:
        return tool_names(self.tools, self.config)

    def conversation(self, conversation_id: str | None = None) -> Conversation:
        return Conversation(self, conversation_id or _new_id())


def tool_names(runner, config: AssistantConfig) -> list[str]:
    """The tools a turn may call: the runner's, less those the config leaves out."""
    if runner is None or config.no_tools:
        return []
    return [n for n in runner.registry.names() if config.tools is None or n in config.tools]


def prefetch_first_turn(
    runner,
    config: AssistantConfig,
    text: str,
    images: Sequence,
    low_priority: bool = False,
    fork: bool = False,
) -> list[str]:
    """Start the policy's first tool calls for `text` asked about `images` as a conversation's first
    turn, before the conversation exists; returns the tools started.

    `ask` calls this as soon as its images are decoded, so the turn's OCR runs on one core while the
    model loads on the other, and the turn then finds it running or cached (`ToolRunner.prefetch`).
    The calls are the ones `assistant.loop` makes for that turn (same plan, same arguments); follow-ups
    that depend on their findings are left to the turn. `low_priority`, `fork`: see `ToolRunner.prefetch`."""
    available = set(tool_names(runner, config))
    if not available or config.tool_policy == "model":
        return []
    pages = [page for im in images for page in image_pages(ImageRef.coerce(im))]  # a file's pages: images
    refs = list({ref.id: ref for ref in pages}.values())  # first index kept
    numbers = list(range(1, len(refs) + 1))
    scope = policy.resolve_scope(text, len(refs), numbers, [])
    calls = []
    for p in policy.plan(policy.classify(text), scope, available):
        inputs = runner.registry.get(p.tool).inputs  # rules never pass an argument the tool does not take
        calls.append(
            ToolCall(p.tool, refs[p.image_index - 1], {k: v for k, v in p.args.items() if k in inputs})
        )
    runner.prefetch(calls, low_priority=low_priority, fork=fork)
    return [c.tool for c in calls]


def _new_id() -> str:
    return datetime.now(timezone.utc).strftime("%Y%m%d-%H%M%S-") + uuid.uuid4().hex[:8]


class Conversation:
    """One conversation: its images, evidence store, history and trace file."""

    def __init__(self, assistant: Assistant, conversation_id: str):
        self.assistant = assistant
        self.id = conversation_id
        self.images: list[ImageRecord] = []
        self._refs: dict[str, ImageRef] = {}
        self.evidence = EvidenceStore()
        # Text chat messages that came before this conversation's own turns (a stateless API request's history).
        self.history: list[dict] = []
        self.sent: list[SentTurn] = []  # this conversation's turns as the model saw them, oldest first
        self.turns: list[TurnTrace] = []
        self.planner: ImagePlanner = assistant.planner_factory(assistant.engine, assistant.config)
        self.writer = (
            TraceWriter(assistant.trace_dir(), conversation_id) if assistant.config.write_traces else None
        )

    @property
    def trace_path(self) -> str | None:
        return str(self.writer.path) if self.writer else None

    def image_refs(self) -> list[ImageRef]:
        return [self._refs[r.id] for r in self.images]

    def ask(self, text: str, images: Sequence = ()) -> TurnResult:
        """Run one turn to the end; a UserError (bad image, backend failure) is raised."""
        for ev in self.stream(text, images):
            if ev.type == "error":
                if isinstance(ev.error, UserError):
                    raise ev.error
                raise RuntimeError(ev.text) from ev.error
            if ev.type == "done":
                return ev.result
        raise RuntimeError(
            "turn ended without a result"
        )  # pragma: no cover - stream always ends with done/error

    def stream(self, text: str, images: Sequence = ()) -> Iterator[TurnEvent]:
        """Run one turn, yielding events; ends with a "done" event or an "error" event."""
        from assistant.loop import run_turn

        events = run_turn(self, text, list(images))
        if self.assistant.observers:
            events = observe_turn(self, events, self.assistant.observers)
        yield from events

    def close(self) -> None:
        drop = getattr(self.assistant.engine, "drop_session", None)
        if drop is not None:
            drop(self.id)

    # ---- used by the turn loop -------------------------------------------------------------------

    def add_images(self, images: list, turn: int) -> list[ImageRecord]:
        """Decode and register this turn's images (a repeated image keeps its first index)."""
        # each page of a multi-page file, each frame of an animation, is an image of its own
        refs = [page for im in images for page in image_pages(ImageRef.coerce(im))]
        new = []
        for ref in refs:
            w, h = ref.size  # decodes: a corrupt file fails here, before any tool runs
            if ref.id in self._refs:
                new.append(next(r for r in self.images if r.id == ref.id))
                continue
            rec = ImageRecord(ref.id, ref.sha256, len(self.images) + 1, turn, ref.source, w, h)
            self._refs[ref.id] = ref
            self.images.append(rec)
            new.append(rec)
        return new

    def record(self, turn: TurnTrace) -> str | None:
        self.turns.append(turn)
        if self.writer is None:
            return None
        return str(self.writer.write(turn))
