"""`bench tools` runs end to end on cheap tools and writes the figures it prints (timings are not asserted)."""

from __future__ import annotations

import argparse
import json

from frontends import runtime
from frontends.commands import bench as bench_cmd


def test_bench_tools_writes_latency_and_cache_figures(tmp_path, capsys):
    parser = argparse.ArgumentParser()
    bench_cmd.add_arguments(parser)
    out = tmp_path / "tools.json"
    args = parser.parse_args(["tools", "--images", "4", "--tools", "color", "metadata", "--json", str(out)])
    assert runtime.run_command(bench_cmd.run, args) == 0
    data = json.loads(out.read_text())
    assert data["images"] == ["sign", "receipt", "small_text", "shapes"]
    for name in ("color", "metadata"):
        t = data["tools"][name]
        assert t["errors"] == [] and t["miss"]["n"] == 4 and t["hit"]["n"] == 4
        assert t["miss"]["p50_ms"] <= t["miss"]["p95_ms"] and t["cache_speedup"] > 0
    assert data["cache"] == {"hits": 8, "misses": 8}
    assert set(data["all_tools_per_image"]) == {"sequential_p50_ms", "concurrent_p50_ms", "speedup_p50"}
    printed = capsys.readouterr().out
    assert "p50 ms" in printed and "color" in printed and str(out) in printed


def test_missing_benchmark_module_is_a_clear_error(monkeypatch, capsys):
    monkeypatch.setitem(bench_cmd.BENCHMARKS, "nothing", ("bench.no_such_bench", "missing on purpose"))
    parser = argparse.ArgumentParser()
    bench_cmd.add_arguments(parser)
    rc = runtime.run_command(bench_cmd.run, parser.parse_args(["nothing"]))
    assert rc == 2 and "bench/no_such_bench.py is missing" in capsys.readouterr().err
