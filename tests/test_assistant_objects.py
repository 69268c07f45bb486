"""Object questions through the loop with the project's own detector (trained once on synthetic shapes,
cached): counts, where-questions and colours answered from detector boxes and the colour tool, with
det ids cited, and a made-up count from the model flagged."""

import pytest

from assistant.session import Assistant, AssistantConfig
from synthetic.shapes import held_out
from tests.scripted_engine import ScriptedEngine
from tools.base import ToolRegistry
from tools.color import ColorTool
from tools.runner import ToolRunner


@pytest.fixture(scope="module")
def runner(shapes_detector):
    reg = ToolRegistry()
    reg.register(shapes_detector)
    reg.register(ColorTool())
    return ToolRunner(reg)


def first_with(shape_count: int):
    for image, shapes in held_out(40):
        if len(shapes) == shape_count:
            return image.resize((384, 384)), shapes
    raise AssertionError("no held-out image with that many shapes")


def test_count_is_the_number_of_detections_and_cites_them(runner, tmp_path):
    image, shapes = first_with(3)
    engine = ScriptedEngine(["There are 7 shapes."])
    conv = Assistant(engine, runner, AssistantConfig(trace_dir=str(tmp_path))).conversation()
    name = shapes[0].name
    r = conv.ask(f"How many {name}s are there?", [image])
    dets = [e for e in r.evidence if e["kind"] == "detection" and e["text"] == name]
    assert r.intent == "count" and [c.tool for c in r.tool_calls] == ["detect"]
    if dets:
        assert f"I count {len(dets)} " in r.answer and set(r.citations) <= {e["id"] for e in dets}
        assert len(dets) == sum(s.name == name for s in shapes)  # the detector is right on held-out data
    else:
        assert r.abstained
    assert any(not c.supported and "7" in c.text for c in r.claims)  # the model's made-up count is flagged


def test_where_and_colour_of_a_detected_shape(runner, tmp_path):
    image, shapes = first_with(1)
    name = shapes[0].name
    conv = Assistant(ScriptedEngine(), runner, AssistantConfig(trace_dir=str(tmp_path))).conversation()
    where = conv.ask(f"Where is the {name}?", [image])
    assert where.citations and where.citations[0].startswith("det:")
    x0, y0, x1, y1 = shapes[0].box
    cx, cy = (x0 + x1) / 2 / 128, (y0 + y1) / 2 / 128
    if cx < 0.4:
        assert "left" in where.answer
    elif cx > 0.6:
        assert "right" in where.answer
    if cy < 0.4:
        assert "top" in where.answer
    elif cy > 0.6:
        assert "bottom" in where.answer
    colour = conv.ask(f"What colour is the {name}?")
    region_calls = [c for c in colour.tool_calls if c.tool == "color" and c.args.get("region")]
    assert region_calls, "the colour tool ran on the detected box"
    assert colour.answer.startswith(f"The {name} is mostly")


def test_the_abstention_names_the_class_a_detector_would_need():
    from assistant.objects import unknown_reason

    assert unknown_reason("anyone", []).startswith("no detector for 'person' is loaded")
    assert unknown_reason("horses", []).startswith("no detector for 'horse' is loaded")
    assert "no COCO class covers it" in unknown_reason("shuttle model", [])
