"""The offline-model build cache: a build is keyed on its spec, its builder's code and the transformers
version (no hand-bumped version), happens once, and `models list` shows the product's models only."""

from __future__ import annotations

import dataclasses
import importlib
import importlib.metadata
import json
import shutil
import sys
import uuid

import pytest

from assistant.core import local_models
from assistant.core.smollm import LocalModel
from launch import main


@pytest.fixture
def spec():
    """A model spec of the test's own, built into the real cache (next to SmolLM2) and removed after."""
    s = LocalModel(f"test-cache-{uuid.uuid4().hex[:8]}", "a marker", "marker")
    yield s
    shutil.rmtree(local_models.model_dir(s.name), ignore_errors=True)
    (local_models.model_dir(s.name).parent / f".{s.name}.lock").unlink(missing_ok=True)


def test_a_build_happens_once_and_again_when_its_spec_changes(spec):
    calls = []

    def build(out, s, base):
        calls.append(base)
        (out / "marker.txt").write_text(s.description)

    path = local_models.ensure(spec, build)
    assert (path / "marker.txt").read_text() == "a marker"
    assert calls == [local_models.model_dir("smollm2")]  # every model starts from SmolLM2's build
    assert local_models.ensure(spec, build) == path and len(calls) == 1  # cached
    changed = dataclasses.replace(spec, description="another marker")
    assert local_models.is_built(spec, build) and not local_models.is_built(changed, build)
    local_models.ensure(changed, build)
    assert len(calls) == 2 and (path / "marker.txt").read_text() == "another marker"
    stamp = json.loads((path / "build.json").read_text())
    assert (
        stamp["key"] == local_models.build_key(changed, build)
        and stamp["spec"]["description"] == "another marker"
    )


def test_the_key_follows_the_builders_code_and_transformers(spec, tmp_path, monkeypatch):
    (tmp_path / "mybuilder.py").write_text("def build(out, spec, base):\n    pass\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    import mybuilder

    before = local_models.build_key(spec, mybuilder.build)
    assert local_models.build_key(spec, mybuilder.build) == before  # stable
    (tmp_path / "mybuilder.py").write_text("def build(out, spec, base):\n    return None  # changed\n")
    importlib.reload(mybuilder)
    assert local_models.build_key(spec, mybuilder.build) != before
    after_edit = local_models.build_key(spec, mybuilder.build)
    real = importlib.metadata.version
    monkeypatch.setattr(importlib.metadata, "version", lambda d: "0.0" if d == "transformers" else real(d))
    assert local_models.build_key(spec, mybuilder.build) != after_edit
    sys.modules.pop("mybuilder", None)


def test_unknown_names_and_kinds_are_clear_errors(spec):
    from tools.errors import ModelLoadError

    with pytest.raises(ModelLoadError, match="unknown local model 'tiny-llava'; known: smollm2"):
        local_models.ensure("tiny-llava")
    with pytest.raises(ModelLoadError, match="no builder for local model kind 'marker'"):
        local_models.ensure(spec)


def test_models_list_shows_the_product_models_only(capsys):
    assert main(["models", "list"]) == 0
    names = [line.split()[0] for line in capsys.readouterr().out.splitlines()]
    # the product's models, then the tools' offline models (the tests' tiny models are not listed)
    assert names == ["smollm2", "smollm2-llava", "smollm2-llava-vitb16", "coco-ssd", "efficientnet-lite0"]
