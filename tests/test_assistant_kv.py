"""Multi-turn KV reuse through the assistant: each turn's prompt extends the previous one (its
messages as sent, then the answer), so the real offline engine reuses the whole earlier prompt and
never re-encodes an image it already holds."""

import pytest

from assistant import budget
from assistant.session import Assistant, AssistantConfig
from synthetic import render as synth
from tests.scripted_engine import ScriptedEngine, prompt_text
from tools.registry import default_registry
from tools.runner import ToolRunner

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


class SeeingScriptedEngine(ScriptedEngine):
    """The scripted model, taking images at a flat 100 tokens each (so the budget planner prices them)."""

    supports_images = True

    def __init__(self):
        super().__init__()
        self.images: list[list] = []  # the ImageInputs of every generation

    def image_token_count(self, image) -> int:
        return 100

    def stream(self, messages, images, gen=None, session_id=None):
        self.images.append(list(images))
        return super().stream(messages, images, gen, session_id)


def _image_parts(message: dict) -> int:
    return sum(1 for p in message["content"] if p.get("type") == "image")


def test_a_demoted_image_leaves_its_message_and_comes_back_in_the_newest(runner, sign, tmp_path):
    engine = SeeingScriptedEngine()
    cfg = AssistantConfig(trace_dir=str(tmp_path), image_tokens_per_conversation=150)
    conv = Assistant(engine, runner, cfg, planner_factory=budget.planner_factory).conversation()
    receipt = synth.render_receipt(5)
    conv.ask("What does the sign say?", [sign.image])
    r2 = conv.ask("What is the total on this receipt?", [receipt.image])
    r3 = conv.ask("And what does the first picture say again?")
    # Room for one image: the sign is demoted when the receipt comes.
    assert r2.budget[0].choice == "text" and r2.budget[1].choice != "text"
    assert [b.status for b in r3.budget] == ["readmitted", "demoted"]
    turn1, turn2, turn3 = engine.calls
    # Turn 2: turn 1's message loses its image part (the prompt changes there), the receipt is new.
    assert _image_parts(turn1[1]) == 1 and _image_parts(turn2[1]) == 0 and _image_parts(turn2[3]) == 1
    assert turn2[1]["content"][-1] == turn1[1]["content"][-1]  # its text is as sent
    # Turn 3: the sign is back, in the newest message; turns 1 and 2 stay as turn 2 sent them, less
    # the now demoted receipt.
    assert [_image_parts(m) for m in turn3 if m["role"] == "user"] == [0, 0, 1]
    assert turn3[:3] == turn2[:3]
    assert [im.ref.id for im in engine.images[2]] == [r3.budget[0].image]
