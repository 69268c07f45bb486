"""What the user sees: a short clean answer (the model's draft and why it was overruled kept apart),
abstentions that say so, well-formed citations, several images answered each under its own label, and
a draft the evidence supports kept as it is (grounding must never harm a right answer)."""

from assistant.answer import compose_answer
from assistant.policy import Intent
from evaluation.metrics import shown_as_fact
from tools.evidence import Evidence


def line(id_, text, box, image="im", conf=0.95, tool="ocr"):
    return Evidence(id_, tool, image, "line", text, conf, tuple(float(v) for v in box))


RECEIPT = [
    line("ocr:1", "CORNER CAFE", (100, 20, 400, 60)),
    line("ocr:2", "TEA 1.80", (20, 100, 300, 120)),
    line("ocr:3", "TOTAL 8.85", (20, 200, 300, 222)),
]


def test_an_overruled_draft_stays_out_of_the_answer_and_is_kept_apart():
    c = compose_answer("What is the total?", Intent("total"), RECEIPT, "The total is 99.99.")
    assert c.answer == "The total is 8.85 [ocr:3]."
    assert "model" not in c.answer.lower() and not c.abstained
    assert c.draft == "The total is 99.99." and "99.99" in c.overruled_because


def test_abstaining_says_so_with_its_reason_and_abstained_true():
    c = compose_answer(
        "What is the name of the cashier?", Intent("read"), RECEIPT, 'It says "Mary Lee" [ocr:1].'
    )
    assert c.abstained and c.composition == "abstain"
    assert c.answer.startswith("I can't tell") and "cashier" in c.answer and "Mary" not in c.answer
    assert c.draft.startswith("It says") and c.overruled_because
    # an open question the evidence cannot answer abstains too; no "I can't verify ... The tools found"
    c = compose_answer("What was the final score of the match?", Intent("other"), RECEIPT, "It was 3-1.")
    assert c.abstained and "tools found" not in c.answer and "verify" not in c.answer


def test_a_describe_question_gets_a_summary_labelled_as_such():
    c = compose_answer("Describe this picture.", Intent("describe"), RECEIPT, "A cat on a sofa.")
    assert c.answer.startswith("Summary of the evidence, not an answer") and c.composition == "summary"


def test_citations_appear_once_and_well_formed():
    c = compose_answer(
        "What does the sign say?",
        Intent("read"),
        RECEIPT,
        'It says "CORNER CAFE" [ [ocr:1, ocr:1].',
        sees_images=True,
    )
    assert c.composition == "model"
    assert c.answer == 'It says "CORNER CAFE" [ocr:1].'


def test_a_supported_draft_is_kept_even_where_the_extract_would_choose_other_text():
    c = compose_answer(
        "What does the sign say?", Intent("read"), RECEIPT, 'It says "TEA 1.80" [ocr:2].', sees_images=True
    )
    assert c.composition == "model" and c.answer.startswith('It says "TEA 1.80"') and not c.overruled_because


def test_a_right_reading_of_a_strip_is_not_overruled_by_a_worse_re_read():
    ev = [
        line("ocr:4", "WIDE STRIP TEXT", (100, 2, 9800, 18), conf=0.86),
        line("zoom:4", "IDE TEXT", (120, 1, 9790, 19), conf=0.9, tool="zoom"),
    ]
    c = compose_answer(
        "What does it say?", Intent("read"), ev, 'It says "WIDE STRIP TEXT" [ocr:4].', sees_images=True
    )
    assert c.composition == "model" and "WIDE STRIP TEXT" in c.answer and 'IDE TEXT"' not in c.answer
    # an engine that cannot see gives no evidence: the sign's text is the extract, from the fuller reading
    c = compose_answer("What does it say?", Intent("read"), ev, "I can't tell from the evidence.")
    assert c.answer == 'It says "WIDE STRIP TEXT" [ocr:4].'
    # a seeing model that says it cannot tell is not overruled by a reading of untyped text
    c = compose_answer(
        "What does it say?", Intent("read"), ev, "I can't tell from the evidence.", sees_images=True
    )
    assert c.abstained


def test_several_images_are_answered_each_under_its_own_label():
    ev = [
        line("ocr:1", "STOP", (10, 10, 200, 80), image="a"),
        line("ocr:2", "ONE WAY", (10, 10, 200, 80), image="c"),
    ]
    c = compose_answer("What do these signs say?", Intent("read"), ev, 'It says "STOP" [ocr:1].',
                       image_order=["a", "b", "c"], image_numbers=[1, 2, 3])  # fmt: skip
    assert c.answer.startswith('Image 1: It says "STOP". Image 2: nothing in its evidence answers this.')
    assert 'Image 3: It says "ONE WAY"' in c.answer and c.composition == "evidence"
    # a draft that states every image's text is kept
    c = compose_answer("What do these signs say?", Intent("read"), ev, 'Image 1 says "STOP" and image 3 says "ONE WAY".',
                       image_order=["a", "b", "c"], image_numbers=[1, 2, 3], sees_images=True)  # fmt: skip
    assert c.composition == "model"


