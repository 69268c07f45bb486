"""`launch.py ask --search QUERY "QUESTION"`: answer a question over the images a search finds.

The top hits of the index (`--search-top`, default 3) become the turn's images, in rank order; what
was found, and why, goes to stderr (with the index's evidence ids), and the answer cites the evidence of
the turn itself, read from the same tool cache the index filled.
"""

from __future__ import annotations

import argparse


def add_search_args(parser: argparse.ArgumentParser) -> None:
    g = parser.add_argument_group("search (answer over the images a search finds)")
    g.add_argument(
        "--search", default=None, metavar="QUERY", help="find the images to ask about in the index"
    )
    g.add_argument(
        "--index", default=None, help="the index file (default: ~/.cache/grounded-vlm/index/images.sqlite)"
    )
    g.add_argument(
        "--search-top", type=int, default=3, metavar="K", help="ask about the top K hits (default: 3)"
    )


def search_images(args: argparse.Namespace) -> list:
    """The top hits' images, decoded (a moved file is a one-line error); [] without --search."""
    if not getattr(args, "search", None):
        return []
    from assistant.search.retrieve import Searcher
    from assistant.search.store import IndexStore
    from frontends.runtime import eprint
    from frontends.ui_search import default_index
    from tools.errors import BadInputError
    from tools.images import ImageRef

    store = IndexStore(args.index or default_index(), readonly=True)
    try:
        result = Searcher(store).search(args.search, top=max(1, args.search_top))
    finally:
        store.close()
    if not result.hits:
        raise BadInputError(f"no indexed image matches {args.search!r}")
    images = []
    for n, hit in enumerate(result.hits, 1):
        why = "; ".join(f"{r.modality}: {r.text[:80]} [{', '.join(r.ids[:4])}]" for r in hit.reasons)
        eprint(f"image {n}: {hit.path} (score {hit.score:.3f}) {why}")
        ref = ImageRef.from_path(hit.path)
        ref.size  # noqa: B018 - decode now: a file gone since indexing fails before the model loads
        images.append(ref)
    return images
