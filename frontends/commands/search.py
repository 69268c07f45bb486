"""Find indexed images by what they show: words read on them, objects and counts, colours, money, dates.

  launch.py search "the sign that says EXIT"
  launch.py search "receipt over 20" --top 5 --json
  launch.py search "two people and a dog" --index PATH

Hybrid retrieval fused late (reciprocal-rank fusion): BM25 over the OCR text and over the labels, sentence
embeddings, and the structured filters the query states ("two people", "green", "over 20 euros", "in
2014"); CLIP image embeddings too when the index has them. Each hit shows every modality's score and rank
and why it matched, with the evidence ids (`ocr:7`, `det:2`) `ask --search` cites.
"""

from __future__ import annotations

import argparse

ONE_SHOT = True


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("query", help="what to find, in quotes")
    p.add_argument(
        "--index", default=None, help="the index file (default: ~/.cache/grounded-vlm/index/images.sqlite)"
    )
    p.add_argument("--top", type=int, default=10, help="how many hits (default: 10)")
    p.add_argument("--json", action="store_true", help="print the hits as one JSON object")
    p.add_argument(
        "--clip-model",
        default=None,
        help="the CLIP model the index was built with (default: the index's own)",
    )


def run(args: argparse.Namespace) -> int:
    import json

    from assistant.search.retrieve import Searcher
    from assistant.search.store import IndexStore
    from frontends.commands.index import default_index
    from frontends.runtime import eprint
    from tools.errors import BadInputError

    if not args.query.strip():
        raise BadInputError("the query is empty")
    store = IndexStore(args.index or default_index(), readonly=True)
    try:
        result = Searcher(store, clip=_clip(store, args.clip_model)).search(args.query, top=args.top)
    finally:
        store.close()
    if args.json:
        print(json.dumps(result.to_dict(), ensure_ascii=False))
        return 0
    if not result.hits:
        eprint(f"no image matches {args.query!r}")
        return 0
    for n, hit in enumerate(result.hits, 1):
        mods = "  ".join(f"{m} {hit.scores[m]:.2f} (#{hit.ranks[m]})" for m in hit.scores)
        print(f"{n:2d}. {hit.path}\n    score {hit.score:.4f}: {mods}")
        for r in hit.reasons:
            print(f"    {r.modality}: {r.text[:140]}" + (f" [{', '.join(r.ids[:6])}]" if r.ids else ""))
    eprint(f"{len(result.hits)} hit(s) in {result.seconds * 1000:.0f} ms")
    return 0


def _clip(store, model: str | None):
    model = model or store.meta("clip_model")
    if not model:
        return None
    from assistant.search.clip import ClipEmbedder

    return ClipEmbedder(model)
