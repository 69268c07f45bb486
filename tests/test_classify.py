"""The classify tool: EfficientNet-Lite0 ImageNet labels from packages (no download), image-level only, each
label with the COCO class it nests under; the nesting table is checked against torchvision's names."""

from __future__ import annotations

from pathlib import Path

import pytest

from tools.images import ImageRef


def _asset(name: str) -> Path:
    import ultralytics

    return Path(ultralytics.__file__).parent / "assets" / name


@pytest.fixture(scope="module")
def classify():
    from tools.classify import ClassifyTool

    return ClassifyTool()


def test_bus_jpg_is_a_minibus_nested_under_bus(classify):
    labels = classify(ImageRef.from_path(_asset("bus.jpg")))
    assert [f.kind for f in labels] == ["label"] * 5 and all(f.box is None for f in labels)
    top = labels[0]
    assert top.text == "minibus" and top.confidence > 0.5 and top.extra["coco"] == "bus"
    assert [f.extra["rank"] for f in labels] == [1, 2, 3, 4, 5]
    scores = [f.confidence for f in labels]
    assert scores == sorted(scores, reverse=True) and sum(scores) <= 1.0001
    assert all(f.extra["coco"] in ("bus", "car", "train", "truck") for f in labels if "coco" in f.extra)


def test_top_is_a_schema_input(classify):
    from tools.errors import BadInputError

    assert len(classify(ImageRef.from_path(_asset("zidane.jpg")), top=2)) == 2
    with pytest.raises(BadInputError):
        classify(ImageRef.from_path(_asset("zidane.jpg")), top=0)


def test_nesting_table_names_real_imagenet_labels():
    from tools.classify import categories
    from tools.imagenet_coco import NAMES, nesting

    names = categories()
    assert len(names) == 1000
    for coco, labels in NAMES.items():
        assert set(labels) <= set(names), coco
    table = nesting(names)
    by_coco = {}
    for i, coco in table.items():
        by_coco.setdefault(coco, []).append(names[i])
    assert (
        len(by_coco["dog"]) == 118
        and "golden retriever" in by_coco["dog"]
        and "timber wolf" not in by_coco["dog"]
    )
    assert set(by_coco["cat"]) == {"tabby", "tiger cat", "Persian cat", "Siamese cat", "Egyptian cat"}
    assert "bald eagle" in by_coco["bird"] and "kite" in by_coco["bird"]  # ImageNet's kite is the bird
    assert names.index("espresso") not in table and names.index("seashore") not in table


def test_registered_explicitly_and_loaded_lazily():
    from tools import classify as mod
    from tools.registry import BUILTIN_TOOLS, default_registry

    assert BUILTIN_TOOLS["classify"] == ("tools.classify", "ClassifyTool")
    tool = default_registry(enabled=["classify"]).get("classify")
    assert tool._model is None and tool.evidence_prefix == "cls"
    ok, where = mod.status()
    assert ok and where.endswith(".pth")
