"""How well search finds images, per modality and fused; how fast it indexes and answers; how big it is.

    python launch.py bench search --evalsets DIR --index bench-results/search.sqlite --json bench-results/search.json
    python launch.py bench search --evalsets DIR --scale 10000 100000      # search latency over synthetic rows
    python launch.py bench search --evalsets DIR --fresh                   # index throughput without the tool cache

DIR holds the real-dev and real-dev-2 sets; the queries (`bench/data/search_queries.jsonl`: id, kind,
query, targets as SET/FILE) name their target images by set and file name. The index over both sets is
built (or brought up to date) first. Each query runs with one modality at a time and fused; a query is
found at k when any of its targets is among the first k hits. Reported per set and overall: recall@1,
recall@5 and MRR per modality (text: BM25 over OCR lines; labels: BM25 over classes, ImageNet labels and
colours; embed: MiniLM sentence embeddings; filters: the query's structured filters) and fused; the
rule it is held to: fused MRR above every single modality's.

`--scale N ...` copies the real images' rows into a synthetic index of N images (new hashes, vectors
jittered, so nothing is a duplicate) and times the same queries, warm: p50/p95 per size.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np

from assistant.search.indexer import IndexConfig, index_folder
from assistant.search.retrieve import SearchConfig, Searcher
from assistant.search.store import IndexStore, unpack_doc

QUERIES = Path(__file__).parent / "data" / "search_queries.jsonl"
SETS = ("real-dev", "real-dev-2")
SINGLE = ("text", "labels", "embed", "filters")


def load_queries(path: str | Path = QUERIES) -> list[dict]:
    return [json.loads(line) for line in Path(path).read_text().splitlines() if line.strip()]


def target_key(path: str) -> str:
    """'…/real-dev-2/d2_01_x.jpg' -> 'real-dev-2/d2_01_x.jpg' (set and file name)."""
    p = Path(path)
    return f"{p.parent.name}/{p.name}"


def rank_of(hits: list, targets: list[str]) -> int | None:
    for n, hit in enumerate(hits, 1):
        if {target_key(p) for p in hit.paths} & set(targets):
            return n
    return None


def scores(ranks: list[int | None]) -> dict:
    n = len(ranks) or 1
    return {
        "recall@1": round(sum(r == 1 for r in ranks if r) / n, 3),
        "recall@5": round(sum(r <= 5 for r in ranks if r) / n, 3),
        "mrr": round(sum(1 / r for r in ranks if r) / n, 3),
        "queries": len(ranks),
    }


def evaluate(store: IndexStore, queries: list[dict], cfg: SearchConfig | None = None) -> dict:
    """Per modality and fused: scores per set and overall, and each query's rank."""
    base = cfg or SearchConfig()
    runs = {m: dataclasses.replace(base, modalities=(m,)) for m in SINGLE}
    runs["fused"] = base
    out = {"per_query": {}}
    for name, c in runs.items():
        searcher = Searcher(store, c)
        ranks = {}
        for q in queries:
            ranks[q["id"]] = rank_of(searcher.search(q["query"], top=20).hits, q["targets"])
        table = {"all": scores(list(ranks.values()))}
        for s in SETS:
            table[s] = scores([ranks[q["id"]] for q in queries if q["targets"][0].startswith(s + "/")])
        out[name] = table
        out["per_query"][name] = ranks
    out["fusion_beats_each"] = all(out["fused"]["all"]["mrr"] > out[m]["all"]["mrr"] for m in SINGLE)
    return out


def synthetic_index(real: IndexStore, path: Path, n: int, seed: int = 0) -> float:
    """An index of `n` images made of the real ones' rows (new hashes and paths, vectors jittered);
    returns the seconds it took to write."""
    rng = np.random.default_rng(seed)
    src = real.db.execute("select id, doc from images").fetchall()
    vecs = {}
    for vid, iid, source, text, eids in real.db.execute(
        "select id, image_id, source, text, eids from vectors"
    ):
        blob = real.db.execute("select embedding from vec where rowid = ?", (vid,)).fetchone()[0]
        vecs.setdefault(iid, []).append(
            (source, text, json.loads(eids), np.frombuffer(blob, dtype=np.float32))
        )
    out = IndexStore(path)
    t0 = time.perf_counter()
    for k in range(n):
        iid, doc_json = src[k % len(src)]
        doc = unpack_doc(doc_json)
        doc.sha256 = f"{k:064x}"
        doc.path = f"/synthetic/{k:07d}_{Path(doc.path).name}"
        rows = []
        for source, text, eids, v in vecs.get(iid, []):
            j = v + rng.normal(0, 0.02, v.shape).astype(np.float32)
            rows.append((source, text, eids, (j / np.linalg.norm(j)).astype(np.float32).tobytes()))
        out.write(doc, rows, files=[(doc.path, 0, 0.0)])
    seconds = time.perf_counter() - t0
    out.checkpoint()
    out.close()
    return seconds


