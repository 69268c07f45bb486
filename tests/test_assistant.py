"""The assistant loop end to end: real OCR on rendered images, the real offline model (SmolLM2 grafted
into LLaVA, the default offline VLM), and a scripted model where a test needs a given model output."""

import pytest

from assistant.session import Assistant, AssistantConfig
from synthetic import render as synth
from tests.scripted_engine import ScriptedEngine, prompt_text
from tools.registry import default_registry
from tools.runner import ToolRunner


@pytest.fixture(scope="module")
def runner():
    # One runner (and cache) for the module: the same image is read once.
    return ToolRunner(default_registry(enabled=["ocr", "zoom", "color", "metadata"]))


@pytest.fixture(scope="module")
def offline_engine():
    from assistant.core import load_engine
    from assistant.core.config import ModelConfig

    return load_engine(ModelConfig(model="smollm2-llava", device="cpu"))


@pytest.fixture(scope="module")
def sign():
    return synth.render_sign(3)  # "NO PARKING"


@pytest.fixture(scope="module")
def receipt():
    return synth.render_receipt(5)


def test_offline_model_reads_a_sign_with_citation(offline_engine, runner, sign, tmp_path):
    conv = Assistant(offline_engine, runner, AssistantConfig(trace_dir=str(tmp_path))).conversation()
    r = conv.ask("What does the sign say?", [sign.image])
    assert "NO PARKING" in r.answer.upper()
    assert r.citations and all(c.startswith(("ocr:", "zoom:")) for c in r.citations)
    cited = {e["id"]: e["text"].upper() for e in r.evidence}
    assert any(w in cited[c] for c in r.citations for w in ("NO", "PARKING"))
    assert not r.abstained and any(c.supported for c in r.claims)
    assert r.model == offline_engine.model_id and r.tokens["tokens_out"] > 0
    assert r.timings["ttft_s"] > 0 and r.timings["total_s"] >= r.timings["ttft_s"]


def test_offline_model_gives_the_receipt_total(offline_engine, runner, receipt, tmp_path):
    conv = Assistant(offline_engine, runner, AssistantConfig(trace_dir=str(tmp_path))).conversation()
    r = conv.ask("What is the total on this receipt?", [receipt.image])
    assert receipt.total in r.answer
    cited = [e["text"] for e in r.evidence if e["id"] in r.citations]
    # the citation is the TOTAL line, or the amount itself (OCR may read "47.80" or "47 80")
    assert any("TOTAL" in t.upper() or receipt.total in t.replace(" ", ".") for t in cited), cited


def test_offline_model_abstains_on_a_phone_number_without_text(offline_engine, runner, tmp_path):
    from PIL import Image

    blank = Image.new("RGB", (320, 240), (90, 140, 200))
    conv = Assistant(offline_engine, runner, AssistantConfig(trace_dir=str(tmp_path))).conversation()
    r = conv.ask("What is the phone number on this image?", [blank])
    assert r.abstained and r.answer.startswith("I can't tell from the evidence")
    assert r.citations == []
    assert not any(ch.isdigit() for ch in r.answer.split("\n")[0])  # no number made up


def test_multi_turn_across_two_images(runner, sign, receipt, tmp_path):
    engine = ScriptedEngine(default="I can't tell from the evidence.")
    conv = Assistant(engine, runner, AssistantConfig(trace_dir=str(tmp_path))).conversation()
    r1 = conv.ask("What does the sign say?", [sign.image])
    r2 = conv.ask("What is the total on this receipt?", [receipt.image])
    r3 = conv.ask("And what does the first picture say?")
    r4 = conv.ask("and the second one?")
    assert "NO PARKING" in r1.answer.upper()
    assert receipt.total in r2.answer
    # "the first picture" is the sign, though the receipt came later; the intent (read) is inherited
    assert "NO PARKING" in r3.answer.upper() and r3.intent == "read" and receipt.total not in r3.answer
    assert r4.intent == "read" and "TOTAL" in r4.answer.upper()
    # evidence ids stay stable across turns: the sign's words keep the ids of turn 1
    assert set(r3.citations) <= {e["id"] for e in r1.evidence}
    # the model saw the earlier turns as history
    history = prompt_text(engine.calls[2])
    assert "What does the sign say?" in history and "What is the total on this receipt?" in history
    assert [t.turn for t in conv.turns] == [1, 2, 3, 4]


def test_stream_events_in_order(runner, sign, tmp_path):
    engine = ScriptedEngine(['The sign says "NO PARKING".'], sees_images=True)
    conv = Assistant(engine, runner, AssistantConfig(trace_dir=str(tmp_path))).conversation()
    events = list(conv.stream("What does the sign say?", [sign.image]))
    types = [e.type for e in events]
    assert types[0] == "tool_start" and types[-1] == "done"
    assert types.index("tool_end") < types.index("budget") < types.index("token")
    assert "".join(e.text for e in events if e.type == "token") == 'The sign says "NO PARKING".'
    done = events[-1].result
    assert done.composition == "model" and done.citations
    d = done.to_dict()
    for key in (
        "answer",
        "citations",
        "claims",
        "abstained",
        "trace",
        "timings",
        "model",
        "evidence",
        "tool_calls",
        "budget",
    ):
        assert key in d
    assert {"text", "supported", "evidence", "reason"} <= set(d["claims"][0])


def test_bad_input_is_an_error_event_and_a_user_error(runner, tmp_path):
    from tools.errors import BadInputError

    conv = Assistant(ScriptedEngine(), runner, AssistantConfig(trace_dir=str(tmp_path))).conversation()
    events = list(conv.stream("What is this?", [b"not an image"]))
    assert [e.type for e in events] == ["error"] and "not an image" in events[0].text
    with pytest.raises(BadInputError):
        conv.ask("", [])


def test_without_tools_the_assistant_abstains_on_reading(sign, tmp_path):
    conv = Assistant(
        ScriptedEngine(["It says STOP."]), None, AssistantConfig(trace_dir=str(tmp_path))
    ).conversation()
    r = conv.ask("What does the sign say?", [sign.image])
    assert r.abstained and r.tool_calls == []


def test_history_is_bounded(tmp_path):
    engine = ScriptedEngine(default="Fine.")
    cfg = AssistantConfig(trace_dir=str(tmp_path), history_turns=2)
    conv = Assistant(engine, None, cfg).conversation()
    for i in range(4):
        r = conv.ask(f"Question number {i}?")
    assert r.answer == "Fine." and not r.abstained  # no image: the model's own answer, unflagged
    last = engine.calls[-1]
    assert [m["role"] for m in last] == ["system", "user", "assistant", "user", "assistant", "user"]
    assert "Question number 1?" in prompt_text(last) and "Question number 0?" not in prompt_text(last)
