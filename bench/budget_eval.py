"""Image tokens the budget planner saves on reading questions: a crop of the text vs the whole image.

On the generated set of `synthetic/render.py` (street signs on busy backgrounds, till receipts), each image
gets a reading question ("What does the sign say?", "What is the total?", "How much was the X?").
The real OCR tool reads the image; the planner turns that evidence into a view: the whole image
(strategy "full", no budget: the baseline) or its own choice with the model's default budgets
(strategy "auto": a crop around the words that answer the question). For each
view we record the image tokens the engine says it costs, and whether the answer can be read from
the pixels the model is actually given: the view resized the way the family's processor resizes it
(LLaVA: one square; LLaVA-NeXT: the best AnyRes canvas), read again by the same OCR. That is the
accuracy a perfect reader of those pixels could reach; the question is whether cropping loses it.

Families are priced by the model core on tiny models that carry real processor settings:
LLaVA-1.5 (one 336 px view, 576 tokens) and LLaVA-NeXT (336 px AnyRes tiles, LLaVA-v1.6's grid).
Run: `python launch.py bench budget --json OUT.json [--signs 8 --receipts 6]` (or `python -m bench.budget_eval`).
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import time
from pathlib import Path

from assistant.core.local_models import LocalModel, VisionSpec

# LLaVA-1.5's input (one 336 px view of 14 px patches: 576 tokens) on a tiny random tower: the token
# costs are the processor's, so the tower's size does not matter.
VISION_336 = VisionSpec(
    image_size=336, patch_size=14, hidden_size=32, layers=1, heads=2, intermediate_size=64
)
FAMILIES = {
    "llava-1.5": LocalModel(
        "budget-eval-llava-1.5", "tiny random LLaVA priced like LLaVA-1.5", "llava", vision=VISION_336
    ),
    "llava-next": LocalModel(
        "budget-eval-llava-next",
        "tiny random LLaVA-NeXT priced like llava-v1.6 (336 px AnyRes tiles)",
        "llava_next",
        vision=VISION_336,
        anyres_grid=((1, 2), (2, 1), (2, 2), (3, 1), (1, 3)),  # llava-v1.6's canvases
    ),
}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--json", dest="json_out", default="budget_eval.json", help="where to write the figures"
    )
    parser.add_argument("--signs", type=int, default=6, help="rendered street signs")
    parser.add_argument("--receipts", type=int, default=4, help="rendered receipts (two questions each)")


def run(args) -> int:
    from assistant.budget import BudgetConfig, BudgetPlanner
    from assistant.core import load_engine, local_models
    from assistant.core.config import ModelConfig
    from tools.evidence import EvidenceStore
    from tools.images import ImageRef
    from tools.ocr import OCRConfig, OCRTool

    engines = {
        family: load_engine(ModelConfig(model=str(local_models.ensure(spec)), device="cpu"))
        for family, spec in FAMILIES.items()
    }
    # A busy machine must not turn a slow read into a miss: generous limits per call and per request.
    ocr = OCRTool(OCRConfig(call_timeout_s=180.0))
    ocr.timeout_s = 600.0
    ocr.setup()
    read_cache: dict[str, list] = {}

    def read(ref: ImageRef) -> list:  # the same view (a receipt's full image, asked twice) is read once
        if ref.sha256 not in read_cache:
            read_cache[ref.sha256] = ocr.forward(ref, **ocr.validate({}))
        return read_cache[ref.sha256]

    cases = _cases(args.signs, args.receipts)
    rows = []
    t0 = time.perf_counter()
    for i, (kind, synth, question, answer) in enumerate(cases):
        ref = ImageRef.from_pil(synth.image, source=f"{kind}.png")
        store = EvidenceStore()
        store.add("ocr", ref.id, read(ref))
        for family, engine in engines.items():
            row = {"case": i, "kind": kind, "question": question, "answer": answer, "family": family}
            for strategy in ("full", "auto"):
                # The baseline is the whole image, unbounded; the planner spends its default budgets.
                unbounded = {"image_tokens_per_turn": 10**9, "image_tokens_per_conversation": 10**9}
                cfg = BudgetConfig(strategy="full", **unbounded) if strategy == "full" else BudgetConfig()
                planner = BudgetPlanner(engine, cfg)
                plan = planner.plan_turn(question, [ref], store.all())
                d = plan.decision(ref.id)
                view = _model_view(engine, plan.inputs.get(ref.id))
                seen = " ".join(f.text for f in read(ImageRef.from_pil(view))) if view else ""
                row[strategy] = {"choice": d.choice, "tokens": d.tokens, "correct": _found(answer, seen)}
            rows.append(row)
        print(
            f"[{i + 1}/{len(cases)}] {kind}: {question!r} -> "
            + "; ".join(
                f"{r['family']} whole image {r['full']['tokens']} ({'ok' if r['full']['correct'] else 'miss'}) / "
                f"{r['auto']['choice']} {r['auto']['tokens']} ({'ok' if r['auto']['correct'] else 'miss'})"
                for r in rows[-len(engines) :]
            ),
            file=sys.stderr,
        )
    out = {"families": {f: _summary([r for r in rows if r["family"] == f]) for f in engines}, "cases": rows}
    for family, engine in engines.items():
        defaults = BudgetPlanner(engine)
        out["families"][family]["default_budgets"] = {
            "per_turn": defaults.per_turn,
            "per_conversation": defaults.per_conversation,
        }
    out["seconds"] = round(time.perf_counter() - t0, 1)
    Path(args.json_out).write_text(json.dumps(out, indent=1))
    for family, s in out["families"].items():
        print(
            f"{family}: image tokens full {s['tokens_full']} -> planner {s['tokens_planner']} "
            f"(saved {s['tokens_saved_share']:.0%}); accuracy full {s['accuracy_full']:.2f}, "
            f"planner {s['accuracy_planner']:.2f} over {s['n']} reading questions"
        )
    return 0


def _cases(n_signs: int, n_receipts: int):
    from synthetic.render import render_receipt, render_sign

    cases = []
    for i in range(n_signs):
        s = render_sign(seed=100 + i, size=(1280, 960))
        cases.append(("sign", s, "What does the sign say?", " ".join(s.lines)))
    for i in range(n_receipts):
        r = _on_table(render_receipt(seed=200 + i))
        cases.append(("receipt", r, "What is the total on the receipt?", r.total))
        name, price = r.items[i % len(r.items)]
        cases.append(("receipt", r, f"How much was the {name.lower()}?", price))
    return cases


def _on_table(receipt):
    """A receipt photographed on a table: the paper takes a part of a larger frame, as in a real photo."""
    from PIL import Image

    table = Image.new("RGB", (1280, 1280), (92, 64, 42))
    table.paste(receipt.image, (300, 120))
    receipt.image = table
    return receipt


def _found(answer: str, read: str) -> bool:
    """Every word of the answer appears in what was read (case and punctuation aside)."""
    norm = lambda s: re.findall(r"[a-z0-9]+(?:\.[0-9]+)?", s.lower())  # noqa: E731
    got = set(norm(read))
    return all(w in got for w in norm(answer))


def _model_view(engine, image):
    """The pixels the family's processor gives the model for this input, as one PIL image."""
    if image is None:
        return None
    from transformers.image_processing_utils import select_best_resolution

    from assistant.core.families import prepare_pil

    pil = prepare_pil(image)
    ip = engine.processor.image_processor
    pins = getattr(ip, "image_grid_pinpoints", None)
    if pins:  # AnyRes: the best canvas, aspect kept (the base view is a coarser copy of it)
        h, w = select_best_resolution((pil.height, pil.width), pins)
        scale = min(w / pil.width, h / pil.height)
        return pil.resize((max(1, round(pil.width * scale)), max(1, round(pil.height * scale))))
    side = ip.crop_size["height"]  # CLIP: shortest edge to `side`, then the centre square
    scale = side / min(pil.size)
    pil = pil.resize((max(side, round(pil.width * scale)), max(side, round(pil.height * scale))))
    left, top = (pil.width - side) // 2, (pil.height - side) // 2
    return pil.crop((left, top, left + side, top + side))


def _summary(rows: list[dict]) -> dict:
    n = len(rows)
    full = sum(r["full"]["tokens"] for r in rows)
    auto = sum(r["auto"]["tokens"] for r in rows)
    return {
        "n": n,
        "tokens_full": full,
        "tokens_planner": auto,
        "tokens_saved": full - auto,
        "tokens_saved_share": round(1 - auto / full, 4) if full else 0.0,
        "accuracy_full": round(sum(r["full"]["correct"] for r in rows) / n, 4) if n else 0.0,
        "accuracy_planner": round(sum(r["auto"]["correct"] for r in rows) / n, 4) if n else 0.0,
        "choices": {
            c: sum(r["auto"]["choice"] == c for r in rows) for c in ("full", "reduced", "crop", "text")
        },
    }


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_arguments(parser)
    sys.exit(run(parser.parse_args()))
