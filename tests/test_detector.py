"""The detector finds real objects: the project's shapes detector on held-out generated images."""

from __future__ import annotations

import pytest

from synthetic.shapes import CLASSES, held_out
from tools.evidence import iou
from tools.images import ImageRef

# Tests marked slow use the shapes detector, trained the first time (minutes), then cached on disk.


def detections(found):
    return [f for f in found if f.kind == "detection"]


def _match(truth, found):
    """Ground-truth shapes hit by a detection of the right class with IoU >= 0.5 (each detection used once)."""
    hits, used = 0, set()
    for s in truth:
        best = max(
            ((iou(s.box, f.box), i) for i, f in enumerate(found) if i not in used and f.text == s.name),
            default=(0.0, None),
        )
        if best[0] >= 0.5:
            hits += 1
            used.add(best[1])
    return hits


@pytest.mark.slow
def test_detects_held_out_shapes_with_the_right_class(shapes_detector):
    samples = held_out(30)
    truth_n = hit_n = found_n = 0
    for im, truth in samples:
        found = detections(shapes_detector(ImageRef.from_pil(im), conf=0.4))
        assert all(f.text in CLASSES and 0 < f.confidence <= 1 for f in found)
        truth_n += len(truth)
        found_n += len(found)
        hit_n += _match(truth, found)
    recall, precision = hit_n / truth_n, hit_n / max(found_n, 1)
    assert recall >= 0.8, f"recall {hit_n}/{truth_n} = {recall:.2f}"
    assert precision >= 0.8, f"precision {hit_n}/{found_n} = {precision:.2f}"


@pytest.mark.slow
def test_class_filter_and_region_keep_boxes_in_original_pixels(shapes_detector):
    # Take a held-out image with two or more classes and a shape the unfiltered detector finds: the
    # test is about filtering and regions, not about which shapes a freshly trained detector misses
    # (recall is asserted above; training is not bit-identical across machines).
    def found_shape(im, truth):
        found = detections(shapes_detector(ImageRef.from_pil(im), conf=0.4))
        return next(
            (s for s in truth if any(f.text == s.name and iou(f.box, s.box) >= 0.5 for f in found)), None
        )

    im, truth, shape = next(
        (im, t, hit)
        for im, t in held_out(40)
        if len({s.name for s in t}) >= 2 and (hit := found_shape(im, t)) is not None
    )
    ref = ImageRef.from_pil(im)
    wanted = shape.name
    everything = detections(shapes_detector(ref, conf=0.4))
    only = detections(shapes_detector(ref, classes=[wanted], conf=0.4))
    assert only and {f.text for f in only} == {wanted}
    assert len(only) == sum(f.text == wanted for f in everything)
    assert len(only) < len(everything) or len({f.text for f in everything}) == 1
    # Detecting inside a region around one shape returns that shape in full-image coordinates.
    x0, y0, x1, y1 = shape.box
    region = (max(0, x0 - 40), max(0, y0 - 40), min(im.width, x1 + 40), min(im.height, y1 + 40))
    inside = detections(shapes_detector(ref, region=region, conf=0.25))
    assert any(f.text == wanted and iou(f.box, shape.box) >= 0.5 for f in inside)


@pytest.mark.slow
def test_unknown_class_is_a_clear_error(shapes_detector):
    from tools.errors import BadInputError

    im, _ = held_out(1)[0]
    with pytest.raises(BadInputError, match="no class"):
        shapes_detector(ImageRef.from_pil(im), classes=["giraffe"])


def test_missing_weights_offline_is_one_clear_line(tmp_path, monkeypatch):
    from tools.detector import DetectorTool
    from tools.errors import ModelLoadError

    monkeypatch.setenv("GROUNDED_VLM_HOME", str(tmp_path))  # an empty cache: no weights, no shapes detector
    monkeypatch.setenv("YOLO_OFFLINE", "1")
    with pytest.raises(ModelLoadError, match="detector prepare") as e:
        DetectorTool().resolve()
    assert "\n" not in str(e.value)
    with pytest.raises(ModelLoadError, match="not found"):
        DetectorTool(weights=tmp_path / "nope" / "w.pt").resolve()


