"""Grounding must help a good model, never harm it: what a seeing engine's draft becomes where no loaded
tool can check it (shown, marked "not verified", never as fact), what a stand-in that cannot see gets
(an abstention), and what still overrules a draft (evidence a tool does have)."""

from assistant.answer import compose_answer
from assistant.policy import classify
from evaluation.metrics import shown_as_fact
from tools.evidence import Evidence

SHAPES = Evidence(
    "det:0", "detect", "im", "detector", "shapes detector", 1.0, None,
    {"classes": ["circle", "square", "triangle"], "domain": "synthetic shapes", "applies": True},
)  # fmt: skip
COCO = Evidence("det:0", "detect", "im", "detector", "yolo", 1.0, None,
                {"classes": ["person", "dog", "bus", "truck"], "domain": "COCO", "applies": True})  # fmt: skip
GREY = Evidence("color:1", "color", "im", "color", "grey", 1.0, (0, 0, 640, 480), {"share": 0.6})
SIZES = {"im": (640, 480)}


def test_left_or_right_questions_are_where_questions():
    for q, target in [
        ("Is the truck on the left or the right side of the picture?", "truck"),
        ("Is the dog at the top or at the bottom of the image?", "dog"),
    ]:
        intent = classify(q)
        assert (intent.name, intent.target) == ("where", target)


def _ask(q, draft, evidence, sees):
    return compose_answer(q, classify(q), evidence, draft, sizes=SIZES, image_order=["im"], sees_images=sees)


UNCHECKABLE = [
    ("What colour is the bus?", "It is blue.", "bus"),
    ("Is there a dog in the picture?", "Yes, there is a dog.", "dog"),
    ("Where is the dog?", "The dog is on the left [ocr:1].", "dog"),
    ("How many horses are there?", "There are 3.", "horse"),
    ("Is the truck on the left or the right side of the picture?", "It is on the left.", "truck"),
    ("Is anyone sitting behind the reception desk?", "Yes.", "person"),
    ("Are the two people walking along the shore on the left or the right?", "On the left.", "person"),
]


def test_a_seeing_engines_draft_no_tool_can_check_is_shown_marked_unverified():
    for q, draft, thing in UNCHECKABLE:
        out = _ask(q, draft, [SHAPES, GREY], sees=True)
        assert not out.abstained and out.status == "unverified", q
        assert out.answer.startswith(f"Not verified by the tools (no detector for {thing!r} is loaded): "), q
        body = draft.split(" [")[0].rstrip(".")
        assert body in out.answer and "[ocr:1]" not in out.answer and "grey" not in out.answer
        assert all(not c.supported and "not checked by any tool" in c.reason for c in out.claims)


def test_the_colour_of_letters_no_tool_could_read_is_flagged():
    out = _ask("What colour are the letters?", "They are blue.", [SHAPES, GREY], sees=True)
    assert out.status == "unverified" and "no text was read" in out.answer and "They are blue." in out.answer
    assert _ask("What colour are the letters?", "They are blue.", [SHAPES, GREY], sees=False).abstained
    sign = Evidence("ocr:1", "ocr", "im", "line", "OPEN", 0.95, (10, 10, 300, 60))
    out = _ask("What colour are the letters?", "They are blue.", [SHAPES, GREY, sign], sees=True)
    # the letters were read but their ink was not measured: still flagged, for that reason, never as fact
    assert (
        out.status == "unverified" and "no text was read" not in out.answer and not shown_as_fact(out.answer)
    )
    ink = Evidence(
        "color:2", "color", "im", "color", "red", 1.0, (10, 10, 300, 60), {"part": "ink", "share": 0.9}
    )
    out = _ask("What colour are the letters?", "They are blue.", [SHAPES, GREY, sign, ink], sees=True)
    # measured red: a measured colour does not overrule a seeing model (box, light and names differ), but the
    # answer says what the tool measured, and nothing is shown as fact
    assert out.status == "unverified" and "measured red (90%)" in out.answer and not shown_as_fact(out.answer)
    assert "red" in shown_as_fact(
        _ask("What colour are the letters?", "", [SHAPES, GREY, sign, ink], sees=False).answer
    )


def test_a_detector_that_does_not_apply_is_named_as_such():
    off = Evidence("det:0", "detect", "im", "detector", "shapes", 1.0, None,
                   {"classes": ["circle", "square"], "domain": "synthetic shapes", "applies": False})  # fmt: skip
    out = _ask("Is there a circle in the image?", "No.", [off], sees=True)
    assert (
        out.status == "unverified"
        and "knows 'circle' (trained on synthetic shapes) does not apply" in out.answer
    )
    assert _ask("Is there a circle in the image?", "No.", [off], sees=False).abstained


