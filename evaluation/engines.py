"""Two engines that stand in for a model of known quality, to measure the grounding layer itself.

Both implement the Engine contract (assistant/core/types.py) and run through the same loop as a real
model (tools, budget, verification, composition); the runner hands each its sample with `set_case`
before the turn. The oracle drafts the correct answer in natural words (from `expect_any`), citing an
evidence record of the prompt that contains it when there is one; the hallucinating engine drafts a
fluent wrong answer (another number, a wrong word, yes/no flipped, the wrong side or colour, a confident
answer to an unanswerable question, or obedience to an injected instruction), citing a record anyway.
A grounding layer that spoils the oracle's drafts harms; one that lets the hallucinations through fails
to catch.
"""

from __future__ import annotations

import hashlib
import re

from assistant.core.types import GenerationStats
from evaluation.metrics import contains, parse_number

_RECORD = re.compile(r'^\[([a-z]+:\d+)\] .*? "((?:[^"\\]|\\.)*)"', re.M)
_OPPOSITE = {
    "yes": "no",
    "no": "yes",
    "left": "right",
    "right": "left",
    "top": "bottom",
    "bottom": "top",
    "upper": "lower",
    "lower": "upper",
    "above": "below",
    "below": "above",
}
_COLOURS = ["red", "green", "blue", "yellow", "orange", "purple", "white", "black", "grey", "brown", "pink"]
_WRONG_WORDS = ["CLOSED", "MARKET", "PHARMACY", "PARKING", "STATION", "BAKERY", "EXIT", "HOTEL"]
ABSTAIN_DRAFT = "I can't tell from the image."


class TextStream:
    """A reply given in advance, streamed word by word as a model would (also the tests' scripted engine)."""

    def __init__(self, text: str):
        self._text = text
        self.text = ""
        self.stats = GenerationStats()

    def __iter__(self):
        for i, word in enumerate(self._text.split(" ")):
            chunk = word if i == 0 else " " + word
            self.text += chunk
            self.stats.tokens_out += 1
            yield chunk


def prompt_records(messages: list[dict]) -> list[tuple[str, str]]:
    """(evidence id, text) of every record in the prompt's evidence blocks."""
    text = []
    for m in messages:
        content = m.get("content")
        if isinstance(content, str):
            text.append(content)
        elif isinstance(content, list):
            text += [p.get("text", "") for p in content if p.get("type") == "text"]
    return [(i, t.replace('\\"', '"')) for i, t in _RECORD.findall("\n".join(text))]


def _cite(records: list[tuple[str, str]], value: str) -> str:
    ids = [i for i, t in records if contains(t, value)]
    return f" [{ids[0]}]" if ids else ""


class _CaseEngine:
    """What both engines share: the Engine contract without weights, and the per-sample hook."""

    revision = ""
    family = "text"
    device = "cpu"
    supports_images = False
    sees_images = True  # they stand in for a strong VLM that sees the image

    def __init__(self):
        self.case: dict | None = None

    def set_case(self, case: dict) -> None:
        """The sample the next turn is about (`kind`, `question`, `expect_any`, `forbid`)."""
        self.case = case

    def image_token_count(self, image) -> int:
        return 0

    def stream(self, messages, images, gen=None, session_id=None) -> TextStream:
        if self.case is None:
            raise RuntimeError(f"{self.model_id}: set_case(case) must be called before each turn")
        return TextStream(self.draft(self.case, prompt_records(messages)))

    def drop_session(self, session_id) -> None:
        pass

    def draft(self, case: dict, records: list[tuple[str, str]]) -> str:  # pragma: no cover - abstract
        raise NotImplementedError


def _phrase(kind: str, value: str, cite: str) -> str:
    """A natural sentence stating `value` as the answer to a question of this kind."""
    low = value.strip().lower()
    if low in ("yes", "no"):
        return f"{low.capitalize()}{cite}."
    if kind == "count":
        return f"There are {value}{cite}."
    if kind in ("read", "inject"):
        return f'It says "{value}"{cite}.'
    if kind == "color":
        return f"It is {value}{cite}."
    if kind == "where":
        return f"It is on the {value}{cite}."
    return f"{value[:1].upper()}{value[1:]}{cite}."


class OracleEngine(_CaseEngine):
    """Drafts the right answer: the first `expect_any`, cited where the evidence holds it."""

    model_id = "oracle"
    description = "oracle engine (drafts the expected answer; evaluation only)"

    def draft(self, case, records):
        if case["kind"] == "abstain" or not case.get("expect_any"):
            return ABSTAIN_DRAFT
        # Prefer an acceptable answer the evidence holds, so the draft can cite it.
        expect = case["expect_any"]
        value = next((e for e in expect if _cite(records, e)), expect[0])
        return _phrase(case["kind"], value, _cite(records, value))


def _seed(case: dict) -> int:
    return int(hashlib.sha256(str(case.get("id", case.get("question", ""))).encode()).hexdigest()[:8], 16)


def wrong_value(case: dict) -> str:
    """A plausible wrong answer for this sample (deterministic in the sample's id)."""
    expect = [str(e) for e in case.get("expect_any") or []]
    s = _seed(case)
    if case["kind"] == "inject" and case.get("forbid"):
        return case["forbid"][0]  # the model obeys what the image told it to say
    if case["kind"] == "abstain" or not expect:
        if re.search(r"\bhow many\b", case.get("question", ""), re.I):
            return str(2 + s % 5)
        return _WRONG_WORDS[s % len(_WRONG_WORDS)] + " " + _WRONG_WORDS[(s // 7) % len(_WRONG_WORDS)]
    first = expect[0].strip()
    n = parse_number(first) if first else None
    if n is not None:
        decimals = len(first.split(".")[1]) if "." in first else 0
        wrong = n + 1 + s % 7 if decimals == 0 else n + (1 + s % 9) * 1.07
        candidates = [f"{wrong:.{decimals}f}"]
        return next(c for c in candidates if not any(contains(c, e) for e in expect))
    low = first.lower()
    if low in _OPPOSITE:
        return _OPPOSITE[low]
    for word, opposite in _OPPOSITE.items():  # "top left" -> "bottom left" (positions only, not text)
        if case["kind"] in ("where", "detect") and re.search(rf"\b{word}\b", low):
            return re.sub(rf"\b{word}\b", opposite, low)
    if low in _COLOURS:
        others = [c for c in _COLOURS if not any(contains(c, e) for e in expect)]
        return others[s % len(others)]
    others = [w for w in _WRONG_WORDS if not any(contains(w, e) or contains(e, w) for e in expect)]
    return others[s % len(others)] + (" " + others[(s // 3) % len(others)] if " " in first else "")


class HallucinatingEngine(_CaseEngine):
    """Drafts a fluent wrong answer with a citation, whatever the evidence says."""

    model_id = "hallucinating"
    description = "hallucinating engine (drafts a fluent wrong answer; evaluation only)"

    def draft(self, case, records):
        kind = case["kind"]
        if kind == "abstain":
            kind = "count" if re.search(r"\bhow many\b", case.get("question", ""), re.I) else "read"
        cite = f" [{records[0][0]}]" if records else ""
        return _phrase(kind, wrong_value(case), cite)


ENGINES = {"oracle": OracleEngine, "hallucinating": HallucinatingEngine}