@pytest.mark.slow
def test_offline_default_falls_back_to_the_shapes_detector_and_says_so(
    shapes_detector_weights, tmp_path, monkeypatch
):
    import shutil

    from tools.detector import DetectorTool

    monkeypatch.setenv("GROUNDED_VLM_HOME", str(tmp_path))
    monkeypatch.setenv("YOLO_OFFLINE", "1")
    dst = tmp_path / "detectors" / shapes_detector_weights.parent.name
    dst.mkdir(parents=True)
    shutil.copyfile(shapes_detector_weights, dst / "best.pt")
    tool = DetectorTool()
    path, _ = tool.resolve()
    assert path == str(dst / "best.pt")
    assert "shapes detector" in tool.note and "offline" in tool.note


def test_a_missing_detector_is_an_error_observation_not_a_crash(tmp_path, monkeypatch):
    from PIL import Image

    from tools.registry import default_registry
    from tools.runner import ToolRunner

    monkeypatch.setenv("GROUNDED_VLM_HOME", str(tmp_path))
    monkeypatch.setenv("YOLO_OFFLINE", "1")
    runner = ToolRunner(default_registry(enabled=["detect"]))
    res = runner.run_one("detect", ImageRef.from_pil(Image.new("RGB", (64, 64))))
    assert not res.ok and "detector weights unavailable" in res.error


def test_ultralytics_environment_is_offline_safe(tmp_path, monkeypatch):
    import json
    import os

    import torch

    from tools.yolo_env import import_ultralytics

    ul = import_ultralytics()
    cfg = __import__("pathlib").Path(os.environ["YOLO_CONFIG_DIR"]) / "Ultralytics"
    assert (cfg / "Arial.ttf").stat().st_size > 100_000 and (cfg / "Arial.Unicode.ttf").exists()
    assert json.loads((cfg / "settings.json").read_text())["sync"] is False
    assert os.environ["YOLO_AUTOINSTALL"] == "0"
    assert os.cpu_count() == ul.utils.torch_utils.NUM_THREADS
    assert torch.get_num_threads() == os.cpu_count()
    # ultralytics' global PIL.Image.open patch is undone: a non-image stays a clear "not an image".
    from tools.errors import BadInputError

    with pytest.raises(BadInputError, match="not an image"):
        ImageRef(b"this is text, not a picture").image  # noqa: B018


@pytest.mark.slow
def test_detector_train_command_trains_on_yolo_data(tmp_path):
    """`launch.py detector train DATA.yaml` on a tiny generated data set writes usable weights."""
    import argparse

    from frontends import runtime
    from frontends.commands import detector as cmd
    from synthetic.shapes import ShapesConfig, write_dataset
    from tools.detector import DetectorTool

    data = write_dataset(tmp_path / "data", ShapesConfig(train_images=8, val_images=4, seed=7))
    parser = argparse.ArgumentParser()
    cmd.add_arguments(parser)
    args = parser.parse_args(
        ["train", str(data), "--epochs", "1", "--batch", "4", "--out", str(tmp_path / "out")]
    )
    assert runtime.run_command(cmd.run, args) == 0
    weights = tmp_path / "out" / "best.pt"
    tool = DetectorTool(weights=weights)
    im, _ = held_out(1)[0]
    assert isinstance(tool(ImageRef.from_pil(im)), list)  # loads and predicts (one epoch finds little)
    assert tool.class_names == list(CLASSES)


