"""Claim verification and grounded answers on hand-made evidence (no OCR run needed)."""

from assistant.answer import compose_answer
from assistant.extract import receipt_total
from assistant.policy import Intent
from assistant.textmatch import find_text
from assistant.verify import split_claims, verify_answer, verify_claim
from tests.fixtures.answers import unanswered
from tools.evidence import Evidence


def words(text, image="im", y=100, conf=0.93, tool="ocr", start=1, line=0):
    out, x = [], 10
    for i, w in enumerate(text.split()):
        out.append(Evidence(f"{tool}:{start + i}", tool, image, "word", w, conf, (x, y, x + 20 * len(w), y + 30),
                            {"line_id": line, "block_id": 0}))  # fmt: skip
        x += 20 * len(w) + 15
    return out


def line(id_, text, y=100, conf=0.93, image="im"):
    return Evidence(
        id_, "ocr", image, "line", text, conf, (10, y, 400, y + 30), {"line_id": 0, "block_id": 0}
    )


SIGN = [*words("0PEN DA1LY"), line("ocr:3", "0PEN DA1LY")]  # OCR confuses O/0 and I/1


def test_true_quote_accepted_despite_case_spacing_and_ocr_errors():
    c = verify_claim('The sign says "Open  daily".', [], SIGN)
    assert c.supported and c.kind == "quote"
    assert set(c.evidence) & {"ocr:1", "ocr:2", "ocr:3"}


def test_fabricated_quote_rejected():
    c = verify_claim('The sign says "CLOSED ON SUNDAYS".', [], SIGN)
    assert not c.supported
    assert "not read" in c.reason


def test_unquoted_says_is_checked_too():
    assert verify_claim("It reads OPEN DAILY.", [], SIGN).supported
    assert not verify_claim("It reads FREE PARKING.", [], SIGN).supported


def test_short_text_must_match_exactly():
    assert find_text("A", [*words("4")]).score == 0.0


def test_citations_must_exist():
    c = verify_claim('It says "OPEN DAILY" [ocr:99].', ["ocr:99"], SIGN)
    assert not c.supported and "ocr:99" in c.reason


def test_split_claims_keeps_citations():
    got = split_claims('The sign says "OPEN" [ocr:1, ocr:2]. It is red [color:1].\n- Two cars [det:1]')
    assert got == [
        ('The sign says "OPEN".', ["ocr:1", "ocr:2"]),
        ("It is red.", ["color:1"]),
        ("Two cars", ["det:1"]),
    ]


DETS = [
    Evidence("det:1", "detect", "im", "detection", "car", 0.9, (10, 10, 60, 60)),
    Evidence("det:2", "detect", "im", "detection", "car", 0.8, (500, 400, 600, 470)),
    Evidence("det:3", "detect", "im", "detection", "person", 0.7, (300, 200, 340, 300)),
]
COLOURS = [
    Evidence("color:1", "color", "im", "color", "dark red", 1.0, (0, 0, 640, 480), {"share": 0.5}),
    Evidence("color:2", "color", "im", "color", "white", 1.0, (0, 0, 640, 480), {"share": 0.3}),
]
SIZES = {"im": (640, 480)}


def test_counts_against_detections():
    assert verify_claim("There are 2 cars.", [], DETS).supported
    bad = verify_claim("There are 3 cars.", [], DETS)
    assert not bad.supported and "2 car" in bad.reason


def test_colours_against_the_colour_tool():
    assert verify_claim("The image is mostly red.", [], COLOURS).supported
    bad = verify_claim("The image is blue.", [], COLOURS)
    assert not bad.supported and "blue" in bad.reason
    car = verify_claim("The car is red.", [], COLOURS)  # the whole image's red says nothing of a car
    assert not car.supported and "car" in car.reason


def test_positions_against_boxes():
    assert verify_claim("The person is in the middle.", [], DETS, SIZES).supported
    assert not verify_claim("The person is on the left.", [], DETS, SIZES).supported


def test_numbers_against_ocr_even_when_split():
    receipt = [line("ocr:1", "Coffee 3.50", 50), line("ocr:2", "TOTAL 76 44", 200)]
    assert verify_claim("The total is 76.44.", [], receipt).supported
    assert not verify_claim("The total is 12.00.", [], receipt).supported


def test_uncheckable_claim_is_not_supported_and_filler_is_no_claim():
    assert not verify_claim("This is a beautiful sunset over the sea.", [], SIGN).supported
    assert verify_answer("Sure! I can't tell from the evidence.", SIGN) == []


def test_receipt_total_prefers_total_over_subtotal():
    ev = [
        line("ocr:1", "SUBTOTAL 10.00", 100),
        line("ocr:2", "TAX 1.00", 130),
        line("ocr:3", "TOTAL 11 00", 160),
    ]
    ex = receipt_total(ev)
    assert ex.key == "11.00" and ex.ids == ["ocr:3"]


