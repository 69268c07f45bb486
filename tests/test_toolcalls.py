"""Parsing model-emitted tool calls in the formats models use, robust to junk; the loop's step limit."""

from assistant.session import Assistant, AssistantConfig
from assistant.toolcalls import model_calls_tools, parse_tool_calls, strip_tool_calls
from tests.scripted_engine import ScriptedEngine
from tools.base import Tool, ToolRegistry
from tools.evidence import Finding
from tools.runner import ToolRunner

KNOWN = {"ocr", "detect", "zoom", "color", "metadata"}


def names(calls):
    return [(c.name, c.arguments) for c in calls]


def test_qwen_hermes_tags_several_per_message():
    text = (
        'Let me look.\n<tool_call>\n{"name": "ocr", "arguments": {"image": 1, "mode": "scene"}}\n</tool_call>\n'
        '<tool_call>{"name": "detect", "arguments": {"image": 2}}</tool_call>'
    )
    assert names(parse_tool_calls(text, KNOWN)) == [
        ("ocr", {"image": 1, "mode": "scene"}),
        ("detect", {"image": 2}),
    ]


def test_fenced_json_block_with_a_list():
    text = 'Sure:\n```json\n[{"name": "zoom", "arguments": {"box": [1, 2, 30, 40]}}, {"name": "color", "arguments": {}}]\n```'
    assert names(parse_tool_calls(text, KNOWN)) == [("zoom", {"box": [1, 2, 30, 40]}), ("color", {})]


def test_bare_objects_and_openai_function_style():
    text = (
        'I will call {"name": "metadata", "parameters": {"image": 1}} and then '
        '{"function": {"name": "ocr", "arguments": "{\\"region\\": [0, 0, 10, 10]}"}} done.'
    )
    assert names(parse_tool_calls(text, KNOWN)) == [
        ("metadata", {"image": 1}),
        ("ocr", {"region": [0, 0, 10, 10]}),
    ]


def test_tool_calls_envelope_and_alternative_keys():
    text = (
        '{"tool_calls": [{"type": "function", "function": {"name": "detect", "arguments": {"conf": 0.5}}}]}'
    )
    assert names(parse_tool_calls(text, KNOWN)) == [("detect", {"conf": 0.5})]
    assert names(parse_tool_calls('{"tool": "color", "args": {"colors": 3}}', KNOWN)) == [
        ("color", {"colors": 3})
    ]


def test_repairs_cheap_json_mistakes():
    text = "<tool_call>{'name': 'ocr', 'arguments': {'mode': 'document',}}</tool_call>"
    assert names(parse_tool_calls(text, KNOWN)) == [("ocr", {"mode": "document"})]
    # an unclosed tag at the end of a generation (the model hit its token limit after the JSON)
    assert names(parse_tool_calls('<tool_call>{"name": "detect", "arguments": {}}', KNOWN)) == [
        ("detect", {})
    ]


def test_junk_unknown_tools_and_duplicates_are_ignored():
    text = (
        '{not json} {"name": "rm -rf", "arguments": {}} <tool_call>garbage</tool_call> '
        '{"answer": 42} ```json\n{"name": "ocr"}\n``` {"name": "ocr"} { unbalanced'
    )
    assert names(parse_tool_calls(text, KNOWN)) == [("ocr", {})]
    assert parse_tool_calls("The sign says OPEN.", KNOWN) == []
    assert parse_tool_calls("", KNOWN) == []


def test_strip_leaves_the_prose():
    text = 'Checking.<tool_call>{"name": "ocr", "arguments": {}}</tool_call> The sign says "OPEN".'
    assert strip_tool_calls(text) == 'Checking. The sign says "OPEN".'
    assert strip_tool_calls('{"a": 1} plain') == '{"a": 1} plain'  # JSON that is no call stays


def test_which_models_call_tools():
    class E:
        model_id = "Qwen/Qwen2.5-VL-7B-Instruct"

    assert model_calls_tools(E())
    E.model_id = "smollm2-llava"
    assert not model_calls_tools(E())


class CountingTool(Tool):
    name = "color"
    description = "test tool that records its calls"
    inputs = {"colors": {"type": "integer", "description": "n", "default": 5}}

    def __init__(self):
        super().__init__()
        self.n = 0

    def forward(self, image, colors=5):
        self.n += 1
        return [Finding("color", f"red{self.n}", 1.0, None, {"share": 0.5})]


def test_model_driven_calls_stop_at_the_step_limit(tmp_path):
    from PIL import Image

    tool = CountingTool()
    reg = ToolRegistry()
    reg.register(tool)
    # A model that asks for a tool forever (a new argument each time, so the cache cannot answer).
    replies = [
        f'<tool_call>{{"name": "color", "arguments": {{"colors": {i + 1}}}}}</tool_call>' for i in range(10)
    ]
    engine = ScriptedEngine(replies + ["It is red."])
    cfg = AssistantConfig(tool_policy="model", max_tool_steps=3, trace_dir=str(tmp_path))
    conv = Assistant(engine, ToolRunner(reg), cfg).conversation()
    result = conv.ask("What colour is it?", [Image.new("RGB", (32, 32), (200, 0, 0))])
    assert tool.n == 3  # three steps, each ran its call
    assert [c.source for c in result.tool_calls] == ["model"] * 3
    assert [c.step for c in result.tool_calls] == [1, 2, 3]
    # after the limit the answer is generated without tool specs
    assert len(engine.calls) == 4
    assert (
        "<tool_call>" in engine.calls[0][0]["content"] and "<tool_call>" not in engine.calls[3][0]["content"]
    )
    assert result.answer and "tool_call" not in result.answer


def test_model_driven_call_then_answer(tmp_path):
    from PIL import Image

    tool = CountingTool()
    reg = ToolRegistry()
    reg.register(tool)
    engine = ScriptedEngine(['{"name": "color", "arguments": {"image": 1}}', "The image is red1 [color:1]."])
    cfg = AssistantConfig(tool_policy="model", trace_dir=str(tmp_path))
    result = (
        Assistant(engine, ToolRunner(reg), cfg)
        .conversation()
        .ask("Which colour?", [Image.new("RGB", (8, 8))])
    )
    assert tool.n == 1 and result.tool_calls[0].evidence_ids == ["color:1"]
    assert len(engine.calls) == 2  # one step with a call, one that answered
    assert result.model_output == "The image is red1 [color:1]."


def test_auto_policy_runs_rules_then_lets_a_tool_calling_model_add_calls(tmp_path):
    from PIL import Image

    tool = CountingTool()
    reg = ToolRegistry()
    reg.register(tool)
    engine = ScriptedEngine(
        ['<tool_call>{"name": "color", "arguments": {"colors": 2}}</tool_call>', "It is red1."]
    )
    engine.model_id = "Qwen/Qwen2-VL-2B-Instruct"  # a family known to emit tool calls
    conv = Assistant(engine, ToolRunner(reg), AssistantConfig(trace_dir=str(tmp_path))).conversation()
    r = conv.ask("What colour is it?", [Image.new("RGB", (8, 8))])
    assert [(c.source, c.step) for c in r.tool_calls] == [("policy", 0), ("model", 1)]
    assert conv.turns[-1].tool_policy == "auto+model"
