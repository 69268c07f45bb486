"""`launch.py tool NAME IMG`: evidence records as JSON or a table; bad input is one line and exit code 2."""

from __future__ import annotations

import argparse
import json

import pytest
from PIL import Image, ImageDraw

from frontends import runtime
from frontends.commands import tool as tool_cmd


def _run(argv, capsys):
    parser = argparse.ArgumentParser(prog="tool")
    tool_cmd.add_arguments(parser)
    rc = runtime.run_command(tool_cmd.run, parser.parse_args(argv))
    out = capsys.readouterr()
    return rc, out.out, out.err


@pytest.fixture
def picture(tmp_path):
    im = Image.new("RGB", (240, 120), (255, 255, 255))
    ImageDraw.Draw(im).rectangle([120, 0, 239, 119], fill=(20, 40, 200))
    path = tmp_path / "half.png"
    im.save(path)
    return path


def test_color_json_records_have_ids_text_confidence_and_pixel_boxes(picture, capsys):
    rc, out, _ = _run(["color", str(picture), "--json"], capsys)
    records = json.loads(out)
    assert rc == 0
    assert [r["id"] for r in records] == ["color:1", "color:2"]  # half and half: either colour may come first
    assert {r["text"] for r in records} == {"white", "blue"}
    for r in records:
        assert set(r) >= {"id", "text", "confidence", "box"} and r["box"] == [0, 0, 240, 120]


def test_tool_flags_come_from_the_input_schema(picture, capsys):
    rc, out, _ = _run(
        ["color", str(picture), "--json", "--region", "130,10,230,110", "--colors", "1"], capsys
    )
    assert rc == 0 and [(r["text"], r["box"]) for r in json.loads(out)] == [("blue", [130, 10, 230, 110])]
    rc, out, _ = _run(
        ["zoom", str(picture), "--box", "10,10,50,50", "--no-ocr", "--margin", "0", "--json"], capsys
    )
    assert rc == 0 and json.loads(out)[0]["id"] == "zoom:1" and json.loads(out)[0]["box"] == [10, 10, 50, 50]


def test_table_output(picture, capsys):
    rc, out, _ = _run(["metadata", str(picture)], capsys)
    assert rc == 0
    lines = out.splitlines()
    assert lines[0].split() == ["id", "kind", "text", "conf", "box"]
    assert lines[1].startswith("meta:1") and "size: 240x120 pixels" in lines[1]
    assert lines[-1].startswith("3 record(s)")


def test_bad_image_is_one_line_and_exit_2(tmp_path, capsys):
    bad = tmp_path / "notes.png"
    bad.write_text("not a picture")
    rc, out, err = _run(["color", str(bad), "--json"], capsys)
    assert rc == 2 and out == "" and err.count("\n") == 1 and "not an image" in err
    rc, _, err = _run(["metadata", str(tmp_path / "missing.jpg")], capsys)
    assert rc == 2 and "image not found" in err


def test_bad_argument_is_one_line_and_exit_2(picture, capsys):
    rc, _, err = _run(["zoom", str(picture), "--box", "50,50,10,10"], capsys)
    assert rc == 2 and "x1 > x0" in err and err.count("\n") == 1


@pytest.mark.slow
def test_detect_json_has_labels(shapes_detector_weights, tmp_path, capsys):
    from synthetic.shapes import held_out

    im, truth = held_out(1)[0]
    path = tmp_path / "shapes.png"
    im.save(path)
    rc, out, _ = _run(["detect", str(path), "--weights", str(shapes_detector_weights), "--json"], capsys)
    records = [r for r in json.loads(out) if r["kind"] == "detection"]  # the last record: the vocabulary
    assert (
        rc == 0 and records and all(r["id"].startswith("det:") and r["label"] == r["text"] for r in records)
    )
    assert {r["label"] for r in records} <= {"circle", "square", "triangle"}
