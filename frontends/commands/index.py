"""Index a folder of images so that `launch.py search` can find them by what they show.

  launch.py index DIR [--index PATH]            # OCR lines, detections, labels, colours, metadata, embeddings
  launch.py index DIR --ray [ADDRESS]           # the same on Ray Data (no ADDRESS: a local cluster)
  launch.py index DIR --clip-model openai/clip-vit-base-patch32   # CLIP image embeddings as well (needs the hub)

The index is one SQLite file (default: ~/.cache/grounded-vlm/index/images.sqlite). It is incremental by
content hash and tool version: run it again and only new or changed images, or what a changed tool
produced, are indexed. Each image is written whole in one transaction: a run killed at any point (even
kill -9) is resumed by running the same command again, with nothing lost or doubled. The tools run
through the project's tool cache on disk, the one `ask --tool-cache-disk` reads.
"""

from __future__ import annotations

import argparse

from frontends.batch_ray import add_ray_args
from frontends.cliargs import add_dataclass_args

ONE_SHOT = True


def default_index() -> str:
    from assistant.search.store import default_path

    return str(default_path())


def add_arguments(p: argparse.ArgumentParser) -> None:
    from assistant.search.indexer import IndexConfig

    p.add_argument("folder", metavar="DIR", help="folder of images (searched recursively)")
    p.add_argument(
        "--index", default=None, help="the index file (default: ~/.cache/grounded-vlm/index/images.sqlite)"
    )
    add_ray_args(p, verb="run")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--json", action="store_true", help="print the summary as one JSON object on stdout")
    add_dataclass_args(p.add_argument_group("what is indexed"), IndexConfig)


def run(args: argparse.Namespace) -> int:
    import dataclasses
    import json
    import sys

    from assistant.search.indexer import IndexConfig, index_folder
    from assistant.search.store import IndexStore
    from frontends.cliargs import dataclass_from_args
    from frontends.runtime import eprint

    cfg = dataclass_from_args(IndexConfig, args)
    store = IndexStore(args.index or default_index())
    rows = None
    if args.ray is not None:
        from assistant.search.ray_index import ray_rows

        def rows(work, keys):
            return ray_rows(work, cfg, address=args.ray, workers=args.workers)

    try:
        summary = index_folder(args.folder, store, cfg, progress=not args.no_progress, rows=rows)
    finally:
        store.close()
    for line in summary.lines():
        eprint(line)
    for path, errs in list(summary.errors.items())[:5]:
        eprint(f"  {path}: " + "; ".join(f"{t}: {e}" for t, e in errs.items()))
    if args.json:
        json.dump(dataclasses.asdict(summary), sys.stdout)
        print()
    return 0
