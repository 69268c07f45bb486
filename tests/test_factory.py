"""Building the assistant: the flags every assistant command shares reach the tools (detector weights,
the opt-in disk cache of tool results), and a conversation plans its images with the budget planner."""

import pytest
from PIL import Image

from assistant import budget
from assistant.factory import build_assistant, build_runner
from assistant.session import Assistant, AssistantConfig
from frontends.assistant_args import configs_from_args
from launch import build_parser
from tests.scripted_engine import ScriptedEngine
from tools.images import ImageRef

REQUIRED = {"ask": ["What is it?"], "batch": ["--images", "imgs", "--out", "a.jsonl"], "serve": [], "ui": []}


@pytest.mark.parametrize("command", sorted(REQUIRED))
def test_every_assistant_command_takes_the_tool_flags(command):
    argv = [command, *REQUIRED[command], "--detector-weights", "custom/best.pt", "--tool-cache-disk"]
    _, cfg = configs_from_args(build_parser().parse_args(argv))
    assert cfg.detector_weights == "custom/best.pt" and cfg.tool_cache_disk is True
    _, default = configs_from_args(build_parser().parse_args([command, *REQUIRED[command]]))
    assert default.detector_weights is None and default.tool_cache_disk is False


def test_detector_weights_reach_the_detect_tool(tmp_path):
    missing = tmp_path / "never-trained.pt"
    cfg = AssistantConfig(tools=["detect"], detector_weights=str(missing), write_traces=False)
    runner = build_runner(cfg)
    assert runner.registry.get("detect").requested == str(missing)
    conv = build_assistant(engine=ScriptedEngine(), assistant_cfg=cfg).conversation()
    r = conv.ask("How many circles are there?", [Image.new("RGB", (64, 64), "white")])
    [call] = r.tool_calls
    assert call.tool == "detect" and not call.ok and str(missing) in call.error


def test_trained_weights_detect_through_the_assistant(shapes_detector_weights, tmp_path):
    from synthetic.shapes import held_out

    image, shapes = next((im, s) for im, s in held_out(40) if len(s) == 1)
    cfg = AssistantConfig(tools=["detect"], detector_weights=str(shapes_detector_weights), write_traces=False)
    conv = build_assistant(engine=ScriptedEngine(), assistant_cfg=cfg).conversation()
    r = conv.ask(f"How many {shapes[0].name}s are there?", [image.resize((384, 384))])
    assert [c.ok for c in r.tool_calls] == [True]
    labels = {e["text"] for e in r.evidence if e["kind"] == "detection"}
    assert labels <= {"circle", "square", "triangle"}


def test_tool_results_go_to_disk_only_when_asked(tmp_path, monkeypatch):
    monkeypatch.setenv("GROUNDED_VLM_HOME", str(tmp_path))
    image = ImageRef.from_pil(Image.new("RGB", (40, 30), (10, 120, 200)), source="blue.png")
    assert build_runner(AssistantConfig(tools=["metadata"])).cache.disk_dir is None
    cfg = AssistantConfig(tools=["metadata"], tool_cache_disk=True)
    first = build_runner(cfg).run_one("metadata", image)
    assert first.ok and not first.cache_hit
    assert list((tmp_path / "tool-results").rglob("*.json"))
    again = build_runner(cfg).run_one("metadata", ImageRef(data=image.data))  # a new process, in effect
    assert again.cache_hit and [f.text for f in again.findings] == [f.text for f in first.findings]


def test_no_tools_builds_no_runner():
    assert build_runner(AssistantConfig(no_tools=True, tool_cache_disk=True)) is None


def test_conversations_plan_images_with_the_budget_planner():
    conv = Assistant(ScriptedEngine(), None, AssistantConfig(write_traces=False)).conversation()
    assert isinstance(conv.planner, budget.LoopPlanner)
    r = conv.ask("What is it?", [Image.new("RGB", (50, 50), "red")])
    [rec] = r.budget
    assert rec.choice == "text" and "cannot see images" in rec.reason  # the planner's own reason
