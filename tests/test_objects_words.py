"""Question words to detector classes, in one place (assistant/objects.py): COCO names, plurals, synonyms,
broader words, and ImageNet labels nested under their COCO class."""

from __future__ import annotations

import pytest

from assistant.objects import COCO_CLASSES, classes_for, is_object_word, knows, unknown_reason
from tools.evidence import Evidence


@pytest.mark.parametrize(
    "word, classes",
    [
        ("people", {"person"}),
        ("anyone", {"person"}),
        ("hikers", {"person"}),
        ("a man", {"person"}),
        ("two women", {"person"}),
        ("skiers", {"person"}),
        ("vehicles", {"car", "bus", "truck", "motorcycle"}),
        ("taxi", {"car"}),
        ("cabs", {"car"}),
        ("pickup", {"truck", "car"}),  # a truck to COCO annotators, often a car to its detectors
        ("pickup trucks", {"truck", "car"}),
        ("motorbikes", {"motorcycle"}),
        ("planes", {"airplane"}),
        ("sofa", {"couch"}),
        ("television", {"tv"}),
        ("phones", {"cell phone"}),
        ("fridge", {"refrigerator"}),
        ("microwave oven", {"microwave"}),
        ("horses", {"horse"}),
        ("buses", {"bus"}),
        ("knives", {"knife"}),
        ("geese", {"bird"}),
        ("puppies", {"dog"}),
        ("animals", {"bird", "cat", "dog", "horse", "sheep", "cow", "elephant", "bear", "zebra", "giraffe"}),
        ("golden retrievers", {"dog"}),
        ("German shepherd", {"dog"}),
        ("tabby", {"cat"}),
        ("bald eagle", {"bird"}),
        ("minibus", {"bus"}),
        ("hot dogs", {"hot dog"}),
        ("stop sign", {"stop sign"}),
        ("teddy bears", {"teddy bear"}),
    ],
)
def test_words_map_to_detector_classes(word, classes):
    assert classes_for(word) == classes
    assert classes <= set(COCO_CLASSES)
    assert is_object_word(word)


def test_words_of_no_coco_class_stay_themselves():
    assert classes_for("shuttle model") == {"shuttle model"}
    assert classes_for("circles") == {"circle"}  # the shapes detector's class
    assert classes_for("pirate") == {"pirate"}  # ImageNet's "pirate" is a ship; a person means a person
    assert not is_object_word("sign") and not is_object_word("couple")
    assert is_object_word("hair")  # a thing no detector knows: a claim about it still needs evidence


def test_a_class_no_loaded_model_knows_abstains_and_names_the_class():
    shapes = Evidence(
        "det:9", "detect", "img", "detector", "the detector knows circle, square, triangle", 1.0, None,
        {"classes": ["circle", "square", "triangle"], "domain": "synthetic shapes", "applies": True},
    )  # fmt: skip
    coco = Evidence(
        "det:9", "detect", "img", "detector", "the detector knows person, ...", 1.0, None,
        {"classes": list(COCO_CLASSES), "domain": "photos", "applies": True},
    )  # fmt: skip
    assert not knows([shapes], "hikers") and knows([coco], "hikers") and knows([coco], "golden retriever")
    assert not knows([coco], "shuttle model")
    why = unknown_reason("hikers", [shapes])
    assert why.startswith("no detector for 'person' is loaded") and "scripts/setup.sh" in why
    assert "no COCO class covers it" in unknown_reason("shuttle model", [coco])
