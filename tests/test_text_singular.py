"""The singular of object names: regular, -es, -ves and irregular plurals (policy and verifier use it)."""

import pytest

from assistant.text import singular


@pytest.mark.parametrize(
    ("plural", "expected"),
    [
        ("horses", "horse"),
        ("buses", "bus"),
        ("boxes", "box"),
        ("glasses", "glass"),
        ("knives", "knife"),
        ("people", "person"),
        ("mice", "mouse"),
        ("houses", "house"),
        ("benches", "bench"),
        ("cars", "car"),
        ("bicycles", "bicycle"),
        ("ponies", "pony"),
        ("shelves", "shelf"),
        ("children", "child"),
        ("red cars", "red car"),
        ("glass", "glass"),
        ("bus", "bus"),
        ("dog", "dog"),
    ],
)
def test_singular(plural, expected):
    assert singular(plural) == expected
