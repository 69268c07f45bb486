"""Watching turns from outside: one `TurnTimeline` per turn, handed to the observers once it ends.

Metrics, drift, OpenTelemetry spans and request logs are all derived from what a turn already records
(its `TurnTrace`) plus when its events happened, so none of them adds a line to the turn's steps.
`observe_turn` wraps a turn's event stream: it notes the time of each event as it passes (a tool's
start, the budget decision, the first and last token) and, just before the turn's last event
("done" or "error") goes out, calls every observer with the timeline. A turn that is closed mid-way
(a client that left) or that raised is reported too, as "cancelled" or "crashed", then the close or
the exception goes on. An observer that fails is reported once on stderr and never breaks a turn.

With no observers `Conversation.stream` does not wrap at all: off costs nothing.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterator
from contextvars import ContextVar
from dataclasses import dataclass, field

from assistant.trace import TurnTrace
from assistant.turn import TurnEvent

# What an observer is: called once per turn, on the turn's thread, after its trace is written; one with
# a `turn_started(line)` method is also told when a turn begins.
Observer = Callable[["TurnTimeline"], None]

# The log record of the HTTP request a turn serves (set by the server's middleware; a worker thread that
# runs the turn starts in a copy of the request's context). Observers add the turn's figures to it.
REQUEST: ContextVar[dict | None] = ContextVar("grounded_vlm_request", default=None)

# Every outcome a turn can have, as metrics label them (bounded: nothing else is ever a label value).
STATUSES = ("verified", "unverified", "abstained", "error", "cancelled", "crashed", "other")


@dataclass
class TurnTimeline:
    """One turn as observers see it: its trace and when its events happened (perf_counter seconds)."""

    conversation: object  # assistant.session.Conversation (its engine, its images)
    trace: TurnTrace | None  # None when the turn was cancelled or crashed before it was recorded
    start: float  # perf_counter when the turn began
    start_ns: int  # the same moment on the wall clock, ns since the epoch (for span exporters)
    end: float = 0.0
    outcome: str = "done"  # "done" | "error" | "cancelled" | "crashed"
    error: BaseException | None = None
    tool_started: dict[int, float] = field(default_factory=dict)  # id(ToolCallRecord) -> its batch's start
    tools_done: float | None = None  # the last tool_end event
    budget_at: float | None = None  # the budget event: the image plan is made
    first_token: float | None = None
    last_token: float | None = None
    request: dict | None = None  # the HTTP request's log record, when the turn serves one

    @property
    def status(self) -> str:
        """The turn's outcome as one of `STATUSES`."""
        if self.outcome != "done":
            return self.outcome if self.outcome in STATUSES else "other"
        s = self.trace.status if self.trace is not None else ""
        return s if s in STATUSES else "other"

    @property
    def total_s(self) -> float:
        return self.end - self.start

    def wall_ns(self, t: float) -> int:
        """A perf_counter time of this turn as wall-clock nanoseconds."""
        return self.start_ns + int((t - self.start) * 1e9)


def observe_turn(conv, events: Iterator[TurnEvent], observers: list[Observer]) -> Iterator[TurnEvent]:
    """Pass `events` through, timing them; the observers see the turn before its last event goes out."""
    line = TurnTimeline(conv, None, time.perf_counter(), time.time_ns(), request=REQUEST.get())
    turns_before = len(conv.turns)
    notified = False

    def notify(outcome: str, error: BaseException | None = None) -> None:
        nonlocal notified
        notified = True
        line.end, line.outcome, line.error = time.perf_counter(), outcome, error
        if len(conv.turns) > turns_before:
            line.trace = conv.turns[-1]
        for observer in observers:
            try:
                observer(line)
            except Exception as e:  # an observer never breaks a turn
                _report_once(observer, e)

    for observer in observers:
        started = getattr(observer, "turn_started", None)  # optional: a gauge of turns running
        if started is not None:
            try:
                started(line)
            except Exception as e:
                _report_once(observer, e)
    try:
        for ev in events:
            now = time.perf_counter()
            if ev.type == "token":
                line.first_token = line.first_token or now
                line.last_token = now
            elif ev.type == "tool_start":
                line.tool_started[id(ev.tool)] = now
            elif ev.type == "tool_end":
                line.tools_done = now
            elif ev.type == "budget":
                line.budget_at = now
            elif ev.type in ("done", "error"):
                notify("done" if ev.type == "done" else "error", ev.error)
            yield ev
    except GeneratorExit:
        if not notified:
            notify("cancelled")
        raise
    except BaseException as e:
        if not notified:
            notify("crashed", e)
        raise


_reported: set[str] = set()


def _report_once(observer, e: Exception) -> None:
    name = getattr(observer, "name", None) or getattr(observer, "__name__", type(observer).__name__)
    if name not in _reported:
        _reported.add(name)
        print(
            f"warning: the {name} observer failed ({type(e).__name__}: {e}); the turn goes on",
            file=sys.stderr,
        )
