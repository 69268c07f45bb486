"""`bench gpu`: the CUDA path as users run it, on random-weight LLaVA-OneVision models of the real shapes.

`--shape 0.5b|7b` builds a LLaVA-OneVision with the exact shapes of llava-onevision-qwen2-0.5b-ov /
-7b-ov (SigLIP-384 tower, anyres_max_9 tiles, Qwen2 language model) from config, with the project's
SmolLM2 tokenizer (no hub), saves it once under the model cache, and loads it through `load_engine` like
any model (4-bit NF4 by default). Stages, each written to the JSON as soon as it is done:
- load: load time, memory allocated vs the estimate, where 4-bit went (language-model Linears 4-bit;
  vision tower, projector and lm_head not), the decode path and the load-time cache consistency check;
- turns: time to first token per turn of a five-turn conversation about a photo, three ways (reuse:
  session KV cache; image_cached: no session, image features cached; plain: processor + `generate`);
- decode: tokens/s of our loop on each decode path vs `generate`, same prompt;
- vision: the vision stage on an embedding-cache miss vs a hit;
- exact: greedy tokens with KV reuse vs without, and the logits difference of the load-time check.
Without a CUDA device it says so; `--shape tiny` then runs the same code on the CPU (for tests).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

from bench.conversation import TokenClock, fresh_bytes, real_photos, user_message

SIGLIP_384 = {
    "hidden_size": 1152,
    "intermediate_size": 4304,
    "num_hidden_layers": 26,
    "num_attention_heads": 16,
}
SHAPES = {  # Qwen2 language model + vision tower, as in the hub configs of the -ov-hf models
    "0.5b": {
        "text": {"hidden_size": 896, "intermediate_size": 4864, "num_hidden_layers": 24},
        "heads": (14, 2),
        "vocab": 152000,
        "tie": True,
        "vision": SIGLIP_384,
        "image_size": 384,
        "patch": 14,
    },
    "7b": {
        "text": {"hidden_size": 3584, "intermediate_size": 18944, "num_hidden_layers": 28},
        "heads": (28, 4),
        "vocab": 152128,
        "tie": False,
        "vision": SIGLIP_384,
        "image_size": 384,
        "patch": 14,
    },
    "tiny": {
        "text": {"hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 2},
        "heads": (4, 2),
        "vocab": 0,  # the tokenizer's size
        "tie": True,
        "vision": {
            "hidden_size": 32,
            "intermediate_size": 64,
            "num_hidden_layers": 2,
            "num_attention_heads": 2,
        },
        "image_size": 32,
        "patch": 8,
    },
}
FOLLOW_UPS = [
    "What colours stand out?",
    "Is there any text in it?",
    "Where is the largest object?",
    "Summarise it.",
]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--shape", choices=list(SHAPES), default="0.5b", help="model shape (tiny runs on CPU)"
    )
    parser.add_argument("--quantization", choices=["4bit", "none"], default="4bit", help="4bit needs CUDA")
    parser.add_argument(
        "--json", dest="json_out", default="gpu_bench.json", help="where to write the figures"
    )
    parser.add_argument("--answer-tokens", type=int, default=16, help="tokens generated per turn")
    parser.add_argument("--decode-tokens", type=int, default=128, help="tokens for the decode figure")
    parser.add_argument("--max-context", type=int, default=8192, help="context (a photo is ~5.8k tokens)")


def eprint(*parts) -> None:
    print(*parts, file=sys.stderr, flush=True)


def run(args) -> int:
    import torch

    cuda = torch.cuda.is_available()
    out: dict = {"shape": args.shape, "quantization": args.quantization, "cuda": cuda, "setup": _setup()}
    path = Path(args.json_out)
    path.parent.mkdir(parents=True, exist_ok=True)

    def save(stage: str) -> None:
        out.setdefault("stages_done", []).append(stage)
        path.write_text(json.dumps(out, indent=1, default=str))
        eprint(f"bench gpu: {stage} done -> {path}")

    if not cuda:
        out["note"] = "no CUDA device present: nothing here measures a GPU"
        eprint(f"bench gpu: {out['note']}")
        if args.shape != "tiny":
            save("no-cuda")
            print(f"no CUDA device present; `--shape tiny` runs the same code on the CPU. JSON: {path}")
            return 2
    device = "cuda" if cuda else "cpu"
    quant = args.quantization if cuda else "none"
    out["quantization"] = quant  # bitsandbytes 4-bit is measured on CUDA only
    torch.manual_seed(0)
    t0 = time.perf_counter()
    model_dir = _build(args.shape, device)
    out["build_s"] = round(time.perf_counter() - t0, 2)
    engine = _load(out, model_dir, device, quant, args.max_context)
    save("load")
    photos = real_photos() if args.shape != "tiny" else [_small_photo()]
    plain = _PlainCuda(engine)
    out["turns"] = _turns(engine, plain, photos[0], args.answer_tokens)
    _ratios(out)
    save("turns")
    out["decode"] = _decode(engine, plain, photos[0], args.decode_tokens)
    save("decode")
    out["vision"] = _vision(engine, photos[0])
    save("vision")
    out["exact"] = _exact(engine, photos[0])
    if cuda:
        out["peak_allocated_gib"] = round(torch.cuda.max_memory_allocated() / 2**30, 2)
    save("exact")
    _print(out)
    return 0


def _setup() -> dict:
    import torch
    import transformers

    try:
        import bitsandbytes

        bnb = bitsandbytes.__version__
    except Exception as e:  # absent or broken: say so, the run can still go on without 4-bit
        bnb = f"unavailable ({type(e).__name__})"
    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else None
    return {
        "gpu": gpu,
        "torch": torch.__version__,
        "cuda_runtime": torch.version.cuda,
        "transformers": transformers.__version__,
        "bitsandbytes": bnb,
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs",
    }


def _build(shape: str, device: str) -> Path:
    """The random-weight model of `shape`, built once (on `device`) and saved under the model cache."""
    import torch
    from transformers import (
        LlavaOnevisionConfig,
        LlavaOnevisionForConditionalGeneration,
        LlavaOnevisionImageProcessor,
        LlavaOnevisionProcessor,
        LlavaOnevisionVideoProcessor,
        Qwen2Config,
        SiglipVisionConfig,
    )

    from assistant.core import local_models
    from assistant.core.smollm import IMAGE_TOKEN, chat_template, tokenizer_with
    from tools.paths import cache_dir

    out = cache_dir("models", f"bench-llava-onevision-{shape}")
    if (out / "config.json").exists() and (out / "preprocessor_config.json").exists():
        return out
    s = SHAPES[shape]
    # A machine without SmolLM2's package can be handed its tokenizer files alone (bench/gpu_check.sh).
    base = os.environ.get("GVLM_BENCH_TOKENIZER") or local_models.ensure("smollm2")
    tok = tokenizer_with(base, IMAGE_TOKEN)
    side, patch = s["image_size"], s["patch"]
    heads, kv_heads = s["heads"]
    text = Qwen2Config(
        **s["text"],
        num_attention_heads=heads,
        num_key_value_heads=kv_heads,
        vocab_size=max(s["vocab"], len(tok)),
        max_position_embeddings=32768,
        rope_theta=1000000.0,
        tie_word_embeddings=s["tie"],
        eos_token_id=tok.convert_tokens_to_ids("<|im_end|>"),
    )
    vision = SiglipVisionConfig(**s["vision"], image_size=side, patch_size=patch)
    pins = [[side * r, side * c] for r in range(1, 7) for c in range(1, 7)]  # anyres_max_9 canvases
    config = LlavaOnevisionConfig(
        vision_config=vision,
        text_config=text,
        image_token_id=tok.convert_tokens_to_ids(IMAGE_TOKEN),
        image_grid_pinpoints=pins,
        vision_feature_layer=-1,
        vision_feature_select_strategy="full",  # SigLIP has no CLS token
        vision_aspect_ratio="anyres_max_9",
        tie_word_embeddings=s["tie"],
    )
    dtype = torch.bfloat16 if device == "cuda" else torch.float32
    with torch.device(device):
        model = LlavaOnevisionForConditionalGeneration._from_config(config, dtype=dtype).eval()
    model.generation_config.eos_token_id = text.eos_token_id
    model.generation_config.do_sample = False
    size = {"height": side, "width": side}
    processor = LlavaOnevisionProcessor(
        image_processor=LlavaOnevisionImageProcessor(
            size=size, image_grid_pinpoints=pins, image_mean=[0.5] * 3, image_std=[0.5] * 3
        ),
        video_processor=LlavaOnevisionVideoProcessor(size=size),
        tokenizer=tok,
        num_image_tokens=(side // patch) ** 2,
        vision_feature_select_strategy="full",
        vision_aspect_ratio="anyres_max_9",
        chat_template=chat_template(IMAGE_TOKEN),
        image_token=IMAGE_TOKEN,
    )
    model.save_pretrained(out)
    processor.save_pretrained(out)  # last: its file marks a finished build
    del model
    return out


def _load(out: dict, model_dir: Path, device: str, quant: str, max_context: int):
    import torch

    from assistant.core import load_engine
    from assistant.core.cache import cache_nbytes
    from assistant.core.config import ModelConfig

    if device == "cuda":
        import gc

        gc.collect()  # the bf16 model `_build` made on the GPU must be gone before we measure
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()
    t0 = time.perf_counter()
    engine = load_engine(
        ModelConfig(model=str(model_dir), device=device, quantization=quant, max_context=max_context)
    )
    load_s = time.perf_counter() - t0
    est = engine.loaded.estimate
    lm = engine.model.model.language_model
    linears = [m for m in lm.modules() if isinstance(m, torch.nn.Linear)]
    four_bit = [m for m in linears if type(m).__name__ == "Linear4bit"]

    def first_linear(module):
        return next(type(m).__name__ for m in module.modules() if "Linear" in type(m).__name__)

    inner = engine.model.model
    kept = {
        "lm_head": type(engine.model.lm_head).__name__,
        "projector": first_linear(inner.multi_modal_projector),
        "vision_tower": first_linear(inner.vision_tower),
    }
    out["load"] = {
        "load_s": round(load_s, 2),
        "engine_load_s": round(engine.loaded.load_s, 2),
        "estimate_weights_gib": round(est.weights_bytes / 2**30, 2) if est else None,
        "estimate": est.describe() if est else None,
        "allocated_gib": round(torch.cuda.memory_allocated() / 2**30, 2) if device == "cuda" else None,
        # part of allocated_gib: the static KV cache (max_context positions) the load-time check left ready
        "static_kv_cache_gib": round(sum(cache_nbytes(c) for c in engine.decoder._spare) / 2**30, 3),
        "language_model_linears": len(linears),
        "language_model_linears_4bit": len(four_bit),
        "kept_unquantized": kept,
        "decode_path": engine.decoder.path,
        "decode_note": engine.decoder.note,
        "cache_check_rel_diff": engine.cache_check_diff,
        "description": engine.description,
    }
    return engine


class _PlainCuda:
    """A plain transformers user: the processor over the whole conversation, then `model.generate`."""

    def __init__(self, engine):
        self.model, self.processor, self.device = engine.model, engine.processor, engine.adapter.device

    def generate(self, messages, image_bytes: list[bytes], max_new_tokens: int):
        """(new token ids, seconds to the first token, the streamer's token times)."""
        import io

        import torch
        from PIL import Image

        t0 = time.perf_counter()
        text = self.processor.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
        images = [Image.open(io.BytesIO(b)).convert("RGB") for b in image_bytes] or None
        inputs = self.processor(text=text, images=images, return_tensors="pt").to(self.device)
        if "pixel_values" in inputs:
            inputs["pixel_values"] = inputs["pixel_values"].to(self.model.dtype)
        clock = TokenClock()
        with torch.inference_mode():
            ids = self.model.generate(
                **inputs,
                max_new_tokens=max_new_tokens,
                min_new_tokens=max_new_tokens,
                do_sample=False,
                streamer=clock,
            )
        first = clock.times[0] - t0 if clock.times else 0.0
        return ids[0, inputs["input_ids"].shape[1] :].tolist(), first, clock.times


def _ours(engine, messages, images, tokens: int, session_id=None):
    from assistant.core.types import GenerationConfig

    s = engine.generate(
        messages, images, GenerationConfig(max_new_tokens=tokens), session_id, ignore_eos=True
    )
    return s


def _images(photo_list):
    from assistant.core.types import ImageInput
    from tools.images import ImageRef

    return [ImageInput(ImageRef(b)) for b in photo_list]


def _turns(engine, plain: _PlainCuda, photo: bytes, answer_tokens: int) -> list[dict]:
    photo = fresh_bytes(photo, "gpu-bench-turns")
    messages = [user_message("What is shown in this picture?", 1)]
    rows = []
    for t in range(1, 6):
        row = {"turn": t}
        s = _ours(engine, messages, _images([photo]), answer_tokens, session_id="gpu-bench")
        row.update(ttft_reuse_s=s.stats.ttft_s, kv_reused_tokens=s.stats.kv_reused_tokens)
        row.update(
            prompt_tokens=s.stats.tokens_in, image_tokens=s.stats.image_tokens, decode_tps=s.stats.decode_tps
        )
        if t > 1:
            row["ttft_image_cached_s"] = _ours(engine, messages, _images([photo]), 1).stats.ttft_s
            row["ttft_plain_s"] = plain.generate(messages, [photo], 1)[1]
        rows.append({k: round(v, 4) if isinstance(v, float) else v for k, v in row.items()})
        messages += [{"role": "assistant", "content": s.text}, user_message(FOLLOW_UPS[min(t, 4) - 1], 0)]
    engine.drop_session("gpu-bench")
    return rows


def _ratios(out: dict) -> None:
    later = out["turns"][1:]
    out["ttft_reuse_vs_plain"] = [_ratio(r["ttft_plain_s"], r["ttft_reuse_s"]) for r in later]
    out["ttft_reuse_vs_image_cached"] = [_ratio(r["ttft_image_cached_s"], r["ttft_reuse_s"]) for r in later]


def _ratio(a, b):
    return round(a / b, 2) if a and b else None


def _decode(engine, plain: _PlainCuda, photo: bytes, tokens: int) -> dict:
    """Decode tokens/s after the first token: our loop on each decode path vs `generate`, same prompt."""
    from assistant.core.decoding import Decoder

    messages = [user_message("Write a long story about this picture.", 1)]
    res: dict = {}
    chosen = engine.decoder
    paths = ["dynamic", "static"] + (["cuda-graph"] if chosen.adapter.device.type == "cuda" else [])
    try:
        for p in paths:
            engine.decoder = chosen if p == chosen.path else Decoder(engine.adapter, p, engine.max_context)
            _ours(engine, messages, _images([photo]), 4)  # warm-up (and the graph capture)
            s = _ours(engine, messages, _images([photo]), tokens)
            res[f"ours_{p}_tps"] = round(s.stats.decode_tps, 2)
            res[f"ours_{p}_note"] = engine.decoder.note
    finally:
        engine.decoder = chosen
    plain.generate(messages, [photo], 4)
    _, _, times = plain.generate(messages, [photo], tokens)
    res["generate_tps"] = round((len(times) - 1) / (times[-1] - times[0]), 2) if len(times) > 1 else None
    best = max(v for k, v in res.items() if k.endswith("_tps") and k != "generate_tps")
    res["best_vs_generate"] = _ratio(best, res["generate_tps"])
    res["chosen_path"] = chosen.path
    return res


def _vision(engine, photo: bytes) -> dict:
    messages = [user_message("What is this?", 1)]
    data = fresh_bytes(photo, f"gpu-bench-vision-{time.time()}")
    miss = _ours(engine, messages, _images([data]), 1).stats
    hit = _ours(engine, messages, _images([data]), 1).stats
    return {
        "miss_s": round(miss.vision_s, 4),
        "hit_s": round(hit.vision_s, 6),
        "hit_was_hit": hit.embed_cache_hits == 1,
    }


def _exact(engine, photo: bytes) -> dict:
    """Greedy tokens of a second turn with KV reuse vs the same turn recomputed."""
    first = [user_message("What is shown in this picture?", 1)]
    a = _ours(engine, first, _images([photo]), 8, session_id="gpu-bench-exact")
    second = first + [{"role": "assistant", "content": a.text}, user_message("And the colours?", 0)]
    reused = _ours(engine, second, _images([photo]), 16, session_id="gpu-bench-exact")
    fresh = _ours(engine, second, _images([photo]), 16)
    engine.drop_session("gpu-bench-exact")
    same = sum(1 for x, y in zip(reused.token_ids, fresh.token_ids, strict=False) if x == y)
    return {
        "kv_reused_tokens": reused.stats.kv_reused_tokens,
        "tokens_equal": reused.token_ids == fresh.token_ids,
        "leading_tokens_equal": same,
        "load_check_rel_diff": engine.cache_check_diff,
    }


def _small_photo() -> bytes:
    import io

    from PIL import Image

    img = Image.new("RGB", (80, 60), (40, 120, 200))
    img.paste((230, 200, 30), (10, 10, 50, 40))
    buf = io.BytesIO()
    img.save(buf, format="JPEG", quality=92)
    return buf.getvalue()


def _print(out: dict) -> None:
    load, dec = out["load"], out["decode"]
    print(
        f"device: {out['setup']['gpu'] or 'CPU (no CUDA device present)'}; shape {out['shape']}, {out['quantization']}"
    )
    print(
        f"load {load['load_s']} s; weights estimated {load['estimate_weights_gib']} GiB, allocated {load['allocated_gib']} GiB"
    )
    print(
        f"4-bit Linears in the language model: {load['language_model_linears_4bit']}/{load['language_model_linears']}; kept: {load['kept_unquantized']}"
    )
    print(
        f"TTFT turns 2-5, reuse vs plain generate: {out['ttft_reuse_vs_plain']}; vs image cached: {out['ttft_reuse_vs_image_cached']}"
    )
    print(f"decode tok/s: {dec} ")
    print(f"vision miss/hit: {out['vision']}; exact: {out['exact']}")
