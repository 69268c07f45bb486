"""`bench gpu`: without CUDA it says so plainly; `--shape tiny` runs every stage of the same code on the
CPU and writes figures that hold together (reuse exact, the embedding cache hit, all decode paths)."""

from __future__ import annotations

import argparse
import json

import pytest
import torch

from bench import gpu_bench

pytestmark = pytest.mark.skipif(torch.cuda.is_available(), reason="checks the CPU behaviour of bench gpu")


def _args(tmp_path, shape):
    parser = argparse.ArgumentParser()
    gpu_bench.add_arguments(parser)
    return parser.parse_args(
        ["--shape", shape, "--json", str(tmp_path / "gpu.json"), "--decode-tokens", "12"]
    )


def test_real_shapes_without_cuda_say_so_and_stop(tmp_path, capsys):
    assert gpu_bench.run(_args(tmp_path, "7b")) == 2
    out = json.loads((tmp_path / "gpu.json").read_text())
    assert out["cuda"] is False and "no CUDA device present" in out["note"]
    assert "no CUDA device present" in capsys.readouterr().out


@pytest.mark.slow
def test_tiny_shape_runs_every_stage_on_cpu(tmp_path, local_model_dirs):
    assert gpu_bench.run(_args(tmp_path, "tiny")) == 0
    out = json.loads((tmp_path / "gpu.json").read_text())
    assert out["stages_done"] == ["load", "turns", "decode", "vision", "exact"]
    assert out["quantization"] == "none" and "no CUDA" in out["note"]
    load = out["load"]
    assert load["decode_path"] == "dynamic" and load["cache_check_rel_diff"] < 1e-3
    turns = out["turns"]
    assert [t["turn"] for t in turns] == [1, 2, 3, 4, 5]
    assert all(t["kv_reused_tokens"] > turns[i]["prompt_tokens"] // 2 for i, t in enumerate(turns[1:]))
    assert all(t["ttft_plain_s"] > 0 and t["ttft_image_cached_s"] > 0 for t in turns[1:])
    assert len(out["ttft_reuse_vs_plain"]) == 4
    dec = out["decode"]
    assert dec["ours_dynamic_tps"] > 0 and dec["ours_static_tps"] > 0 and dec["generate_tps"] > 0
    assert out["vision"]["hit_was_hit"] and out["vision"]["hit_s"] < out["vision"]["miss_s"]
    assert out["exact"]["tokens_equal"] and out["exact"]["kv_reused_tokens"] > 0
