"""The tool protocol: schema checks at definition, registry, runner (timeouts, failures, concurrency), cache."""

from __future__ import annotations

import threading
import time

import pytest
from PIL import Image

from tools.base import Tool, ToolRegistry
from tools.cache import ToolCache
from tools.errors import BadInputError, ToolError
from tools.evidence import Finding
from tools.images import ImageRef
from tools.runner import ToolCall, ToolRunner


class Echo(Tool):
    name = "echo"
    description = "Returns its word as a finding; counts its calls."
    inputs = {
        "word": {"type": "string", "description": "What to say.", "default": "hi"},
        "times": {"type": "integer", "description": "Repeat.", "default": 1, "minimum": 1, "maximum": 5},
        "region": {"type": "box", "description": "A box.", "default": None},
    }
    evidence_prefix = "echo"

    def __init__(self):
        super().__init__()
        self.calls = 0
        self.setups = 0

    def setup(self):
        self.setups += 1

    def forward(self, image, word="hi", times=1, region=None):
        self.calls += 1
        return [Finding("word", word, 0.9, region) for _ in range(times)]


class Sleepy(Tool):
    name = "sleepy"
    description = "Sleeps, then finds one thing."
    inputs = {"seconds": {"type": "number", "description": "How long.", "default": 0.5}}

    def forward(self, image, seconds=0.5):
        time.sleep(seconds)
        return [Finding("word", f"slept {seconds}", 1.0)]


class Broken(Tool):
    name = "broken"
    description = "Always fails."

    def forward(self, image):
        raise RuntimeError("disk on fire")


class Refuses(Tool):
    name = "refuses"
    description = "Fails the way tools are meant to."

    def forward(self, image):
        raise ToolError("refuses", "nothing to read here")


@pytest.fixture
def image():
    return ImageRef.from_pil(Image.new("RGB", (32, 24), (10, 200, 30)))


def _runner(*tools, cache=None):
    reg = ToolRegistry()
    for t in tools:
        reg.register(t)
    return ToolRunner(reg, cache=cache)


# ---- schema and spec -----------------------------------------------------------------------------


def test_broken_tool_classes_fail_at_definition():
    with pytest.raises(TypeError, match="description"):

        class NoDescription(Tool):
            name = "x"

            def forward(self, image):
                return []

    with pytest.raises(TypeError, match="unknown type"):

        class BadType(Tool):
            name = "y"
            description = "d"
            inputs = {"n": {"type": "float", "description": "d"}}

            def forward(self, image, n):
                return []

    with pytest.raises(TypeError, match="needs 'type' and 'description'"):

        class NoParamDescription(Tool):
            name = "z"
            description = "d"
            inputs = {"n": {"type": "integer"}}

            def forward(self, image, n):
                return []

    with pytest.raises(TypeError, match="forward"):

        class NoForward(Tool):
            name = "w"
            description = "d"

    with pytest.raises(BadInputError, match=">= 1"):  # a default that breaks its own schema

        class BadDefault(Tool):
            name = "v"
            description = "d"
            inputs = {"n": {"type": "integer", "description": "d", "default": 0, "minimum": 1}}

            def forward(self, image, n):
                return []


def test_spec_is_a_json_schema_function():
    spec = Echo.spec()
    fn = spec["function"]
    assert spec["type"] == "function" and fn["name"] == "echo"
    props = fn["parameters"]["properties"]
    assert props["times"] == {
        "description": "Repeat.",
        "minimum": 1,
        "maximum": 5,
        "default": 1,
        "type": "integer",
    }
    assert props["region"]["type"] == "array" and props["region"]["minItems"] == 4
    assert fn["parameters"]["required"] == []


def test_validation_fills_defaults_and_rejects_bad_arguments():
    t = Echo()
    assert t.validate({}) == {"word": "hi", "times": 1, "region": None}
    assert t.validate({"region": "1,2,3,4"})["region"] == (1.0, 2.0, 3.0, 4.0)
    for bad, why in [
        ({"times": 9}, "<= 5"),
        ({"times": "2"}, "must be integer"),
        ({"region": [3, 3, 1, 1]}, "x1 > x0"),
        ({"region": "a,b"}, "x0,y0,x1,y1"),
        ({"colour": 1}, "unknown argument"),
    ]:
        with pytest.raises(BadInputError, match=why):
            t.validate(bad)


# ---- registry ------------------------------------------------------------------------------------


def test_registry_is_explicit_and_rejects_duplicates():
    reg = ToolRegistry()
    reg.register(Echo())
    assert "echo" in reg and reg.names() == ["echo"]
    assert [s["function"]["name"] for s in reg.specs()] == ["echo"]
    with pytest.raises(ValueError, match="already registered"):
        reg.register(Echo())
    with pytest.raises(BadInputError, match="available: \\['echo'\\]"):
        reg.get("ocr")
    with pytest.raises(TypeError):
        reg.register(Echo)  # the class, not an instance


def test_default_registry_builds_the_builtin_tools_without_loading_them():
    from tools.registry import default_registry

    reg = default_registry(enabled=["color", "metadata", "detect", "zoom"])
    assert reg.names() == ["detect", "zoom", "color", "metadata"]  # canonical order
    assert not reg.get("detect")._models  # nothing heavy loaded yet
    prefixes = {n: reg.get(n).evidence_prefix for n in reg.names()}
    assert prefixes == {"detect": "det", "zoom": "zoom", "color": "color", "metadata": "meta"}
    with pytest.raises(BadInputError, match="unknown tool"):
        default_registry(enabled=["telepathy"])