def test_evidence_wins_over_a_contradicting_model():
    out = compose_answer("What does the sign say?", Intent("read"), SIGN, 'The sign says "CLOSED".')
    assert out.composition == "evidence" and not out.abstained
    assert "0PEN DA1LY" in out.answer and "ocr:3" in out.citations
    assert "CLOSED" in out.note  # the user sees what the model said and why it lost
    flagged = [c for c in out.claims if not c.supported]
    assert flagged and flagged[0].source == "model"


def test_agreeing_model_answer_is_kept_with_citations_attached():
    out = compose_answer(
        "What does the sign say?", Intent("read"), SIGN, 'The sign says "OPEN DAILY".', sees_images=True
    )
    assert out.composition == "model"
    assert out.answer.startswith('The sign says "OPEN DAILY" [') and out.citations


def test_unsupported_claims_are_flagged_in_the_answer():
    # A model that sees the image: its draft is kept, the checked claim cited, the unchecked one marked.
    ev = DETS + COLOURS
    draft = "There are 2 cars. A dog sleeps."
    out = compose_answer(
        "Describe the image.", Intent("describe"), ev, draft, image_order=["im"], sees_images=True
    )
    assert out.composition == "model" and out.status == "unverified"
    assert "There are 2 cars [det:1, det:2]." in out.answer
    assert "A dog sleeps [not supported by the evidence]." in out.answer
    # A stand-in that cannot see: its unchecked words are worthless; the evidence is summarised instead.
    out = compose_answer("Describe the image.", Intent("describe"), ev, draft, image_order=["im"])
    assert out.composition == "summary" and "dog" not in out.answer and out.status == "verified"


def test_abstains_when_evidence_cannot_answer():
    out = compose_answer(
        "What is the phone number?", Intent("field", field="phone"), COLOURS, "It is 555-1234."
    )
    assert out.abstained and out.composition == "abstain"
    assert out.answer.startswith("I can't tell from the evidence") and "phone number" in out.answer
    assert out.citations == []


def test_abstains_when_no_text_was_read():
    out = compose_answer("What does the sign say?", Intent("read"), [], "", image_order=["im"])
    assert out.abstained and "no text was read" in out.answer
    out = compose_answer("What does the sign say?", Intent("read"), [], "")
    assert out.abstained and "no image was given" in out.answer


def test_without_images_a_general_answer_is_the_models_own():
    out = compose_answer(
        "What is the capital of France?", Intent("other"), [], "The capital of France is Paris."
    )
    assert out.answer == "The capital of France is Paris." and not out.abstained
    assert out.claims and not out.claims[0].supported  # recorded as unchecked, not presented as verified


def test_a_true_quote_does_not_carry_an_invented_clause():
    got = split_claims('The sign says "FISH AND THE CHIPS" and it is a famous restaurant.')
    assert [t for t, _ in got] == ['The sign says "FISH AND THE CHIPS"', "it is a famous restaurant."]
    out = compose_answer(
        "What does the sign say?", Intent("read"), SIGN, 'The sign says "OPEN DAILY" and it is a bakery.'
    )
    assert out.composition == "evidence"  # half true is not an agreeing answer
    assert any(not c.supported and "bakery" in c.text for c in out.claims)


def test_several_images_are_answered_one_by_one_with_their_numbers():
    ev = [line("ocr:1", "EXIT", image="b"), line("ocr:2", "NO PARKING", image="c")]
    out = compose_answer(
        "What do they say?", Intent("read"), ev, "", image_order=["b", "c"], image_numbers=[2, 3]
    )
    assert out.answer.startswith('Image 2: It says "EXIT". Image 3: It says "NO PARKING"')
    assert set(out.citations) == {"ocr:1", "ocr:2"}


def test_sign_reading_keeps_a_weaker_line_on_the_same_plate_and_drops_far_junk():
    from assistant.extract import read_text

    ev = [
        Evidence("ocr:1", "ocr", "im", "line", "BUS", 0.96, (100, 100, 160, 130)),
        Evidence(
            "ocr:2", "ocr", "im", "line", "STOP", 0.78, (100, 140, 170, 170)
        ),  # the next line of the sign
        Evidence("ocr:3", "ocr", "im", "line", "age", 0.79, (500, 400, 530, 413)),  # background texture
    ]
    ex = read_text(ev)
    assert ex.key == "BUS STOP" and ex.ids == ["ocr:1", "ocr:2"]


def test_texture_read_as_letters_is_not_text():
    from assistant.extract import read_text

    assert unanswered(read_text([Evidence("ocr:1", "ocr", "im", "line", "aa a", 0.7, (10, 10, 60, 30))]))
    assert read_text([Evidence("ocr:1", "ocr", "im", "line", "OK", 0.95, (10, 10, 60, 30))]).key == "OK"


def test_a_quote_matches_one_part_of_a_word_ocr_read_joined():
    # OCR read a destination board as one word "M1SOL/SEUILLA": "SEVILLA" is its second part, misread
    board = words("M1SOL/SEUILLA cero emisiones")
    c = verify_claim('It says "SEVILLA".', [], board)
    assert c.supported and c.evidence == ["ocr:1"]
    assert not verify_claim('It says "MADRID".', [], board).supported
