"""Uncertain readings are not shown as fact: a line that only one OCR engine read, with low confidence,
comes after every sure part of the answer, marked "Uncertain reading" with why, whether the extract or the
model's draft would have stated it; two engines agreeing make a reading sure. The evaluation scores what
follows the mark as not shown as fact (flagged when nothing else is said)."""

from assistant.answer import UNCERTAIN_MARK, compose_answer
from assistant.loop import _gen_config
from assistant.policy import Intent
from assistant.reading import doubt
from assistant.session import AssistantConfig
from evaluation.metrics import score, shown_as_fact
from tools.evidence import Evidence


def line(id_, text, box, conf=0.95, engines=("rapid", "tesseract"), image="im"):
    extra = {"engines": list(engines)}
    return Evidence(id_, "ocr", image, "line", text, conf, tuple(float(v) for v in box), extra)


def test_a_lone_unsure_reading_is_doubted_and_agreement_or_confidence_makes_it_sure():
    assert doubt(line("ocr:1", "SmRT", (0, 0, 50, 20), conf=0.72, engines=["rapid"])) == (
        "only rapid read it, with confidence 0.72"
    )
    assert doubt(line("ocr:2", "SMRT", (0, 0, 50, 20), conf=0.72)) == ""  # both engines read it
    assert doubt(line("ocr:3", "EXIT", (0, 0, 50, 20), conf=0.95, engines=["rapid"])) == ""


def test_a_sign_read_by_one_unsure_engine_is_flagged_not_stated():
    ev = [line("ocr:1", "fwrionopolis", (100, 100, 600, 160), conf=0.77, engines=["rapid"])]
    c = compose_answer("What name is printed on the wall?", Intent("read"), ev, "")
    assert c.answer.startswith(f"{UNCERTAIN_MARK} (only rapid read it, with confidence 0.77)")
    assert '"fwrionopolis" [ocr:1]' in c.answer and c.status == "unverified" and not c.abstained
    case = {"id": "x", "kind": "read", "expect_any": ["Fusionopolis"]}
    row = {"answer": c.answer, "status": c.status, "abstained": c.abstained}
    assert shown_as_fact(c.answer) == "" and score(case, row)["outcome"] == "flagged"


def test_sure_lines_are_stated_and_the_unsure_one_follows_the_mark():
    ev = [
        line("ocr:1", "Carpark 8683", (100, 300, 400, 340), conf=0.89),
        line("ocr:2", "Rotal [82-03]9", (100, 200, 400, 240), conf=0.74, engines=["rapid"]),
    ]
    c = compose_answer("What is written on the sign?", Intent("read"), ev, "")
    sure, _, unsure = c.answer.partition(UNCERTAIN_MARK)
    assert sure.strip() == 'It says "Carpark 8683" [ocr:1].' and c.status == "verified"
    assert '"Rotal [82-03]9" [ocr:2]' in unsure and "may also say" in unsure
    assert "Rotal" not in shown_as_fact(c.answer)
    assert [cl.supported for cl in c.claims[:2]] == [True, False]


def test_a_total_on_an_unsure_line_is_hedged_whole():
    ev = [
        line("ocr:1", "CORNER CAFE", (100, 20, 400, 60)),
        line("ocr:2", "TOTAL 7.95", (20, 200, 300, 222), conf=0.6, engines=["tesseract"]),
    ]
    c = compose_answer("What is the total?", Intent("total"), ev, "")
    assert c.answer.startswith(UNCERTAIN_MARK) and '"7.95"' in c.answer and c.status == "unverified"
    sure = [
        line("ocr:1", "CORNER CAFE", (100, 20, 400, 60)),
        line("ocr:2", "TOTAL 7.95", (20, 200, 300, 222)),
    ]
    assert (
        compose_answer("What is the total?", Intent("total"), sure, "").answer == "The total is 7.95 [ocr:2]."
    )


def test_a_draft_quoting_only_an_unsure_reading_is_not_kept_as_fact():
    ev = [line("ocr:1", "SmRT", (600, 10, 700, 40), conf=0.72, engines=["rapid"])]
    c = compose_answer("Which bank's logo is in the corner?", Intent("read"), ev, 'It says "SmRT".')
    assert c.composition == "evidence" and c.answer.startswith(UNCERTAIN_MARK)
    ev[0].extra["engines"] = [
        "rapid",
        "tesseract",
    ]  # confirmed by the second engine: a seeing model's draft stands
    c = compose_answer(
        "Which bank's logo is in the corner?", Intent("read"), ev, 'It says "SmRT".', sees_images=True
    )
    assert c.composition == "model" and c.answer == 'It says "SmRT" [ocr:1].'


def test_several_images_keep_their_labels_on_the_uncertain_part():
    ev = [
        line("ocr:1", "STOP", (10, 10, 200, 80), image="a"),
        line("ocr:2", "0NE VVAY", (10, 10, 200, 80), conf=0.6, engines=["rapid"], image="b"),
    ]
    c = compose_answer(
        "What do these signs say?", Intent("read"), ev, "", image_order=["a", "b"], image_numbers=[1, 2]
    )
    assert c.answer.startswith('Image 1: It says "STOP". Image 2: no sure reading')
    assert c.answer.endswith('image 2 may say "0NE VVAY" [ocr:2].') and UNCERTAIN_MARK in c.answer


def test_a_short_question_gets_a_short_one_paragraph_draft():
    cfg = AssistantConfig(max_new_tokens=160)
    count = _gen_config(cfg, Intent("count", target="dog"))
    assert count.max_new_tokens == 48 and count.stop == ["\n\n"]
    assert _gen_config(cfg, Intent("read")).max_new_tokens == 96
    describe = _gen_config(cfg, Intent("describe"))
    assert describe.max_new_tokens == 160 and describe.stop == []
    assert _gen_config(AssistantConfig(max_new_tokens=20), Intent("count")).max_new_tokens == 20


def test_the_ui_says_the_reading_is_uncertain_not_that_no_tool_checked_it():
    from frontends.ui_render import claims_markdown

    ev = [line("ocr:1", "SmRT", (600, 10, 700, 40), conf=0.72, engines=["rapid"])]
    c = compose_answer("Which bank's logo is in the corner?", Intent("read"), ev, "")
    md = claims_markdown({"answer": c.answer, "status": c.status, "claims": [vars(x) for x in c.claims]})
    assert "Uncertain reading" in md and "Not verified" not in md and "⚠ flagged" in md


def test_a_draft_quoting_text_of_another_type_does_not_answer_a_typed_question():
    ev = [
        line("ocr:1", "The quick brown fox jumps", (10, 10, 400, 40)),
        line("ocr:2", "aspammer@website.com", (10, 60, 400, 90)),
    ]
    q = "What e-mail address appears in the text?"
    for intent in (Intent("read"), Intent("field", field="email")):
        wrong = 'The e-mail address appears in the text as "The quick brown fox jumps".'
        c = compose_answer(q, intent, ev, wrong)
        assert c.composition == "evidence" and "aspammer@website.com" in c.answer and "fox" not in c.answer
        c = compose_answer(q, intent, ev, wrong, sees_images=True)  # a seeing model's quote of another type
        assert c.composition == "evidence" and "aspammer@website.com" in shown_as_fact(c.answer)
        assert "fox" not in shown_as_fact(c.answer)
        c = compose_answer(q, intent, ev, 'The e-mail address is "aspammer@website.com".', sees_images=True)
        assert c.composition == "model" and "aspammer@website.com" in c.answer
