"""Which embedded store the image index lives in, measured: SQLite (FTS5 + sqlite-vec), LanceDB, Qdrant local.

    python -m bench.search_stores --rows 10000 100000 --json bench-results/search_stores.json

Each store gets the same synthetic rows (a few words of text, a 384-float unit vector, as the index
stores per image) and answers the same queries: the k nearest vectors and, where the store has one, a
full-text (BM25) match. Reported per store and size: load time, nearest-vector and full-text p50/p95,
the size on disk. A store whose package is missing is skipped with the reason.
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np

WORDS = [
    "exit",
    "bakery",
    "receipt",
    "total",
    "euro",
    "parking",
    "sign",
    "horse",
    "dog",
    "bus",
    "train",
    "ticket",
    "hotel",
    "coffee",
    "bank",
]
DIM = 384


def _rows(n: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    vecs = rng.standard_normal((n, DIM)).astype(np.float32)
    vecs /= np.linalg.norm(vecs, axis=1, keepdims=True)
    texts = [" ".join(rng.choice(WORDS, 6)) + f" item{i % 997}" for i in range(n)]
    return vecs, texts


def _pct(xs: list[float], q: float) -> float:
    return float(np.percentile(np.array(xs) * 1000, q))


def _timed(fn, queries) -> dict:
    times = []
    for q in queries:
        t0 = time.perf_counter()
        fn(q)
        times.append(time.perf_counter() - t0)
    return {"p50_ms": round(_pct(times, 50), 2), "p95_ms": round(_pct(times, 95), 2)}


def _size(path: Path) -> int:
    return (
        sum(p.stat().st_size for p in path.rglob("*") if p.is_file())
        if path.is_dir()
        else path.stat().st_size
    )


def sqlite_store(root: Path, vecs, texts, queries) -> dict:
    import sqlite_vec

    from assistant.search.store import sqlite3

    path = root / "index.sqlite"
    db = sqlite3.connect(path)
    db.enable_load_extension(True)
    sqlite_vec.load(db)
    db.execute("create virtual table t using fts5(body)")
    db.execute(f"create virtual table v using vec0(embedding float[{DIM}] distance_metric=cosine)")
    t0 = time.perf_counter()
    with db:
        db.executemany("insert into t(rowid, body) values (?, ?)", ((i + 1, s) for i, s in enumerate(texts)))
        db.executemany(
            "insert into v(rowid, embedding) values (?, ?)",
            ((i + 1, v.tobytes()) for i, v in enumerate(vecs)),
        )
    load = time.perf_counter() - t0
    knn = _timed(
        lambda q: db.execute(
            "select rowid from v where embedding match ? and k = 50", (q.tobytes(),)
        ).fetchall(),
        queries,
    )
    fts = _timed(
        lambda q: db.execute(
            "select rowid, bm25(t) from t where t match 'bakery receipt' order by rank limit 50"
        ).fetchall(),
        queries,
    )
    db.close()
    return {"load_s": round(load, 2), "knn": knn, "fts": fts, "bytes": _size(path)}


def lance_store(root: Path, vecs, texts, queries) -> dict:
    import lancedb
    import pyarrow as pa

    db = lancedb.connect(str(root / "lance"))
    t0 = time.perf_counter()
    table = pa.table({"id": np.arange(len(texts)), "body": texts, "vector": list(vecs)})
    tbl = db.create_table("t", table)
    tbl.create_fts_index("body")
    load = time.perf_counter() - t0
    knn = _timed(lambda q: tbl.search(q).metric("cosine").limit(50).to_list(), queries)
    fts = _timed(lambda q: tbl.search("bakery receipt", query_type="fts").limit(50).to_list(), queries)
    return {"load_s": round(load, 2), "knn": knn, "fts": fts, "bytes": _size(root / "lance")}


def qdrant_store(root: Path, vecs, texts, queries) -> dict:
    from qdrant_client import QdrantClient, models

    client = QdrantClient(path=str(root / "qdrant"))
    client.create_collection(
        "t", vectors_config=models.VectorParams(size=DIM, distance=models.Distance.COSINE)
    )
    t0 = time.perf_counter()
    for start in range(0, len(texts), 1000):
        client.upsert(
            "t",
            [
                models.PointStruct(id=i, vector=vecs[i].tolist(), payload={"body": texts[i]})
                for i in range(start, min(start + 1000, len(texts)))
            ],
        )
    load = time.perf_counter() - t0
    knn = _timed(lambda q: client.query_points("t", query=q.tolist(), limit=50), queries)
    client.close()
    # Qdrant has no BM25 over text in local mode: sparse vectors made outside it would be needed.
    return {"load_s": round(load, 2), "knn": knn, "fts": None, "bytes": _size(root / "qdrant")}


STORES = {"sqlite": sqlite_store, "lancedb": lance_store, "qdrant": qdrant_store}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--rows", type=int, nargs="+", default=[10_000])
    p.add_argument("--queries", type=int, default=40)
    p.add_argument("--stores", nargs="+", default=list(STORES), choices=list(STORES))
    p.add_argument("--json", default=None, help="write the figures here")
    args = p.parse_args(argv)
    out = {}
    for n in args.rows:
        vecs, texts = _rows(n)
        queries = list(_rows(args.queries, seed=1)[0])
        for name in args.stores:
            root = Path(tempfile.mkdtemp(prefix=f"stores-{name}-"))
            try:
                res = STORES[name](root, vecs, texts, queries)
            except ImportError as e:
                res = {"skipped": str(e)}
            finally:
                shutil.rmtree(root, ignore_errors=True)
            out[f"{name}@{n}"] = res
            print(f"{name:8s} {n:>7d} rows: {json.dumps(res)}", flush=True)
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(out, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