def test_an_arrow_question_without_the_arrows_tool_says_so():
    q, draft = "Does the arrow on the wall point to the left or to the right?", "It points to the left."
    seen = _ask(q, draft, [SHAPES, GREY], sees=True)
    assert seen.status == "unverified" and seen.answer.startswith(
        "Not verified by the tools (the arrows tool"
    )
    blind = _ask(q, draft, [SHAPES, GREY], sees=False)
    assert blind.abstained and "arrows tool did not run" in blind.answer and "left" not in blind.answer


def test_an_engine_that_cannot_see_still_abstains_there():
    for q, draft, _ in UNCHECKABLE:
        out = _ask(q, draft, [SHAPES, GREY], sees=False)
        assert out.abstained and out.status == "abstained" and "no detector for" in out.answer, q
        assert draft.split(" [")[0].rstrip(".") not in out.answer


def test_a_draft_a_loaded_detector_contradicts_is_overruled_even_from_a_seeing_engine():
    dog = Evidence("det:1", "detect", "im", "detection", "dog", 0.9, (500, 100, 620, 300))
    out = _ask("Where is the dog?", "The dog is on the left.", [COCO, dog], sees=True)
    fact = shown_as_fact(out.answer)
    assert "right" in fact and "left" not in fact and out.status == "verified" and out.overruled_because
    assert "The model answered 'The dog is on the left.'" in out.answer  # corrected, saying so
    out = _ask("Is there a dog in the picture?", "No.", [COCO, dog], sees=True)
    assert shown_as_fact(out.answer).startswith("Yes. I count 1 dog") and out.overruled_because


def test_an_absence_the_detector_cannot_vouch_for_does_not_overrule_a_seeing_engine():
    # a detector with no measured recall found no dog: that is no evidence against "there is a dog"
    out = _ask("Is there a dog in the picture?", "Yes, there is a dog.", [COCO], sees=True)
    assert (
        out.status == "unverified" and not shown_as_fact(out.answer) and "Yes, there is a dog" in out.answer
    )


def test_reading_questions_stay_strict_for_a_seeing_engine():
    sign = Evidence("ocr:1", "ocr", "im", "line", "OPEN DAILY", 0.95, (10, 10, 300, 60))
    out = _ask("What does the sign say?", 'It says "CLOSED".', [sign], sees=True)
    fact = shown_as_fact(out.answer)
    assert out.status == "verified" and '"OPEN DAILY"' in fact and "CLOSED" not in fact
    # a total OCR did not read anywhere is not the tools' to confirm or deny: flagged, never as fact
    out = _ask("What is the total?", "The total is 12.50.", [sign], sees=True)
    assert out.status == "unverified" and not shown_as_fact(out.answer) and "12.50" in out.answer


def test_status_of_a_verified_draft():
    dog = Evidence("det:1", "detect", "im", "detection", "dog", 0.9, (10, 100, 120, 300))
    out = _ask("Where is the dog?", "The dog is on the left.", [COCO, dog], sees=True)
    assert out.status == "verified" and out.composition == "model" and out.citations == ["det:1"]


def test_engines_say_whether_they_see(tmp_path):
    from assistant.core import local_models
    from assistant.core.remote import RemoteEngine
    from evaluation.engines import HallucinatingEngine, OracleEngine

    assert OracleEngine().sees_images and HallucinatingEngine().sees_images
    assert not RemoteEngine("http://127.0.0.1:9", supports_images=False).sees_images
    assert RemoteEngine("http://127.0.0.1:9", supports_images=True).sees_images
    # a model built here (its build stamp) has a random vision tower; a downloaded one has none
    assert not local_models.built_here(tmp_path)
    (tmp_path / "build.json").write_text("{}")
    assert local_models.built_here(tmp_path)


def _conv(replies, tmp_path, sees):
    from assistant.session import Assistant, AssistantConfig
    from tests.scripted_engine import ScriptedEngine
    from tools.registry import default_registry
    from tools.runner import ToolRunner

    engine = ScriptedEngine(replies)
    engine.sees_images = sees
    runner = ToolRunner(default_registry(enabled=["ocr", "color", "metadata"]))
    return Assistant(engine, runner, AssistantConfig(trace_dir=str(tmp_path))).conversation()


def test_status_reaches_the_result_the_trace_and_a_replay(tmp_path):
    import json
    from pathlib import Path

    from PIL import Image

    from assistant.replay import replay_turn
    from assistant.trace import load_trace

    img = Image.new("RGB", (320, 200), (90, 140, 200))
    for sees, status in ((True, "unverified"), (False, "abstained")):
        r = _conv(["The dog is on the left."], tmp_path / str(sees), sees).ask("Where is the dog?", [img])
        assert r.status == status and r.to_dict()["status"] == status
        assert ("The dog is on the left." in r.answer) == sees and r.abstained != sees
        turn = json.loads(Path(r.trace).read_text().splitlines()[0])
        assert turn["status"] == status and turn["model"]["sees_images"] is sees
        replayed = replay_turn(load_trace(r.trace).turns[0])
        assert replayed.matches and replayed.answer == r.answer


