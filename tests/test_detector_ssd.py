"""The offline COCO detector (SSD-MobileNet-v2 through LiteRT), installed by scripts/setup.sh: the CLI lists
the bus and the people on ultralytics' bus.jpg, boxes are in original pixels, the `detector` record carries
the measured thresholds, tiles find what the whole-image pass misses and merge into one box per object,
and the offline default sends photos to the SSD and renders to the shapes model."""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

import pytest

from tools.detector_ssd import FETCH_HINT, LABELS_FILE, SSD_FILE, find_ssd, read_labels
from tools.images import ImageRef


def _asset(name: str) -> Path:
    import ultralytics

    return Path(ultralytics.__file__).parent / "assets" / name


@pytest.fixture(scope="module")
def ssd_path():
    path = find_ssd()
    assert path is not None, f"the COCO SSD is not installed: {FETCH_HINT}"
    return path


@pytest.fixture(scope="module")
def ssd(ssd_path):
    from tools.detector import DetectorTool

    return DetectorTool(weights="ssd")


def detections(found):
    return [f for f in found if f.kind == "detection"]


def test_tool_detect_on_bus_jpg_lists_the_bus_and_the_people(ssd_path, capsys, monkeypatch):
    from frontends import runtime
    from frontends.commands import tool as tool_cmd

    monkeypatch.setenv("YOLO_OFFLINE", "1")  # no hub: the default weights fall back to what is installed
    parser = argparse.ArgumentParser(prog="tool")
    tool_cmd.add_arguments(parser)
    rc = runtime.run_command(tool_cmd.run, parser.parse_args(["detect", str(_asset("bus.jpg")), "--json"]))
    out = capsys.readouterr()
    records = json.loads(out.out)
    labels = [r["text"] for r in records if r["kind"] == "detection"]
    assert rc == 0 and "bus" in labels and labels.count("person") >= 3, labels
    assert "COCO SSD" in out.err  # the note says what is used instead of yolo11n.pt
    record = records[-1]
    assert record["kind"] == "detector" and record["extra"]["backend"] == "ssd"


def test_boxes_are_in_original_pixels_and_a_region_maps_back(ssd):
    bus = ImageRef.from_path(_asset("bus.jpg"))
    w, h = bus.size
    found = detections(ssd(bus))
    assert all(0 <= f.box[0] < f.box[2] <= w and 0 <= f.box[1] < f.box[3] <= h for f in found)
    big = max((f for f in found if f.text == "bus"), key=lambda f: f.confidence)
    assert big.box[2] - big.box[0] > 0.8 * w  # the bus spans the picture: not 300x300 input pixels
    person = max((f for f in found if f.text == "person"), key=lambda f: f.confidence)
    x0, y0, x1, y1 = person.box
    region = (max(0, x0 - 60), max(0, y0 - 60), min(w, x1 + 60), min(h, y1 + 60))
    inside = detections(ssd(bus, region=region, classes=["person"]))
    assert inside and all(f.text == "person" for f in inside)
    best = max(inside, key=lambda f: f.confidence)
    assert region[0] <= best.box[0] and best.box[2] <= region[2] + 1  # back in full-image pixels
    assert abs((best.box[0] + best.box[2]) / 2 - (x0 + x1) / 2) < 60


def test_the_detector_record_carries_backend_thresholds_and_measurement(ssd):
    from tools.detector_claims import SSD_CLAIMS

    found = ssd(ImageRef.from_path(_asset("zidane.jpg")))
    record = found[-1]
    extra = record.extra
    assert record.kind == "detector" and record.box is None and extra["applies"] is True
    assert extra["backend"] == "ssd" and extra["domain"] == "photos" and len(extra["classes"]) == 80
    assert extra["thresholds"] == {
        "sure": SSD_CLAIMS.sure,
        "maybe": SSD_CLAIMS.maybe,
        "trace": SSD_CLAIMS.trace,
        "by_group": {"other": 0.6},  # less precise at 0.5 (19 of 28): a higher sure threshold
        # photos where the whole-image pass scored a person box 0.4 or more: 21 of 21 showed a person
        "presence": {"person": 0.4},
        "presence_score": "whole_score",
    }
    assert all(v[0] < SSD_CLAIMS.maybe for v in extra["faint"].values())  # boxes too faint to show
    assert extra["conf"] == SSD_CLAIMS.maybe  # the default cut is the measured "maybe"
    assert all(f.confidence >= SSD_CLAIMS.maybe for f in detections(found))
    m = extra["measured"]
    assert (
        m["images"] == 49
        and m["boxes"] == 139
        and set(m["groups"]) == {"person", "vehicles", "animals", "other"}
    )
    assert 0 < m["groups"]["person"]["sure"]["precision"] <= 1
    # absence is a fact for the groups found in >= 90% of the photos showing them (not "other": 19 of 24)
    assert set(extra["absence"]) == {"person", "animals", "vehicles"}
    assert extra["absence"]["person"]["photos"] == 22
    assert "dog" in extra["group_classes"]["animals"] and extra["max_boxes"] == 20


