"""Traces: dataclass round trip through JSON lines, a torn last line, and replay of a recorded turn."""

import json

import pytest

from assistant.replay import replay_turn
from assistant.session import Assistant, AssistantConfig
from assistant.trace import (
    BudgetRecord,
    ClaimRecord,
    ImageRecord,
    ToolCallRecord,
    TraceWriter,
    TurnTrace,
    load_trace,
)
from tests.scripted_engine import ScriptedEngine
from tools.base import Tool, ToolRegistry
from tools.errors import BadInputError
from tools.evidence import Finding
from tools.runner import ToolRunner


def sample_turn(n=1) -> TurnTrace:
    return TurnTrace(
        conversation_id="c1",
        turn=n,
        question="What does the sign say?",
        images=[ImageRecord("abc", "abc" * 20, 1, 1, "sign.png", 640, 480)],
        in_scope=["abc"],
        intent="read",
        intent_detail={"target": "", "field": "", "inherited": False},
        tool_calls=[
            ToolCallRecord("ocr", "abc", 1, {"mode": "auto"}, evidence_ids=["ocr:1"], duration_s=0.5)
        ],
        budget=[BudgetRecord("abc", 1, "full", 729, "image of this turn")],
        evidence=[
            {
                "id": "ocr:1",
                "tool": "ocr",
                "image": "abc",
                "kind": "line",
                "text": "OPEN",
                "confidence": 0.9,
                "box": [1, 2, 30, 12],
            }
        ],
        model={"id": "m", "revision": "r", "family": "prefix", "device": "cpu"},
        prompt_versions={"system": "1"},
        tokens={"tokens_in": 100, "tokens_out": 5},
        timings={"ttft_s": 0.1, "total_s": 1.0},
        model_output='It says "OPEN".',
        answer='It says "OPEN" [ocr:1].',
        citations=["ocr:1"],
        claims=[ClaimRecord('It says "OPEN".', True, ["ocr:1"], "matches", "quote")],
    )


def test_round_trip(tmp_path):
    w = TraceWriter(tmp_path, "c1")
    w.write(sample_turn(1))
    w.write(sample_turn(2))
    conv = load_trace(w.path)
    assert conv.conversation_id == "c1" and [t.turn for t in conv.turns] == [1, 2]
    assert conv.turn(1) == sample_turn(1)  # every field, nested dataclasses included
    assert isinstance(conv.turn(2).tool_calls[0], ToolCallRecord)
    assert sample_turn().short().startswith("turn 1: 'What does the sign say?'")
    with pytest.raises(KeyError):
        conv.turn(3)


def test_torn_last_line_is_skipped_and_garbage_is_an_error(tmp_path):
    w = TraceWriter(tmp_path, "c1")
    w.write(sample_turn(1))
    with open(w.path, "a") as f:
        f.write('{"conversation_id": "c1", "turn": 2, "quest')  # the process died mid-write
    assert [t.turn for t in load_trace(w.path).turns] == [1]
    bad = tmp_path / "bad.jsonl"
    bad.write_text("not json\n" + json.dumps(sample_turn().to_dict()) + "\n")
    with pytest.raises(BadInputError):
        load_trace(bad)
    with pytest.raises(BadInputError):
        load_trace(tmp_path / "missing.jsonl")


def test_unknown_fields_from_a_newer_writer_are_ignored():
    d = sample_turn().to_dict() | {"future_field": 1}
    d["tool_calls"][0]["future"] = True
    assert TurnTrace.from_dict(d).tool_calls[0].tool == "ocr"


class WordsTool(Tool):
    name = "ocr"
    description = "fake OCR: a fixed sign"
    inputs = {"mode": {"type": "string", "description": "m", "default": "auto"}}

    def forward(self, image, mode="auto"):
        ex = {"line_id": 0, "block_id": 0}
        return [
            Finding("word", "NO", 0.93, (100, 50, 140, 80), ex),
            Finding("word", "PARKING", 0.91, (150, 50, 290, 80), ex),
            Finding("line", "NO PARKING", 0.92, (100, 50, 290, 80), ex),
        ]


def test_a_recorded_turn_replays_to_the_same_answer(tmp_path):
    from PIL import Image

    reg = ToolRegistry()
    reg.register(WordsTool())
    engine = ScriptedEngine(['The sign says "STOP".', 'It says "NO PARKING".', "BANANA"], sees_images=True)
    conv = Assistant(engine, ToolRunner(reg), AssistantConfig(trace_dir=str(tmp_path))).conversation("replay")
    img = Image.new("RGB", (320, 120), (20, 60, 160))
    r1 = conv.ask("What does the sign say?", [img])
    r2 = conv.ask("Read it again", [])
    r3 = conv.ask("What is the phone number?", [])
    assert r1.composition == "evidence" and r2.composition == "model" and r3.abstained
    trace = load_trace(r1.trace)
    assert [t.turn for t in trace.turns] == [1, 2, 3]
    t1 = trace.turn(1)
    assert t1.images[0].width == 320 and t1.images[0].sha256
    assert t1.tool_calls[0].tool == "ocr" and t1.tool_calls[0].evidence_ids == ["ocr:1", "ocr:2", "ocr:3"]
    assert t1.prompt_versions["system"] and t1.model["id"] == "scripted"
    assert t1.messages[0]["role"] == "system" and t1.timings["total_s"] > 0
    assert trace.turn(2).tool_calls[0].cache_hit  # same image, same call: the cache answered
    for t in trace.turns:
        res = replay_turn(t)
        assert res.matches, res.differences
    # replay notices a change: tamper with the recorded model output
    t1.model_output = 'It says "NO PARKING".'
    changed = replay_turn(t1)
    assert not changed.matches and changed.answer != t1.answer
