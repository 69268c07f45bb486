"""`launch.py index --ray`: the tools run on a Ray actor pool, one tool set per actor; the driver writes.

The driver plans (hashes, compares tool versions) and writes each image's row in one transaction as it
comes back (`indexer.index_folder`), so the index is exactly what a one-machine run makes and a killed run
resumes the same way. Actors read the images by path: on a cluster, every node sees the folder at the
same path (a shared file system).
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterator

from assistant.distributed import map_actors
from assistant.search.indexer import DocBuilder, IndexConfig, Work


class IndexActor:
    """One tool set (OCR, detector, classifier, colour, metadata) and the sentence encoder."""

    def __init__(self, cfg: dict):
        self.builder = DocBuilder(IndexConfig(**cfg))

    def __call__(self, batch: dict) -> dict:
        out = []
        for payload in batch["payload"]:
            work = Work(**json.loads(payload))
            out.append(json.dumps(self.builder.build(work)))
        return {"payload": out}


def ray_rows(
    work: list[Work], cfg: IndexConfig, address: str | None = None, workers: int | None = None
) -> Iterator[dict]:
    """Each image's row, built on the actor pool, as it finishes."""
    payloads = [json.dumps(dataclasses.asdict(w)) for w in work]
    for payload in map_actors(payloads, IndexActor, {"cfg": dataclasses.asdict(cfg)}, address, workers):
        yield json.loads(payload)