# ---- runner --------------------------------------------------------------------------------------


def test_setup_runs_once_even_under_concurrent_first_calls(image):
    echo = Echo()
    runner = _runner(echo)
    calls = [ToolCall("echo", image, {"word": f"w{i}"}) for i in range(6)]
    results = runner.run(calls)
    assert [r.findings[0].text for r in results] == [f"w{i}" for i in range(6)]  # order kept
    assert echo.setups == 1 and echo.calls == 6


def test_a_slow_tool_times_out_as_an_observation(image):
    runner = _runner(Sleepy())
    t0 = time.perf_counter()
    res = runner.run_one("sleepy", image, timeout_s=0.2, seconds=2.0)
    waited = time.perf_counter() - t0
    assert not res.ok and res.error == "timed out after 0.2 s" and res.findings == []
    assert waited < 1.5  # the caller is not held for the tool's full two seconds
    assert 0.15 < res.duration_s < 1.5


def test_raising_tools_become_error_results(image):
    runner = _runner(Broken(), Refuses(), Echo())
    res = runner.run([ToolCall("broken", image), ToolCall("refuses", image), ToolCall("echo", image)])
    assert res[0].error == "RuntimeError: disk on fire"
    assert res[1].error == "nothing to read here"
    assert res[2].ok and res[2].findings[0].text == "hi"
    bad = runner.run([ToolCall("echo", image, {"times": 0}), ToolCall("nope", image)])
    assert ">= 1" in bad[0].error and "unknown tool" in bad[1].error
    # Failures are not cached: the next call tries again.
    assert runner.run_one("broken", image).error == "RuntimeError: disk on fire"


def test_independent_tools_run_concurrently_and_each_call_is_timed(image):
    runner = _runner(Sleepy(), Echo())
    t0 = time.perf_counter()
    res = runner.run(
        [ToolCall("sleepy", image, {"seconds": 0.6}), ToolCall("sleepy", image, {"seconds": 0.61})]
    )
    total = time.perf_counter() - t0
    assert all(r.ok for r in res)
    assert total < 1.0, f"two 0.6 s calls took {total:.2f} s: not concurrent"
    assert all(0.55 < r.duration_s < 1.0 for r in res)


def test_second_call_is_a_cache_hit_with_the_same_findings(image):
    echo = Echo()
    cache = ToolCache()
    runner = _runner(echo, cache=cache)
    first = runner.run_one("echo", image, word="open", times=2)
    second = runner.run_one("echo", image, times=2, word="open")  # argument order does not matter
    assert not first.cache_hit and second.cache_hit
    assert [f.to_dict() for f in second.findings] == [f.to_dict() for f in first.findings]
    assert echo.calls == 1 and cache.hits == 1 and cache.misses == 1
    assert first.call_key == second.call_key
    # Different arguments, image or tool version miss.
    assert not runner.run_one("echo", image, word="closed").cache_hit
    other = ImageRef.from_pil(Image.new("RGB", (32, 24), (0, 0, 0)))
    assert not runner.run_one("echo", other, word="open", times=2).cache_hit
    echo.version = "2"
    assert not runner.run_one("echo", image, word="open", times=2).cache_hit


def test_memory_cache_is_bounded():
    cache = ToolCache(max_entries=3)
    for i in range(5):
        cache.put(f"k{i}", [Finding("word", str(i))])
    assert cache.get("k0") is None and cache.get("k1") is None
    assert cache.get("k4")[0].text == "4"


def test_disk_cache_survives_a_new_cache(image, tmp_path):
    echo = Echo()
    _runner(echo, cache=ToolCache(disk_dir=tmp_path)).run_one("echo", image, word="kept", region=(1, 2, 3, 4))
    fresh = Echo()
    res = _runner(fresh, cache=ToolCache(disk_dir=tmp_path)).run_one(
        "echo", image, word="kept", region=(1, 2, 3, 4)
    )
    assert res.cache_hit and fresh.calls == 0
    assert res.findings[0].text == "kept" and res.findings[0].box == (1.0, 2.0, 3.0, 4.0)
    # A torn file is a miss, not an error.
    for p in tmp_path.rglob("*.json"):
        p.write_text("{not json")
    again = Echo()
    assert (
        not _runner(again, cache=ToolCache(disk_dir=tmp_path)).run_one("echo", image, word="kept").cache_hit
    )


def test_tool_result_round_trips_through_a_dict(image):
    res = _runner(Echo()).run_one("echo", image, region=(1, 2, 3, 4))
    from tools.runner import ToolResult

    back = ToolResult.from_dict(res.to_dict())
    assert back.to_dict() == res.to_dict()


def test_runner_is_safe_from_many_threads(image):
    echo = Echo()
    runner = _runner(echo)
    errors = []

    def worker(i):
        try:
            r = runner.run_one("echo", image, word=f"t{i % 3}")
            assert r.ok and r.findings[0].text == f"t{i % 3}"
        except Exception as e:  # collected: an assertion in a thread would otherwise be lost
            errors.append(e)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(12)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors and echo.calls <= 12
