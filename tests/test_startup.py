"""Start-up of a one-shot `ask`: the turn's first tool calls start while the model loads and the turn
joins them instead of running them again; the command line builds only the parser it needs; a one-shot
command's process ends without interpreter teardown, its output complete."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from assistant.factory import build_assistant, build_runner
from assistant.session import AssistantConfig, prefetch_first_turn
from tests.scripted_engine import ScriptedEngine
from tools.base import Tool, ToolRegistry
from tools.evidence import Finding
from tools.images import ImageRef
from tools.ocr import OCRTool
from tools.runner import ToolCall, ToolRunner

ROOT = Path(__file__).resolve().parents[1]


class Gated(Tool):
    name = "gated"
    description = "Waits until its gate opens, then finds its word; counts its calls."
    inputs = {"word": {"type": "string", "description": "What to find.", "default": "hi"}}

    def __init__(self):
        super().__init__()
        self.gate = threading.Event()
        self.calls = 0

    def forward(self, image, word="hi"):
        self.calls += 1
        assert self.gate.wait(10), "the test never opened the gate"
        return [Finding("word", word, 0.9)]


class Broken(Tool):
    name = "broken"
    description = "Always fails."

    def forward(self, image):
        raise RuntimeError("disk on fire")


class CountingOCR(OCRTool):
    """The real OCR tool, counting how often it reads."""

    def __init__(self):
        super().__init__()
        self.reads = 0

    def forward(self, image, **args):
        self.reads += 1
        return super().forward(image, **args)


def image(seed: int = 1) -> ImageRef:
    from synthetic.render import render_sign

    return ImageRef.from_pil(render_sign(seed=seed, text="OPEN DAILY").image)


def runner_with(*tools: Tool) -> ToolRunner:
    reg = ToolRegistry()
    for t in tools:
        reg.register(t)
    return ToolRunner(reg)


def test_a_running_prefetch_is_joined_not_run_again():
    gated, im = Gated(), image()
    runner = runner_with(gated)
    assert runner.prefetch([ToolCall("gated", im, {"word": "EXIT"})]) == 1
    # Still running: a second prefetch of the same call starts nothing.
    assert runner.prefetch([ToolCall("gated", im, {"word": "EXIT"})]) == 0
    threading.Timer(0.2, gated.gate.set).start()
    res = runner.run_one("gated", im, word="EXIT")
    assert res.ok and [f.text for f in res.findings] == ["EXIT"] and res.cache_hit
    assert gated.calls == 1
    again = runner.run_one("gated", im, word="EXIT")  # finished: now from the cache
    assert again.cache_hit and gated.calls == 1
    assert runner.prefetch([ToolCall("gated", im, {"word": "EXIT"})]) == 0  # cached: nothing to start


def test_prefetch_leaves_other_calls_alone():
    gated, im = Gated(), image()
    gated.gate.set()
    runner = runner_with(gated)
    assert runner.prefetch([ToolCall("nope", im, {}), ToolCall("gated", im, {"word": 3})]) == 0
    runner.prefetch([ToolCall("gated", im, {"word": "A"})])
    other = runner.run_one("gated", im, word="B")  # other arguments: a call of its own
    assert other.ok and not other.cache_hit and [f.text for f in other.findings] == ["B"]


def test_a_prefetch_that_fails_is_reported_by_the_call_that_joins_it():
    runner, im = runner_with(Broken()), image()
    assert runner.prefetch([ToolCall("broken", im, {})]) == 1
    res = runner.run_one("broken", im)
    assert not res.ok and "disk on fire" in res.error and res.findings == []


def test_a_forked_prefetch_brings_back_exactly_what_the_tool_finds_here():
    """In a process with one thread the call runs in a child: this process never sets the OCR up, and
    the findings that come back are the ones an OCR here reads."""
    p = run_python(
        "from synthetic.render import render_sign\n"
        "from tools.base import ToolRegistry\n"
        "from tools.images import ImageRef\n"
        "from tools.ocr import OCRTool\n"
        "from tools.runner import ToolCall, ToolRunner\n"
        "im = ImageRef.from_pil(render_sign(seed=3, text='NO PARKING').image)\n"
        "reg = ToolRegistry(); ocr = reg.register(OCRTool()); runner = ToolRunner(reg)\n"
        "assert runner.prefetch([ToolCall('ocr', im, {})], low_priority=True, fork=True) == 1\n"
        "res = runner.run_one('ocr', im)\n"
        "assert res.ok and res.cache_hit and res.findings, res\n"
        "assert not ocr._ready, 'the OCR ran in this process'\n"
        "assert res.findings == OCRTool()(im)\n"
        "print(' '.join(f.text for f in res.findings if f.kind == 'line'))"
    )
    assert p.returncode == 0, p.stderr
    assert "PARKING" in p.stdout.upper()


def test_a_forked_prefetch_that_fails_is_run_and_reported_here():
    runner, im = runner_with(Broken()), image()
    assert runner.prefetch([ToolCall("broken", im, {})], fork=True) == 1
    res = runner.run_one("broken", im)
    assert not res.ok and "disk on fire" in res.error


class Niceness(Tool):
    name = "niceness"
    description = "Finds the nice value of the thread it runs on."

    def forward(self, image):
        return [Finding("note", str(os.getpriority(os.PRIO_PROCESS, threading.get_native_id())), 1.0)]


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="per-thread nice values are Linux's")
def test_a_low_priority_prefetch_lowers_its_own_thread_only():
    runner, im = runner_with(Niceness()), image()
    own = os.getpriority(os.PRIO_PROCESS, threading.get_native_id())
    runner.prefetch([ToolCall("niceness", im, {})], low_priority=True)
    (found,) = runner.run_one("niceness", im).findings
    assert int(found.text) > own or own >= 19  # already as low as it goes: nothing to lower
    assert os.getpriority(os.PRIO_PROCESS, threading.get_native_id()) == own
    other = runner_with(Niceness())
    (plain,) = other.run_one("niceness", image(seed=2)).findings  # the pool's threads are left alone
    assert int(plain.text) == own


def test_first_turn_prefetch_is_the_turns_own_ocr_call(tmp_path):
    """What `ask` starts before the model loads is exactly what the turn asks for: one OCR read."""
    question, im = "What does the sign say?", image(seed=3)
    cfg = AssistantConfig(trace_dir=str(tmp_path), max_new_tokens=8)

    def turn(prefetch: bool):
        ocr = CountingOCR()
        runner = runner_with(ocr)
        if prefetch:
            assert prefetch_first_turn(runner, cfg, question, [im, im]) == ["ocr"]
        assistant = build_assistant(None, cfg, engine=ScriptedEngine(), runner=runner)
        result = assistant.conversation().ask(question, [im])
        return result, ocr.reads

    prefetched, reads = turn(prefetch=True)
    assert reads == 1
    (call,) = prefetched.tool_calls
    assert call.tool == "ocr" and call.ok and call.cache_hit
    plain, _ = turn(prefetch=False)
    assert not plain.tool_calls[0].cache_hit
    assert prefetched.answer == plain.answer and prefetched.citations == plain.citations


def test_no_prefetch_when_the_turn_would_not_call_tools(tmp_path):
    im = image()
    for cfg in (
        AssistantConfig(no_tools=True),
        AssistantConfig(tool_policy="model"),
        AssistantConfig(tools=["color"]),
    ):
        assert prefetch_first_turn(build_runner(cfg), cfg, "What does the sign say?", [im]) == []


def run_python(code: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)


def test_ask_builds_its_own_parser_only_and_loads_no_model_to_parse():
    p = run_python(
        "import sys, launch\n"
        "args = launch.parse(['ask', '--image', 'x.png', 'What does it say?'])\n"
        "assert args._module.__name__ == 'frontends.commands.ask'\n"
        "loaded = [m for m in ('frontends.commands.tool', 'tools.ocr', 'torch', 'transformers', "
        "'ultralytics', 'gradio', 'pandas') if m in sys.modules]\n"
        "print(loaded)"
    )
    assert p.returncode == 0, p.stderr
    assert p.stdout.strip() == "[]"


def test_the_tools_ask_starts_before_the_model_import_no_model_library():
    p = run_python(
        "import sys\n"
        "from assistant.factory import build_runner\n"
        "from assistant.session import AssistantConfig\n"
        "build_runner(AssistantConfig())\n"
        "print([m for m in ('torch', 'transformers', 'ultralytics') if m in sys.modules])"
    )
    assert p.returncode == 0, p.stderr
    assert p.stdout.strip() == "[]"


def test_one_shot_exit_flushes_everything_written_and_keeps_the_status():
    p = run_python(
        "import sys, threading, time\n"
        "from frontends import runtime\n"
        "threading.Thread(target=time.sleep, args=(60,)).start()  # a worker still running\n"
        "sys.stdout.write('x' * 200_000)\n"
        "print('done', file=sys.stderr)\n"
        "runtime.exit_now(3)"
    )
    assert p.returncode == 3
    assert p.stdout == "x" * 200_000 and p.stderr.strip() == "done"


def test_help_still_lists_every_command():
    import launch

    p = subprocess.run(
        [sys.executable, "launch.py", "--help"], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert p.returncode == 0
    assert all(name in p.stdout for name in launch.COMMANDS)


def test_loading_without_gc_freezes_what_was_loaded_and_turns_the_collector_back_on():
    p = run_python(
        "import gc\n"
        "from frontends.runtime import loading_without_gc\n"
        "before = gc.get_freeze_count()\n"
        "with loading_without_gc():\n"
        "    assert not gc.isenabled()\n"
        "    loaded = [[i] for i in range(10_000)]\n"
        "assert gc.isenabled() and gc.get_freeze_count() >= before + 10_000\n"
        "gc.disable()\n"
        "with loading_without_gc(collect=True):\n"
        "    pass\n"
        "assert not gc.isenabled()  # left as it was found\n"
        "print('ok')"
    )
    assert p.returncode == 0, p.stderr
    assert p.stdout.strip() == "ok"


def test_a_forked_prefetch_child_that_hangs_is_ended_past_its_tools_limit():
    p = run_python(
        "import os, time\n"
        "from PIL import Image\n"
        "from tools.base import Tool, ToolRegistry\n"
        "from tools.images import ImageRef\n"
        "from tools.runner import CHILD_MARGIN_S, ToolCall, ToolRunner\n"
        "class Hang(Tool):\n"
        "    name = 'hang'\n"
        "    description = 'Never returns.'\n"
        "    timeout_s = 0.2\n"
        "    def forward(self, image):\n"
        "        time.sleep(600)\n"
        "reg = ToolRegistry()\n"
        "reg.register(Hang())\n"
        "runner = ToolRunner(reg)\n"
        "image = ImageRef.from_pil(Image.new('RGB', (8, 8)))\n"
        "runner.prefetch([ToolCall('hang', image, {})], fork=True)\n"
        "def children():\n"
        "    out = []\n"
        "    for d in os.listdir('/proc'):\n"
        "        try:\n"
        "            stat = open(f'/proc/{d}/stat').read()\n"
        "        except OSError:\n"
        "            continue\n"
        "        if d.isdigit() and int(stat.rsplit(')', 1)[1].split()[1]) == os.getpid():\n"
        "            out.append(int(d))\n"
        "    return out\n"
        "forked = children()\n"
        "result = runner.run([ToolCall('hang', image, {})])[0]\n"
        "time.sleep(CHILD_MARGIN_S + 1.5)\n"
        "print(len(forked), result.error, [c for c in forked if c in children()], flush=True)\n"
        "os._exit(0)\n"
    )
    assert p.returncode == 0, p.stderr
    n, *rest = p.stdout.split()
    assert n == "1"  # one forked child ran the call
    assert "timed out" in p.stdout and p.stdout.strip().endswith(
        "[]"
    )  # the call timed out; the child is gone
