"""The tool policy: intents for question phrasings, which tools run, which images a question is about."""

import pytest

from assistant.policy import Intent, classify, follow_ups, plan, resolve_scope
from tools.evidence import Evidence

ALL = {"ocr", "detect", "zoom", "color", "metadata"}


@pytest.mark.parametrize(
    "question, intent, target",
    [
        ("What does the sign say?", "read", ""),
        ("Read the text in this picture", "read", ""),
        ("what's written on the label", "read", ""),
        ("Transcribe the menu.", "read", ""),
        ("What is the total on this receipt?", "total", ""),
        ("How much did I pay?", "total", ""),
        ("What's the amount due?", "total", ""),
        ("What is the price of the coffee?", "price", "coffee"),
        ("How much is the muffin?", "price", "muffin"),
        ("How much does a ticket to HarbourFront cost?", "price", "ticket"),
        ("What is the phone number?", "field", ""),
        ("Is there an email address?", "field", ""),
        ("How many cars are there?", "count", "car"),
        ("Count the circles", "count", "circle"),
        ("Where is the dog?", "where", "dog"),
        ("Is there a bus in the image?", "presence", "bus"),
        ("What colour is the sign?", "color", "sign"),
        ("what color are the triangles", "color", "triangle"),
        ("When was this photo taken?", "metadata", ""),
        ("What camera was used? Which camera took it", "metadata", ""),
        ("Describe the image.", "describe", ""),
    ],
)
def test_intents(question, intent, target):
    got = classify(question)
    assert got.name == intent, question
    if target:
        assert got.target == target


def test_field_names():
    assert classify("What is the phone number?").field == "phone"
    assert classify("Which website is shown?").field == "url"


def test_follow_up_inherits_intent():
    prev = classify("What does the sign say?")
    got = classify("and the first picture?", prev)
    assert got.name == "read" and got.inherited
    # a follow-up with its own intent does not inherit
    assert classify("How many cars?", prev).name == "count"
    # without a previous turn a short question is "other"
    assert classify("and the first picture?").name == "other"


@pytest.mark.parametrize(
    "intent, tools",
    [
        (Intent("read"), ["ocr"]),
        (Intent("total"), ["ocr"]),
        (Intent("field", field="phone"), ["ocr"]),
        (Intent("count", "car"), ["detect"]),
        (Intent("where", "dog"), ["detect"]),
        (Intent("presence", "bus"), ["detect"]),
        (Intent("color"), ["color"]),
        (Intent("color", "sign"), ["ocr"]),  # the letters' ink, measured once they are read
        (Intent("color", "car"), ["detect"]),  # the car's box, once found; never the whole image
        (Intent("color", "stripe at bottom"), ["color"]),  # the bottom of the image
        (Intent("color", "stripe"), ["detect"]),  # a detector may know it; otherwise abstain
        (Intent("metadata"), ["metadata"]),
        (Intent("describe"), ["detect", "ocr", "color"]),
    ],
)
def test_plan_picks_tools(intent, tools):
    calls = plan(intent, [1], ALL)
    assert [c.tool for c in calls] == tools
    assert all(c.image_index == 1 and c.reason for c in calls)


def test_plan_only_uses_available_tools_and_all_images():
    calls = plan(Intent("describe"), [1, 2], {"ocr"})
    assert [(c.tool, c.image_index) for c in calls] == [("ocr", 1), ("ocr", 2)]
    assert plan(Intent("count", "car"), [1], {"ocr"}) == []


def test_every_reading_question_reads_each_image_once_at_full_recall():
    # A "document" mode returned "TOTAL" without its price far right: no intent narrows what OCR reads.
    for name in ("read", "total", "price", "field", "describe"):
        calls = [c for c in plan(Intent(name), [1, 2], ALL) if c.tool == "ocr"]
        assert [(c.image_index, c.args) for c in calls] == [(1, {}), (2, {})]


@pytest.mark.parametrize(
    "question",
    [
        "What is the flight number on the boarding pass?",
        "Which theatre is listed on the sign?",
        "What name is printed on the wall?",
        "What is the name of the cashier?",
        "What date is printed on the invoice?",
        "What fare was paid for this ticket?",
        "What is the train number?",
    ],
)
def test_questions_about_printed_things_are_reading_questions(question):
    assert classify(question).name == "read"


def test_a_number_in_passing_is_no_reading_question():
    assert classify("Question number 3?").name == "other"


def test_zoom_follows_small_text_only():
    small = [
        Evidence(f"ocr:{i}", "ocr", "im", "word", "tiny", 0.9, (10 * i, 100, 10 * i + 8, 109))
        for i in range(1, 5)
    ]
    big = [
        Evidence(f"ocr:{i}", "ocr", "im", "word", "BIG", 0.9, (50 * i, 100, 50 * i + 40, 140))
        for i in range(1, 5)
    ]
    zoom = follow_ups(Intent("read"), 1, small, ALL, (640, 480))
    assert [c.tool for c in zoom] == ["zoom"]
    assert zoom[0].args["box"] == [10, 100, 48, 109]
    assert follow_ups(Intent("read"), 1, big, ALL, (640, 480)) == []
    assert follow_ups(Intent("count", "car"), 1, small, ALL, (640, 480)) == []


def test_colour_of_a_detected_object_uses_its_box():
    dets = [Evidence("det:1", "detect", "im", "detection", "car", 0.9, (10, 20, 110, 90))]
    calls = follow_ups(Intent("color", "car"), 1, dets, ALL, (640, 480))
    assert calls[0].tool == "color" and calls[0].args == {"region": [10, 20, 110, 90]}


@pytest.mark.parametrize(
    "question, n, current, previous, scope",
    [
        ("What does it say?", 1, [1], [], [1]),
        ("What does it say?", 2, [2], [1], [2]),  # the new image
        ("and the first picture?", 2, [], [2], [1]),
        ("What about image 2?", 3, [], [1], [2]),
        ("and the second one?", 2, [], [1], [2]),
        ("Compare both images", 2, [], [2], [1, 2]),
        ("What does each picture say?", 3, [], [3], [1, 2, 3]),
        ("What does it say?", 2, [], [2], [2]),  # no new image: the previous scope
        ("What does the previous picture say?", 2, [2], [2], [1]),
        ("What is in the third picture?", 2, [], [1], [1]),  # no third image: the previous scope
        ("Hello", 0, [], [], []),
    ],
)
def test_scope(question, n, current, previous, scope):
    assert resolve_scope(question, n, current, previous) == scope