def latency(store: IndexStore, queries: list[dict], repeats: int = 3) -> dict:
    """Wall time per search, warm, and the CPU time the searching thread spent (what a quiet machine
    would wait), with the machine's load average while it ran (this machine is shared)."""
    searcher = Searcher(store)
    searcher.search("warm up the encoder")
    wall, cpu = [], []
    load0 = os.getloadavg()[0]
    for _ in range(repeats):
        for q in queries:
            c0 = time.thread_time()
            wall.append(searcher.search(q["query"], top=10).seconds * 1000)
            cpu.append((time.thread_time() - c0) * 1000)
    return {
        "p50_ms": _pct(wall, 50),
        "p95_ms": _pct(wall, 95),
        "cpu_p50_ms": _pct(cpu, 50),
        "cpu_p95_ms": _pct(cpu, 95),
        "searches": len(wall),
        "load_avg": round((load0 + os.getloadavg()[0]) / 2, 1),
    }


def _pct(xs: list[float], q: float) -> float:
    return round(float(np.percentile(xs, q)), 1)


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--evalsets", required=True, help="folder holding real-dev/ and real-dev-2/")
    p.add_argument("--index", default=None, help="the index of both sets (default: a temporary file)")
    p.add_argument("--queries", default=str(QUERIES), help="the queries file")
    p.add_argument("--scale", type=int, nargs="*", default=[], help="synthetic index sizes to time search on")
    p.add_argument(
        "--fresh", action="store_true", help="index into a new file without the tool cache (throughput)"
    )
    p.add_argument("--json", default=None, help="write the figures here")


def run(args: argparse.Namespace) -> int:
    measure(args)
    return 0


def measure(args: argparse.Namespace) -> dict:
    queries = load_queries(args.queries)
    tmp = Path(tempfile.mkdtemp(prefix="search-bench-"))
    index = Path(args.index) if args.index and not args.fresh else tmp / "real.sqlite"
    store = IndexStore(index)
    report: dict = {"queries": len(queries), "index": {}}
    cfg = IndexConfig(tool_cache_disk=not args.fresh)
    for s in SETS:
        summary = index_folder(Path(args.evalsets) / s, store, cfg, progress=False)
        report["index"][s] = {"indexed": summary.indexed, "seconds": round(summary.wall_s, 1)}
        if summary.indexed:
            report["index"][s]["images_per_min"] = round(summary.images_per_min, 1)
    report["index"]["images"] = store.count()
    report["index"]["bytes_per_image"] = int(store.size_bytes() / max(1, store.count()))
    report["retrieval"] = evaluate(store, queries)
    report["latency"] = {str(store.count()): latency(store, queries)}
    for n in args.scale:
        path = tmp / f"synthetic-{n}.sqlite"
        write_s = synthetic_index(store, path, n)
        big = IndexStore(path, readonly=True)
        report["latency"][str(n)] = {
            **latency(big, queries, repeats=1),
            "bytes_per_image": int(big.size_bytes() / n),
            "write_s": round(write_s, 1),
        }
        big.close()
        path.unlink(missing_ok=True)
    store.close()
    shutil.rmtree(tmp, ignore_errors=True)
    print_report(report)
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(report, indent=1))
    return report


def print_report(report: dict) -> None:
    r = report["retrieval"]
    print(f"{report['queries']} queries over {report['index']['images']} images")
    print(f"{'modality':10s} " + "  ".join(f"{s + ' R@1/R@5/MRR':>28s}" for s in ("all", *SETS)))
    for m in (*SINGLE, "fused"):
        cells = [
            f"{r[m][s]['recall@1']:.3f} / {r[m][s]['recall@5']:.3f} / {r[m][s]['mrr']:.3f}"
            for s in ("all", *SETS)
        ]
        print(f"{m:10s} " + "  ".join(f"{c:>28s}" for c in cells))
    print(f"fused beats each modality on MRR: {r['fusion_beats_each']}")
    for n, lat in report["latency"].items():
        print(
            f"search over {n} images: p50 {lat['p50_ms']} ms, p95 {lat['p95_ms']} ms (CPU p50 {lat['cpu_p50_ms']} ms,"
            f" p95 {lat['cpu_p95_ms']} ms; load average {lat['load_avg']} on {os.cpu_count()} CPUs)"
        )
    print(f"index: {report['index']}")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_arguments(p)
    return run(p.parse_args(argv))


if __name__ == "__main__":
    raise SystemExit(main())
