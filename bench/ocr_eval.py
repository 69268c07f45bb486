"""OCR accuracy on the rendered sets (synthetic.render): our OCRTool against raw Tesseract on the same images.

For every set (signs, receipts, paragraphs, rotated, small text, light-on-dark, injection) it reports
word recall (ground-truth words read, at the right place), word precision (words returned that are real),
images fully read (every word), and for our tool the latency p50/p95. The baselines are Tesseract with
default settings and with `--psm 6`, on the unchanged RGB image, as the command line would run it.

    python -m bench.ocr_eval [--out bench-results/ocr_eval.json] [--signs 8] [--engines auto tesseract rapid]

"ours" is the OCR tool's default (both engines fused); "ours_tesseract" and "ours_rapid" are one engine each.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from dataclasses import dataclass
from pathlib import Path

from synthetic import render as synth
from tools.ocr_layout import clean_text


@dataclass
class Tally:
    """Counts for one (set, reader) pair."""

    gt_words: int = 0
    found: int = 0  # ground-truth words matched by a returned word
    returned: int = 0  # words returned
    correct: int = 0  # returned words that match some ground-truth word
    images: int = 0
    full: int = 0  # images with every ground-truth word matched

    def row(self) -> dict:
        return {
            "images": self.images,
            "fully_read": self.full,
            "word_recall": round(self.found / max(1, self.gt_words), 3),
            "word_precision": round(self.correct / max(1, self.returned), 3),
            "gt_words": self.gt_words,
            "returned_words": self.returned,
        }


def eval_sets(n_signs: int = 8) -> dict[str, list[synth.SynthImage]]:
    """The rendered evaluation sets (deterministic)."""
    return {
        "signs": synth.sign_set(n_signs, seed=0),
        "signs_hard": synth.sign_set(n_signs, seed=0, hard=True),
        "receipts": [synth.render_receipt(s) for s in range(3)],
        "paragraphs": [synth.render_paragraph(s, face=f) for s, f in enumerate(("serif", "sans", "mono"))],
        "rotated": [synth.render_rotated(a, seed=i) for i, a in enumerate((90, 180, 270, 4, -6))],
        "small": [synth.render_small_text(s, size=z) for s, z in enumerate((8, 9, 9, 10, 11))],
        "light_on_dark": [
            synth.render_light_on_dark(s, face=f) for s, f in enumerate(("sans", "serif", "mono"))
        ],
        "injection": [synth.render_injection(st) for st in ("sign", "note", "receipt")],
    }


def norm(text: str) -> str:
    return clean_text(text).lower()


def score(truth: synth.SynthImage, words: list[tuple[str, tuple]], t: Tally) -> None:
    """Match returned (text, box) words to ground truth: same text, and the box centre inside the truth box."""

    def inside(box, gt):
        cx, cy = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2
        pad = 0.25 * (gt[3] - gt[1])
        return gt[0] - pad <= cx <= gt[2] + pad and gt[1] - pad <= cy <= gt[3] + pad

    words = [(norm(x), b) for x, b in words if norm(x)]
    used = set()
    for g in truth.words:
        hit = next(
            (i for i, (x, b) in enumerate(words) if i not in used and x == norm(g.text) and inside(b, g.box)),
            None,
        )
        if hit is not None:
            used.add(hit)
    t.gt_words += len(truth.words)
    t.found += len(used)
    t.returned += len(words)
    t.correct += len(used)
    t.images += 1
    t.full += len(used) == len(truth.words)


def raw_tesseract(image, psm: int | None) -> list[tuple[str, tuple]]:
    """Tesseract as a user would run it: the RGB image as is, default settings or one --psm."""
    import pytesseract

    data = pytesseract.image_to_data(
        image, config="" if psm is None else f"--psm {psm}", output_type=pytesseract.Output.DICT, timeout=60
    )
    return [
        (x, (left, top, left + w, top + h))
        for x, c, left, top, w, h in zip(
            data["text"], data["conf"], data["left"], data["top"], data["width"], data["height"], strict=True
        )
        if str(x).strip() and float(c) >= 0
    ]


def _cpu_s() -> float:
    """CPU seconds used by this process and its finished children (Tesseract): a latency measure that
    does not depend on how busy the machine's other users keep the cores."""
    import resource

    me, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime


def run(
    n_signs: int = 8,
    out: str | Path | None = "bench-results/ocr_eval.json",
    sets: list[str] | None = None,
    baselines: bool = True,
    engines: tuple[str, ...] = ("auto",),
) -> dict:
    """Evaluate every set with every reader; returns (and writes) {set: {reader: figures}}."""
    from tools.images import ImageRef
    from tools.ocr import OCRTool

    os.environ.setdefault("OMP_THREAD_LIMIT", "1")
    tool = OCRTool()
    readers = {("ours" if e == "auto" else f"ours_{e}"): e for e in engines}
    if baselines:
        readers["tesseract_default"] = lambda im: raw_tesseract(im, None)
        readers["tesseract_psm6"] = lambda im: raw_tesseract(im, 6)
    result: dict = {}
    for set_name, images in eval_sets(n_signs).items():
        if sets and set_name not in sets:
            continue
        result[set_name] = {}
        for reader, fn in readers.items():
            tally, times, cpu = Tally(), [], []
            for s in images:
                t0, c0 = time.perf_counter(), _cpu_s()
                if isinstance(fn, str):
                    found = [
                        (f.text, f.box)
                        for f in tool(ImageRef.from_pil(s.image), engine=fn)
                        if f.kind == "word"
                    ]
                else:
                    found = fn(s.image)
                times.append(time.perf_counter() - t0)
                cpu.append(_cpu_s() - c0)
                score(s, found, tally)
            row = tally.row()
            row["latency_p50_s"] = round(statistics.median(times), 3)
            row["latency_max_s"] = round(max(times), 3)
            row["cpu_p50_s"] = round(statistics.median(cpu), 3)
            result[set_name][reader] = row
    if out:
        Path(out).parent.mkdir(parents=True, exist_ok=True)
        Path(out).write_text(json.dumps(result, indent=2))
    return result


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", default="bench-results/ocr_eval.json", help="where to write the JSON figures")
    p.add_argument("--signs", type=int, default=8, help="how many rendered signs to read")
    p.add_argument("--sets", nargs="*", help="only these sets (default: all)")
    p.add_argument("--ours-only", action="store_true", help="skip the raw Tesseract baselines")
    p.add_argument(
        "--engines",
        nargs="+",
        default=["auto"],
        choices=["auto", "tesseract", "rapid"],
        help="OCR tool engines",
    )
    args = p.parse_args(argv)
    result = run(args.signs, args.out, args.sets, baselines=not args.ours_only, engines=tuple(args.engines))
    print(f"{'set':<14} {'reader':<18} {'full':>6} {'recall':>7} {'prec':>6} {'p50 s':>7} {'cpu p50':>8}")
    for set_name, rows in result.items():
        for reader, r in rows.items():
            full = f"{r['fully_read']}/{r['images']}"
            print(
                f"{set_name:<14} {reader:<18} {full:>6} {r['word_recall']:>7.3f} {r['word_precision']:>6.3f} {r['latency_p50_s']:>7.2f} {r['cpu_p50_s']:>8.2f}"
            )
    if args.out:
        print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
