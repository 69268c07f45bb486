"""Replay: re-run a recorded turn's verification and answer composition and say what changed.

A trace (`assistant.trace`) keeps the evidence, the model's raw output and the verified answer of each
turn; `replay_turn` feeds the first two back through `answer.compose_answer` and compares the result with
the third. It sits above the answer code, so `trace` itself stays a leaf that every layer may import.
"""

from __future__ import annotations

from dataclasses import dataclass

from assistant.answer import compose_answer
from assistant.policy import Intent
from assistant.trace import ClaimRecord, TurnTrace
from tools.evidence import Evidence


@dataclass
class ReplayResult:
    """Verification and answer composition re-run from a recorded turn."""

    matches: bool
    answer: str
    recorded_answer: str
    claims: list[ClaimRecord]
    differences: list[str]


def replay_turn(turn: TurnTrace) -> ReplayResult:
    """Re-run the turn's verification and answer composition from its recorded evidence and model output."""
    evidence = [Evidence.from_dict(d) for d in turn.evidence]
    intent = Intent(turn.intent or "other", **turn.intent_detail)
    composed = compose_answer(
        turn.question,
        intent,
        evidence,
        turn.model_output,
        tool_errors=_errors(turn),
        sizes=turn.image_sizes,
        grounding=turn.grounding,
        image_order=turn.in_scope,
        image_numbers=turn.in_scope_numbers,
        sees_images=bool(turn.model.get("sees_images")),
    )
    diffs = []
    if composed.answer != turn.answer:
        diffs.append(f"answer: recorded {turn.answer!r}, replayed {composed.answer!r}")
    if composed.abstained != turn.abstained:
        diffs.append(f"abstained: recorded {turn.abstained}, replayed {composed.abstained}")
    if sorted(composed.citations) != sorted(turn.citations):
        diffs.append(f"citations: recorded {turn.citations}, replayed {composed.citations}")
    recorded = [(c.text, c.supported) for c in turn.claims]
    replayed = [(c.text, c.supported) for c in composed.claims]
    if recorded != replayed:
        diffs.append(f"claims: recorded {recorded}, replayed {replayed}")
    return ReplayResult(not diffs, composed.answer, turn.answer, composed.claims, diffs)


def _errors(turn: TurnTrace) -> dict[tuple[str, str], str]:
    return {(c.tool, c.image): c.error for c in turn.tool_calls if c.error}  # as the loop keys them
