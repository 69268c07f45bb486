"""Object answers said as surely as the detector was measured to be (issue 18 point 5): sure boxes are
counted, less certain ones mentioned, an absence is a fact only with measured recall, and a place is
unsure where several boxes of the class sit on different sides."""

from assistant import sightings
from assistant.answer import compose_answer
from assistant.policy import classify
from evaluation.metrics import shown_as_fact
from tools.evidence import Evidence

MEASURED = {
    "classes": ["person", "dog", "car"], "domain": "photos (COCO)", "applies": True,
    "thresholds": {"sure": 0.5, "maybe": 0.3}, "group_classes": {"person": ["person"], "animals": ["dog"]},
    "measured": {"groups": {"animals": {"sure": {"precision": 0.93, "recall": 0.68},
                                        "recall_by_size": {"large": {"recall": 0.92, "objects": 12},
                                                           "medium": {"recall": 0.29, "objects": 7}}}}},
}  # fmt: skip
RECORD = Evidence("det:0", "detect", "im", "detector", "coco ssd", 1.0, None, MEASURED)


def det(i, cls, score, box):
    return Evidence(f"det:{i}", "detect", "im", "detection", cls, score, box)


def test_sure_boxes_are_counted_and_less_certain_ones_mentioned():
    ev = [RECORD, det(1, "person", 0.9, (10, 10, 100, 300)), det(2, "person", 0.7, (200, 10, 300, 300)),
          det(3, "person", 0.6, (400, 10, 500, 300)), det(4, "person", 0.34, (550, 10, 600, 300))]  # fmt: skip
    ex = sightings.count_objects(ev, "people")
    assert ex.key == "3" and ex.text.startswith("I count 3 persons, maybe 4") and "det:4" in ex.text
    assert "persons" in sightings.count_objects(ev, "person").text
    only_maybe = sightings.count_objects([RECORD, det(4, "dog", 0.34, (0, 0, 50, 50))], "dog")
    assert not only_maybe.text and "there may be 1 dog" in only_maybe.doubt


def test_absence_needs_measured_recall_with_confidence():
    ex = sightings.count_objects([RECORD], "dog")  # 11 of 12 large animals found: not sure enough of 0.9
    assert not ex.text and "the detector found no dog" in ex.doubt
    out = compose_answer("Is there a dog?", classify("Is there a dog?"), [RECORD], "", image_order=["im"])
    assert (
        out.status == "unverified" and not shown_as_fact(out.answer) and "Uncertain detection" in out.answer
    )
    assert sightings.wilson_low(1.0, 200) > 0.9 and sightings.wilson_low(1.0, 17) < 0.9


def test_a_classifier_label_speaks_against_an_absence():
    label = Evidence("cls:1", "classify", "im", "label", "golden retriever", 0.6, None, {"coco": "dog"})
    ex = sightings.count_objects([RECORD, label], "dog")
    assert "golden retriever" in ex.doubt_why and "cls:1" in ex.doubt_ids


def test_where_is_unsure_when_several_boxes_sit_on_different_sides():
    sizes = {"im": (640, 480)}
    one = sightings.locate([RECORD, det(1, "person", 0.9, (500, 100, 620, 400))], "catcher", sizes)
    assert one.key == "right" and one.text == "The person is at the right of the image."
    two = [RECORD, det(1, "person", 0.9, (10, 100, 120, 400)), det(2, "person", 0.8, (500, 100, 620, 400))]
    ex = sightings.locate(two, "catcher", sizes)
    assert not ex.text and "on different sides" in ex.doubt_why


def test_what_kind_of_thing_is_answered_by_the_classifier_with_its_probability():
    labels = [
        Evidence("cls:1", "classify", "im", "label", "golden retriever", 0.71, None, {"coco": "dog"}),
        Evidence("cls:2", "classify", "im", "label", "tennis ball", 0.12, None, {"coco": "sports ball"}),
    ]
    q = "What kind of dog is this?"
    assert classify(q).name == "identify"
    out = compose_answer(q, classify(q), labels, "", image_order=["im"])
    assert (
        out.answer.startswith("It looks like a golden retriever")
        and "0.71" in out.answer
        and "[cls:1]" in out.answer
    )
    labels[0].confidence = 0.3  # the classifier is not sure: an uncertain answer, never a fact
    out = compose_answer(q, classify(q), labels, "", image_order=["im"])
    assert out.status == "unverified" and not shown_as_fact(out.answer) and "golden retriever" in out.answer
    seeing = compose_answer(
        q, classify(q), labels, "It is a golden retriever.", image_order=["im"], sees_images=True
    )
    assert seeing.composition == "model" and seeing.status == "verified"