# ---- through the loop: real OCR on rendered images, a scripted model -----------------------------


def _conv(replies, tmp_path, sees=False):
    from assistant.session import Assistant, AssistantConfig
    from tests.scripted_engine import ScriptedEngine
    from tools.registry import default_registry
    from tools.runner import ToolRunner

    runner = ToolRunner(default_registry(enabled=["ocr", "zoom", "color", "metadata"]))
    engine = ScriptedEngine(replies, sees_images=sees)
    return Assistant(engine, runner, AssistantConfig(trace_dir=str(tmp_path))).conversation()


def test_draft_and_overruled_because_reach_the_result_and_the_trace(tmp_path):
    import json
    from pathlib import Path

    from synthetic import render as synth

    receipt = synth.render_receipt(5)
    r = _conv(["The total is 999.99 [ocr:1]."], tmp_path).ask("What is the total?", [receipt.image])
    assert (
        receipt.total in r.answer and "999.99" not in r.answer and "\n" not in r.answer
    )  # a stand-in's draft
    seeing = _conv(["The total is 999.99 [ocr:1]."], tmp_path / "sees", sees=True).ask(
        "What is the total?", [receipt.image]
    )
    # a seeing model's draft is corrected from the evidence, saying so: its number is named as its own
    assert receipt.total in shown_as_fact(seeing.answer) and "999.99" not in shown_as_fact(seeing.answer)
    assert "The model answered 'The total is 999.99.'" in seeing.answer
    assert r.draft == "The total is 999.99 [ocr:1]." and "999.99" in r.overruled_because
    d = r.to_dict()
    assert d["draft"] == r.draft and d["overruled_because"] == r.overruled_because
    turn = json.loads(Path(r.trace).read_text().splitlines()[0])
    assert turn["draft"] == r.draft and turn["overruled_because"] == r.overruled_because


def test_several_images_through_the_loop_each_labelled(tmp_path):
    from PIL import Image

    from synthetic import render as synth

    a, b = synth.render_sign(3, text="NO PARKING"), synth.render_sign(4, text="EXIT ONLY")
    blank = Image.new("RGB", (320, 200), (90, 140, 200))
    r = _conv(['It says "NO PARKING".'], tmp_path).ask("What do these signs say?", [a.image, blank, b.image])
    first, rest = r.answer.split("Image 2:")
    assert first.startswith("Image 1:") and "NO PARKING" in first and "EXIT" not in first
    assert "nothing in its evidence" in rest.split("Image 3:")[0] and "EXIT ONLY" in rest.split("Image 3:")[1]
    assert not r.abstained


def test_the_ui_collapsible_shows_the_draft_and_why_it_was_overruled():
    from frontends.ui_render import draft_message

    m = draft_message("The total is 999.99.", "number 999.99 not found in the evidence", 3)
    assert m["metadata"]["title"] == "Model's draft (overruled)" and m["metadata"]["id"] == "draft-3"
    assert "The total is 999.99." in m["content"] and "**Overruled because:** number 999.99" in m["content"]


def test_a_quote_cut_short_mid_word_is_not_kept():
    ev = [line("ocr:1", "FRESH BREAD", (40, 40, 400, 100))]
    c = compose_answer("What does the sign say?", Intent("read"), ev, 'The sign says "FRESH B [ocr:1].')
    assert c.answer == 'It says "FRESH BREAD" [ocr:1].' and c.composition == "evidence"
    c = compose_answer(
        "What does the sign say?",
        Intent("read"),
        ev,
        'The sign says "FRESH BREAD" [ocr:1].',
        sees_images=True,
    )
    assert c.composition == "model"


def test_a_price_of_an_item_the_text_does_not_list_abstains_even_if_the_number_is_read_elsewhere():
    # 1.80 is on the receipt (the tea's price), but no line lists bananas: the number answers nothing.
    c = compose_answer(
        "How much did the bananas cost?", Intent("price", target="bananas"), RECEIPT, "The answer is 1.80."
    )
    assert c.abstained and c.status == "abstained" and "1.80" not in c.answer
    # the item the receipt does list is still answered, and a draft stating its price is kept
    c = compose_answer(
        "How much did the tea cost?", Intent("price", target="tea"), RECEIPT, "The tea cost 1.80."
    )
    assert not c.abstained and "1.80" in c.answer


def test_a_claim_the_model_repeats_is_shown_once():
    c = compose_answer(
        "What is the total?", Intent("total"), RECEIPT, "The total is 8.85. The total is 8.85."
    )
    assert c.answer.count("8.85") == 1
