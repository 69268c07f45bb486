"""Drift monitoring (issue 20): the statistics, the reference window and file, alarms naming what moved,
and the features of images measured the way `serve` measures them. No model: these are the parts
under the gauges."""

from __future__ import annotations

import json
import random
import re

import pytest
from PIL import Image, ImageEnhance, ImageFilter

from assistant.drift import DriftConfig, DriftMonitor, ks_statistic, psi_numeric
from assistant.drift_features import hashed, image_features, ocr_features, script
from tools.errors import BadInputError


def _turn(rng: random.Random, brightness: float, words: list[str]) -> list[tuple[str, object]]:
    return [
        ("image.brightness", rng.gauss(brightness, 0.05)),
        ("ocr.script", rng.choice(["latin", "latin", "latin", "digits"])),
        ("text.vocabulary", hashed(words)),
        ("outcome.abstained", "answered"),
    ]


def test_psi_and_ks_tell_a_shift_from_sampling_noise():
    rng = random.Random(0)
    ref = [rng.gauss(0.5, 0.1) for _ in range(200)]
    same = [rng.gauss(0.5, 0.1) for _ in range(100)]
    dark = [rng.gauss(0.25, 0.1) for _ in range(100)]
    assert psi_numeric(ref, same, 5) < 0.1 < 1.0 < psi_numeric(ref, dark, 5)
    assert ks_statistic(ref, same) < 0.2 < 0.7 < ks_statistic(ref, dark)
    assert psi_numeric([1.0] * 50, [1.0] * 20, 5) < 0.01  # a constant feature: one bin, no drift


def test_monitor_builds_its_reference_then_alarms_on_the_feature_that_moved(tmp_path):
    rng = random.Random(1)
    path = tmp_path / "ref.json"
    alarms = []
    cfg = DriftConfig(reference_turns=60, window=30, min_reference=20, reference=str(path))
    mon = DriftMonitor(cfg, on_alarm=lambda f, psi, turn: alarms.append((f, turn)))
    question = ["what", "does", "the", "sign", "say"]
    for _ in range(60):
        mon.add(_turn(rng, 0.5, question))
    assert mon.frozen and path.is_file(), "the reference is complete and saved after reference_turns turns"
    assert json.loads(path.read_text())["features"]["image.brightness"]
    for _ in range(40):
        mon.add(_turn(rng, 0.5, question))
    assert not mon.health()["moved"], f"no alarm on unshifted turns: {mon.health()['features']}"
    for _ in range(30):
        mon.add(_turn(rng, 0.2, ["how", "much", "is", "the", "vat", "total"]))
    health = mon.health()
    moved = {m.split(":")[0] for m in health["moved"]}
    assert moved == {"image.brightness", "text.vocabulary"}, health["moved"]
    assert health["modalities_moved"] == ["image", "text"]
    assert re.search(r"image.brightness: mean 0\.4\d* -> 0\.2\d* \(PSI \d", " ".join(health["moved"]))
    assert {f for f, _ in alarms} == moved and all(100 < turn <= 130 for _, turn in alarms)
    # A restart reads the saved reference: it compares at once, with no new reference phase.
    again = DriftMonitor(DriftConfig(window=30, reference=str(path)))
    assert again.frozen and again.source.startswith("file ref.json")
    for _ in range(30):
        again.add(_turn(rng, 0.2, question))
    assert [m.split(":")[0] for m in again.health()["moved"]] == ["image.brightness"]


def test_a_broken_reference_file_is_one_line_for_people(tmp_path):
    bad = tmp_path / "ref.json"
    bad.write_text("{not json")
    with pytest.raises(BadInputError, match="drift reference .*ref.json is not usable"):
        DriftMonitor(DriftConfig(reference=str(bad)))


def test_image_features_measure_light_size_and_blur():
    from synthetic.render import render_sign

    im = render_sign(seed=3, size=(480, 360)).image
    base = dict(image_features(im))
    dark = dict(image_features(ImageEnhance.Brightness(im).enhance(0.3)))
    blurred = dict(image_features(im.filter(ImageFilter.GaussianBlur(4))))
    assert base["image.pixels"] == 480 * 360 and base["image.aspect"] == pytest.approx(480 / 360)
    assert dark["image.brightness"] < 0.4 * base["image.brightness"]
    assert blurred["image.contrast"] < base["image.contrast"]
    assert dict(image_features(Image.new("RGB", (4000, 3000), "white")))["image.brightness"] == 1.0


def test_ocr_features_and_scripts():
    words = [{"text": t, "confidence": c} for t, c in (("OPEN", 0.9), ("24", 0.8), ("DAILY", 0.7))]
    f = dict(ocr_features(words))
    assert f["ocr.words"] == 3 and f["ocr.confidence"] == pytest.approx(0.8) and f["ocr.script"] == "latin"
    assert dict(ocr_features([]))["ocr.script"] == "none"
    assert [script(w) for w in ("Straße", "2024", "東京", "Москва")] == ["latin", "digits", "cjk", "cyrillic"]
    assert hashed(["total"]) == hashed(["total"]) and "total" not in hashed(["total"])[0]


def test_detector_features_give_the_class_mix_and_the_scores():
    from assistant.drift_features import detector_features

    boxes = [{"text": "Person", "confidence": 0.9}, {"text": "bus", "confidence": 0.6}]
    f = dict(detector_features(boxes))
    assert f == {"detector.boxes": 2.0, "detector.score": pytest.approx(0.75), "detector.top_class": "person"}
    assert dict(detector_features([])) == {"detector.boxes": 0.0, "detector.top_class": "none"}
    rng = random.Random(3)
    mon = DriftMonitor(DriftConfig(reference_turns=40, window=30))
    for _ in range(40):
        mon.add([("detector.top_class", rng.choice(["person", "person", "car"]))])
    for _ in range(30):
        mon.add([("detector.top_class", rng.choice(["dog", "cat"]))])
    assert mon.health()["moved"][0].startswith("detector.top_class: mix {'person'")