@pytest.mark.hub
def test_coco_default_weights_find_the_bus_and_people():
    """The COCO-pretrained default on ultralytics' bus.jpg, where `detector` has cached yolo11n.pt."""
    from pathlib import Path

    import ultralytics

    from tools.detector import DEFAULT_WEIGHTS, DetectorTool
    from tools.paths import cache_dir

    if not (cache_dir("detectors") / DEFAULT_WEIGHTS).is_file():
        pytest.skip(
            f"needs the COCO weights {DEFAULT_WEIGHTS}, which ultralytics downloads on first use where the "
            "internet is reachable; tests never download (the offline detector is tested above)"
        )
    tool = DetectorTool()
    bus = ImageRef.from_path(Path(ultralytics.__file__).parent / "assets" / "bus.jpg")
    found = detections(tool(bus, conf=0.4))
    assert tool.note == "", tool.note  # the real weights, not the offline fallback
    labels = [f.text for f in found]
    assert "bus" in labels and labels.count("person") >= 3
    w, h = bus.size
    assert all(0 <= f.box[0] < f.box[2] <= w and 0 <= f.box[1] < f.box[3] <= h for f in found)


def _assets(name):
    from pathlib import Path

    import ultralytics

    return Path(ultralytics.__file__).parent / "assets" / name


def test_render_statistic_tells_shape_renders_from_photos():
    from PIL import Image

    from tools.render_stats import FLAT_FILL_MIN, RENDER_SCORE_MIN, flat_fill, render_score

    renders = held_out(30)
    assert min(render_score(im) for im, _ in renders) >= RENDER_SCORE_MIN
    assert min(flat_fill(im, s.box) for im, t in renders for s in t) >= FLAT_FILL_MIN
    for name in ("bus.jpg", "zidane.jpg"):
        photo = Image.open(_assets(name)).convert("RGB")
        assert render_score(photo) < RENDER_SCORE_MIN, name
        w, h = photo.size
        boxes = [
            (x, y, x + w / 4, y + h / 4)
            for x in range(0, w * 3 // 4, w // 8)
            for y in range(0, h * 3 // 4, h // 8)
        ]
        assert sum(flat_fill(photo, b) >= FLAT_FILL_MIN for b in boxes) == 0, name


@pytest.mark.slow
def test_shapes_detector_states_its_vocabulary_and_stays_out_of_photos(shapes_detector):
    assert shapes_detector.classes == list(CLASSES) and shapes_detector.domain == "synthetic shapes"
    im, _ = held_out(1)[0]
    record = shapes_detector(ImageRef.from_pil(im))[-1]
    assert record.kind == "detector" and record.box is None
    assert record.extra["classes"] == list(CLASSES) and record.extra["applies"] is True
    for name in ("bus.jpg", "zidane.jpg"):
        found = shapes_detector(ImageRef.from_path(_assets(name)), conf=0.1)
        assert detections(found) == [], name  # no squares on a bus
        assert found[-1].kind == "detector" and found[-1].extra["applies"] is False
        assert "photo" in found[-1].text


def test_a_shapes_render_on_a_gradient_background_is_a_render_and_photos_stay_photos():
    # A render whose background is a gradient repeats no exact colour over the image; with one small
    # shape `render_score` alone calls it a photo. Its rows are each one colour: `row_score` sees it.
    from PIL import Image

    from evaluation.sets.synth_shapes import CONFIG
    from synthetic.shapes import draw_sample
    from tools.render_stats import RENDER_SCORE_MIN, ROW_SCORE_MIN, render_score, row_score

    renders = [draw_sample(("eval", k), CONFIG)[0] for k in range(12)]
    assert any(render_score(im) < RENDER_SCORE_MIN for im in renders)  # the case the row statistic is for
    assert all(render_score(im) >= RENDER_SCORE_MIN or row_score(im) >= ROW_SCORE_MIN for im in renders)
    for name in ("bus.jpg", "zidane.jpg"):
        photo = Image.open(_assets(name)).convert("RGB")
        assert row_score(photo) < ROW_SCORE_MIN and render_score(photo) < RENDER_SCORE_MIN, name
