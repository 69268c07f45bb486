"""Arrows on signs (issue 18, where questions): the arrows tool finds arrow shapes and which way they
point; letters and shapes that are not arrows are not reported; the assistant answers "which way does
the arrow point" from an arrow beside the sign's text only, and checks a model's claim against it."""

from PIL import Image, ImageDraw, ImageFont

from assistant import sightings
from assistant.answer import compose_answer
from assistant.policy import classify, plan
from tools.arrows import ArrowTool, find_arrows
from tools.evidence import Evidence
from tools.images import ImageRef


def _sign(points: str, text: str = "Eventdock") -> Image.Image:
    """A concrete-grey wall with a black line arrow beside a word, like a wayfinding sign."""
    im = Image.new("RGB", (640, 480), (150, 150, 145))
    d = ImageDraw.Draw(im)
    y = 255
    if points == "left":
        d.line([(60, y), (140, y)], fill=(20, 20, 20), width=12)
        d.line([(60, y), (95, y - 34)], fill=(20, 20, 20), width=12)
        d.line([(60, y), (95, y + 34)], fill=(20, 20, 20), width=12)
    elif points == "right":
        d.line([(60, y), (140, y)], fill=(20, 20, 20), width=12)
        d.line([(140, y), (105, y - 34)], fill=(20, 20, 20), width=12)
        d.line([(140, y), (105, y + 34)], fill=(20, 20, 20), width=12)
    elif points == "up":  # a block arrow: a triangle head on a bar
        d.polygon([(100, 190), (60, 240), (140, 240)], fill=(20, 20, 20))
        d.rectangle([88, 240, 112, 330], fill=(20, 20, 20))
    font = ImageFont.load_default(size=48)
    d.text((175, 228), text, fill=(20, 20, 20), font=font)
    return im


def test_the_tool_tells_which_way_an_arrow_points():
    for way in ("left", "right", "up"):
        found = find_arrows(_sign(way))
        assert [w for w, box in found if box[2] < 170] == [way], (way, found)


def test_letters_and_plain_shapes_are_not_arrows():
    im = Image.new("RGB", (640, 480), (235, 235, 230))
    d = ImageDraw.Draw(im)
    d.text((40, 60), "TEL EXIT < > -- +", fill=(10, 10, 10), font=ImageFont.load_default(size=72))
    d.rectangle([60, 260, 300, 300], fill=(10, 10, 10))  # a bar: no head
    d.ellipse([380, 240, 560, 420], fill=(10, 10, 10))
    assert find_arrows(im) == []


def test_the_arrows_tool_is_a_tool_with_evidence():
    found = ArrowTool()(ImageRef.from_pil(_sign("left")))
    arrows = [f for f in found if f.kind == "arrow"]
    assert arrows and arrows[0].text == "left" and arrows[0].extra["points"] == "left"


def _ev(way: str, line_box=(170, 230, 420, 285), arrow_box=(50, 215, 150, 295)):
    return [
        Evidence("ocr:1", "ocr", "im", "line", "Eventdock", 0.98, line_box),
        Evidence("arrow:1", "arrows", "im", "arrow", way, 1.0, arrow_box, {"points": way}),
    ]


def test_which_way_the_arrow_points_is_answered_from_an_arrow_beside_the_text():
    q = "Does the arrow on the wall point to the left or to the right?"
    intent = classify(q)
    assert intent.name == "where" and [c.tool for c in plan(intent, [1], {"ocr", "arrows", "detect"})] == [
        "ocr",
        "arrows",
    ]
    out = compose_answer(q, intent, _ev("left"), "", sizes={"im": (640, 480)}, image_order=["im"])
    assert out.answer.startswith("The arrow points left") and "Eventdock" in out.answer
    # the same shape far from any text (a photo's branch, a cat's ear) answers nothing
    far = _ev("left", arrow_box=(500, 20, 600, 80))
    assert sightings.arrow_way(far) is None
    lost = compose_answer(q, intent, far, "", sizes={"im": (640, 480)}, image_order=["im"])
    assert lost.abstained and "no arrow shape" in lost.answer


def test_a_models_arrow_claim_is_checked_against_the_arrow():
    q = "Which way does the arrow point?"
    intent = classify(q)
    right = compose_answer(q, intent, _ev("left"), "It points left.", sizes={"im": (640, 480)},
                           image_order=["im"], sees_images=True)  # fmt: skip
    assert right.status == "verified" and "left" in right.answer
    wrong = compose_answer(q, intent, _ev("left"), "It points right.", sizes={"im": (640, 480)},
                           image_order=["im"], sees_images=True)  # fmt: skip
    assert (
        wrong.answer.startswith("The arrow points left")
        and "the arrows found point left" in wrong.overruled_because
    )


def test_a_models_arrow_claim_is_not_supported_by_a_shape_far_from_any_text():
    # the answers use only arrows beside a sign's text; the check of a model's claim uses the same ones
    q = "Which way does the arrow point?"
    intent = classify(q)
    far = _ev("left", arrow_box=(500, 20, 600, 80))
    out = compose_answer(q, intent, far, "It points left.", sizes={"im": (640, 480)}, image_order=["im"],
                         sees_images=True)  # fmt: skip
    assert out.status != "verified"
    assert not any(c.supported and "left" in c.text for c in out.claims)
