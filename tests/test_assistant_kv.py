"""Multi-turn KV reuse through the assistant: each turn's prompt extends the previous one (its
messages as sent, then the answer), so the real offline engine reuses the whole earlier prompt and
never re-encodes an image it already holds."""

import pytest

from assistant import budget
from assistant.session import Assistant, AssistantConfig
from tests.scripted_engine import ScriptedEngine, prompt_text
from tools import synth
from tools.base import ToolRunner
from tools.registry import default_registry

QUESTIONS = [
    "What does the sign say?",
    "What colour is the sign?",
    "Read the sign again, please.",
    "Is there a word PARKING on it?",
]


@pytest.fixture(scope="module")
def runner():
    return ToolRunner(default_registry(enabled=["ocr", "zoom", "color", "metadata"]))


@pytest.fixture(scope="module")
def sign():
    return synth.render_sign(3)  # "NO PARKING"


def test_later_turns_reuse_the_whole_earlier_prompt(smollm2_llava_engine, runner, sign, tmp_path):
    cfg = AssistantConfig(trace_dir=str(tmp_path), max_new_tokens=24)
    assistant = Assistant(smollm2_llava_engine, runner, cfg, planner_factory=budget.planner_factory)
    conv = assistant.conversation("kv-reuse-test")
    try:
        results = [conv.ask(q, [sign.image] if i == 0 else []) for i, q in enumerate(QUESTIONS)]
    finally:
        conv.close()
    first = results[0].tokens
    assert first["image_tokens"] > 0 and first["embed_cache_hits"] + first["embed_cache_misses"] == 1
    assert all(r.budget[0].choice != "text" for r in results)  # the sign stays admitted throughout
    for prev, cur in zip(results, results[1:], strict=False):
        t = cur.tokens
        assert t["generations"] == 1
        # The whole previous prompt (system, earlier turns, the image) comes from the KV cache.
        assert t["kv_reused_tokens"] >= prev.tokens["tokens_in"], (t, prev.tokens)
        assert t["tokens_in"] > prev.tokens["tokens_in"]
        # The image is neither re-encoded nor even looked up: all its positions were in the cache.
        assert t["embed_cache_hits"] + t["embed_cache_misses"] == 0, t


def test_earlier_messages_are_repeated_exactly_and_new_evidence_goes_last(runner, sign, tmp_path):
    engine = ScriptedEngine(default="I can't tell from the evidence.")
    conv = Assistant(engine, runner, AssistantConfig(trace_dir=str(tmp_path))).conversation()
    conv.ask("What does the sign say?", [sign.image])
    r2 = conv.ask("What colour is the sign?")
    first, second = engine.calls[0], engine.calls[-1]
    assert second[: len(first)] == first  # system prompt and turn 1's message, unchanged
    assert second[len(first)] == {"role": "assistant", "content": conv.turns[0].answer}
    # The colour records came with turn 2 and sit in its message, inside the delimited block.
    colours = [e for e in r2.evidence if e["kind"] == "color"]
    assert colours and all(e["id"] not in prompt_text(first) for e in colours)
    newest = prompt_text([second[-1]])
    block = newest[newest.index("<<<EVIDENCE") : newest.index("EVIDENCE>>>")]
    assert all(f"[{e['id']}]" in block for e in colours)
    # Records turn 1 already showed are not repeated.
    ocr_ids = [e["id"] for e in r2.evidence if e["kind"] == "line"]
    assert ocr_ids and all(f"[{i}]" in prompt_text(first) and f"[{i}]" not in newest for i in ocr_ids)