def test_tiles_find_a_bus_the_whole_image_pass_misses(ssd_path):
    from PIL import Image

    from tools.detector_ssd import SSDModel

    model = SSDModel(ssd_path)
    bus = Image.open(_asset("bus.jpg")).convert("RGB")
    bus = bus.resize((bus.width // 2, bus.height // 2))
    canvas = Image.new("RGB", (1600, 1200), (128, 128, 128))  # the bus photo a quarter of a larger one
    canvas.paste(bus, (1600 - bus.width - 100, 1200 - bus.height - 100))
    whole = model.predict(canvas, conf=0.5, tiles=False)
    tiled = model.predict(canvas, conf=0.5)
    assert "bus" not in {b.name for b in whole}  # squeezed to 300 x 300, the bus is not seen
    buses = [b for b in tiled if b.name == "bus"]
    assert len(buses) == 1  # seen whole by one tile, cut (and dropped) by the others
    x0, y0, x1, y1 = buses[0].box
    assert 1600 - bus.width - 100 - 20 <= x0 and x1 <= 1600 - 100 + 20 and y1 <= 1200 - 100 + 20
    people = [b for b in tiled if b.name == "person"]
    assert len(people) >= 2 and all(b.score >= 0.5 for b in people)


def test_tiles_overlap_cover_the_image_and_fragments_are_dropped():
    from tools.detector_ssd import _fragment, tile_boxes

    tiles = tile_boxes(1000, 500)
    assert tiles == [(0, 0, 600, 300), (0, 200, 600, 500), (400, 0, 1000, 300), (400, 200, 1000, 500)]
    # a box cut by the first tile's right edge (inside the image) is a fragment; one at the image's
    # own edge is not
    assert _fragment((500, 50, 599, 120), tiles[0], 1000, 500)
    assert not _fragment((0, 50, 100, 120), tiles[0], 1000, 500)
    assert not _fragment((900, 10, 1000, 100), tiles[2], 1000, 500)


def test_merge_keeps_one_box_per_object_and_class():
    from tools.detector_backends import Box
    from tools.detector_ssd import merge

    whole = Box((100, 100, 300, 400), "person", 0.6, 0)
    again = Box((105, 98, 302, 395), "person", 0.8, 0)  # the same person, seen by a tile
    part = Box((110, 110, 290, 250), "person", 0.4, 0)  # most of it inside the kept box
    other = Box((500, 100, 600, 300), "person", 0.5, 0)  # another person
    dog = Box((100, 100, 300, 400), "dog", 0.3, 17)  # another class in the same place
    kept = merge([whole, again, part, other, dog])
    assert kept == [again, other, dog]


def test_unknown_class_is_a_clear_error(ssd):
    from tools.errors import BadInputError

    with pytest.raises(BadInputError, match="no class"):
        ssd(ImageRef.from_path(_asset("bus.jpg")), classes=["circle"])


def test_the_labels_file_spells_the_project_class_names(ssd_path):
    from assistant.objects import COCO_CLASSES

    labels = read_labels(ssd_path.parent / LABELS_FILE)
    assert len(labels) == 80 and set(labels.values()) == set(COCO_CLASSES)
    assert labels[0] == "person" and labels[89] == "toothbrush"  # COCO's 90-id scheme less one, with gaps


def test_a_missing_or_corrupt_ssd_is_one_line_naming_the_command(tmp_path, monkeypatch, ssd_path):
    from tools.detector import DetectorTool
    from tools.detector_ssd import SSD_DIR, SSDModel
    from tools.errors import ModelLoadError

    monkeypatch.setenv("GROUNDED_VLM_HOME", str(tmp_path))
    with pytest.raises(ModelLoadError, match="scripts/setup.sh") as e:
        DetectorTool(weights="ssd").resolve()
    assert "\n" not in str(e.value)
    bad = tmp_path / "detectors" / SSD_DIR
    bad.mkdir(parents=True, exist_ok=True)
    (bad / SSD_FILE).write_bytes(b"not a model")
    shutil.copyfile(ssd_path.parent / LABELS_FILE, bad / LABELS_FILE)
    with pytest.raises(ModelLoadError, match="sha256"):
        SSDModel()


def test_missing_everything_offline_names_both_ways_to_a_detector(tmp_path, monkeypatch):
    from tools.detector import DetectorTool
    from tools.errors import ModelLoadError

    monkeypatch.setenv("GROUNDED_VLM_HOME", str(tmp_path))
    monkeypatch.setenv("YOLO_OFFLINE", "1")
    with pytest.raises(ModelLoadError, match="scripts/setup.sh") as e:
        DetectorTool().resolve()
    assert "detector prepare" in str(e.value) and "\n" not in str(e.value)


@pytest.mark.slow
def test_offline_default_sends_photos_to_the_ssd_and_renders_to_the_shapes_model(
    ssd_path, shapes_detector_weights, tmp_path, monkeypatch
):
    from synthetic.shapes import CLASSES, held_out
    from tools.detector import DetectorTool
    from tools.detector_ssd import SSD_DIR

    monkeypatch.setenv("GROUNDED_VLM_HOME", str(tmp_path))
    monkeypatch.setenv("YOLO_OFFLINE", "1")
    ssd_dir = tmp_path / "detectors" / SSD_DIR
    shutil.copytree(ssd_path.parent, ssd_dir, dirs_exist_ok=True)
    shapes = tmp_path / "detectors" / shapes_detector_weights.parent.name
    shapes.mkdir(parents=True)
    shutil.copyfile(shapes_detector_weights, shapes / "best.pt")
    tool = DetectorTool()
    assert [b.kind for b in tool.backends()] == ["ssd", "yolo"]
    assert "COCO SSD" in tool.note and "shapes detector" in tool.note and "offline" in tool.note
    photo = tool(ImageRef.from_path(_asset("bus.jpg")))
    assert photo[-1].extra["backend"] == "ssd" and "bus" in {f.text for f in detections(photo)}
    im, truth = held_out(1)[0]
    render = tool(ImageRef.from_pil(im), conf=0.4)
    assert render[-1].extra["backend"] == "yolo" and render[-1].extra["classes"] == list(CLASSES)
    assert render[-1].extra["applies"] is True and render[-1].extra["measured"] is None
    assert tool.version.count("+") == 1  # the cache key names both models
    # a flat-looking photo (a skier on snow measured as a render) is still a photo when the COCO detector
    # finds a sure object in it; a render of shapes has none of its classes
    import tools.detector as detector

    monkeypatch.setattr(detector, "render_stats", lambda im: {"render_score": 0.9, "render": True})
    found = DetectorTool()(ImageRef.from_path(_asset("bus.jpg")))
    assert found[-1].extra["backend"] == "ssd" and "bus" in {f.text for f in detections(found)}
    assert DetectorTool()(ImageRef.from_pil(im), conf=0.4)[-1].extra["backend"] == "yolo"


def test_bench_measures_the_photos_that_ship_in_packages(ssd_path):
    import bench.detector_eval as ev

    labels = [json.loads(line) for line in ev.LABELS.read_text().splitlines()]
    assert len(labels) == 49 and sum(len(r["objects"]) for r in labels) == 139
    res = ev.evaluate(
        labels, {k: v for k, v in ev.package_sets().items() if k in ("ultralytics", "matplotlib")}
    )
    assert res["images"] == 3 and res["objects"] == 11
    at = res["thresholds"]["0.5"]["person"]
    assert at["tp"] == 5 and at["fp"] == 0  # bus.jpg: 2 of 4 people at 0.5; zidane 2 of 2; Grace Hopper 1
    # photo level: the three photos have a person box at 0.4 and all three show a person
    assert res["image_precision"]["0.4"]["person"] == {"precision": 1.0, "claims": 3}


def test_presence_needs_a_photo_level_precision_high_with_confidence():
    from tools.detector_claims import presence_threshold, wilson_lower

    assert 0.83 < wilson_lower(20, 20) < 0.85 and wilson_lower(0, 0) == 0.0
    # 20 of 20 photos at 0.4 qualifies; 11 of 12 at 0.5 does not (too few to be sure of 0.8)
    assert presence_threshold({"0.3": (0.95, 21), "0.4": (1.0, 20), "0.5": (1.0, 19)}) == (0.4, 1.0, 20)
    assert presence_threshold({"0.5": (0.917, 12), "0.6": (1.0, 5)}) is None
