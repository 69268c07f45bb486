"""Finding images by what they show: an index over folders of images and hybrid search over it.

`indexer` runs the tools (through the project's tool runner and its on-disk cache, so the index holds
the same evidence the assistant cites) and `records` turns their findings into one document per image;
`store` keeps documents in one SQLite file (FTS5 for BM25, sqlite-vec for sentence embeddings);
`query` reads structured filters out of a query; `retrieve` ranks per modality and fuses late.
"""