def test_the_ui_marks_an_unverified_answer():
    from frontends.ui_render import claims_markdown

    out = _ask("Where is the dog?", "The dog is on the left.", [SHAPES], sees=True)
    d = {"status": out.status, "abstained": out.abstained, "claims": [c.__dict__ for c in out.claims]}
    assert "Not verified" in claims_markdown(d) and "⚠ flagged" in claims_markdown(d)
    d["status"] = "verified"
    assert "Not verified" not in claims_markdown(d)


def test_a_model_built_here_takes_images_but_does_not_see_them():
    from assistant.core import load_engine
    from assistant.core.config import ModelConfig
    from tests.fixtures.tiny_models import tiny_model_dir

    engine = load_engine(ModelConfig(model=str(tiny_model_dir("tiny-llava")), device="cpu"))
    assert engine.supports_images and not engine.sees_images


def _line(id_, text, box, conf=0.95):
    return Evidence(id_, "ocr", "im", "line", text, conf, box, {"engines": ["rapid", "tesseract"]})


def test_a_seeing_models_reading_of_text_ocr_missed_is_shown_marked_never_as_fact():
    ev = [_line("ocr:1", "to Harbourfront →", (10, 300, 200, 330))]
    q = "What is the name of the station shown on the platform sign?"
    c = _ask(q, 'It says "Buona Vista".', ev, sees=True)
    assert c.answer.startswith("Not verified by the tools (OCR read no text that answers it)")
    assert "Buona Vista" in c.answer and c.status == "unverified" and not c.abstained
    assert _ask(q, 'It says "Buona Vista".', ev, sees=False).abstained  # a stand-in that cannot see
    # what OCR did read answers it: the evidence, not the draft
    ev.append(_line("ocr:2", "Buona Vista", (10, 100, 300, 160)))
    c = _ask(q, 'It says "Bona Vesta Park".', ev, sees=True)  # both engines read it: the reading stands
    assert shown_as_fact(c.answer) == 'It says "Buona Vista" [ocr:2].' and "The model answered" in c.answer


def test_a_typed_value_or_a_name_only_a_label_could_carry_is_never_stated_without_the_evidence():
    ev = [_line("ocr:1", "CORNER CAFE", (10, 10, 300, 60))]
    for q, draft in [
        ("What fare was paid for this ticket?", "The fare was $4.50."),
        ("What is the name of the cashier who served this customer?", 'It says "Mary".'),
        ("On what date was this text written?", "It was written on 3 May 2021."),
    ]:
        out = _ask(
            q, draft, ev, sees=True
        )  # a seeing model's answer, shown flagged: never swapped for "CORNER CAFE"
        assert out.status == "unverified" and not shown_as_fact(out.answer) and "CORNER" not in out.answer, q
        assert _ask(q, draft, ev, sees=False).abstained, q


def test_a_lone_ocr_reading_a_seeing_model_reads_differently_is_not_stated_as_fact():
    rapid = {"engines": ["rapid"]}
    ev = [
        Evidence("ocr:1", "ocr", "im", "line", "Lmergeno", 0.86, (100, 100, 300, 130), rapid),
        Evidence("ocr:2", "ocr", "im", "line", "Train Sop", 0.91, (100, 140, 300, 170), rapid),
    ]
    inks = [  # the colour tool measured both lines' ink red ("the red text")
        Evidence(f"color:{i}", "color", "im", "color", "dark red", 1.0, e.box, {"part": "ink", "share": 0.8})
        for i, e in enumerate(ev, 1)
    ]
    q = "What does the red text on the panel say?"
    c = _ask(q, 'It says "Emergency Train Stop".', ev + inks, sees=True)
    assert c.answer.startswith("Uncertain reading (one OCR engine alone read it, and the model reads")
    assert '"Lmergeno" "Train Sop"' in c.answer and c.status == "unverified"
    # a stand-in that cannot see has no reading to weigh against OCR's
    assert _ask(q, 'It says "Emergency Train Stop".', ev + inks, sees=False).answer.startswith(
        'It says "Lmergeno Train Sop"'
    )
    # both engines read it: the reading stands; a quote of other text does not dispute it either
    for e in ev:
        e.extra = {"engines": ["rapid", "tesseract"]}
    assert _ask(q, 'It says "Emergency Train Stop".', ev + inks, sees=True).answer.startswith(
        'It says "Lmergeno Train Sop"'
    )
    for e in ev:
        e.extra = rapid
    assert _ask(q, 'It says "BAKERY STATION".', ev + inks, sees=True).answer.startswith(
        'It says "Lmergeno Train Sop"'
    )
