"""Hybrid retrieval over the image index: one ranking per modality, fused late.

Modalities, each ranking the images on its own:
- `text`: BM25 (FTS5) of the query's words over the OCR lines; a quoted phrase must be there;
- `labels`: BM25 over the labels: detector classes, ImageNet labels, colour names;
- `embed`: cosine similarity of the query's sentence embedding (all-MiniLM-L6-v2) to the image's
  vectors (its text, its prominent lines, its labels in words), the best one;
- `filters`: the structured filters the query states (objects with counts, colours, money with a
  comparison, dates), the share of them an image meets;
- `clip`: CLIP's text-to-image similarity, when the index holds CLIP image embeddings.
Fusion is weighted reciprocal-rank fusion: sum over modalities of weight / (k + rank). Each hit keeps
every modality's score and rank and why it matched (the line read, the label, the colour, the total),
with the evidence ids `ask` cites.
"""

from __future__ import annotations

import contextlib
import threading
import time
from dataclasses import dataclass, field

import numpy as np

from assistant import meaning
from assistant.search.query import Query, colour_family, parse
from assistant.search.store import IndexStore

MODALITIES = ("text", "labels", "embed", "filters", "clip")


@dataclass
class SearchConfig:
    """How the modalities are fused (weights measured by `bench search` on real-dev and real-dev-2)."""

    rrf_k: float = 10.0  # reciprocal-rank constant: small, so a first place counts for much more than a fifth
    weights: dict[str, float] = field(
        default_factory=lambda: {"text": 1.0, "labels": 0.6, "embed": 1.0, "filters": 1.5, "clip": 1.0}
    )
    depth: int = 100  # how many candidates each modality ranks
    min_similarity: float = 0.15  # embedding matches below this are no match at all
    modalities: tuple[str, ...] = MODALITIES  # which ones run (the evaluation runs each alone)
    # A query is one short sentence: one thread encodes it fastest on a busy CPU (2-core machine under
    # load: 27 ms p50 with one thread, 733 ms with two fighting the other work); None keeps torch's own.
    encode_threads: int | None = 1


@dataclass
class Reason:
    modality: str
    text: str  # what matched: the line, the label, "2 person", "total 25.50 > 20"
    ids: list[str]  # evidence ids it rests on


@dataclass
class Hit:
    image_id: int
    sha256: str
    path: str
    paths: list[str]
    score: float  # fused
    scores: dict[str, float]  # modality -> its own score (BM25, cosine, share of filters met)
    ranks: dict[str, int]  # modality -> rank (1 = first)
    reasons: list[Reason]

    def to_dict(self) -> dict:
        return {
            "path": self.path,
            "paths": self.paths,
            "sha256": self.sha256,
            "score": round(self.score, 5),
            "scores": {k: round(v, 4) for k, v in self.scores.items()},
            "ranks": self.ranks,
            "reasons": [{"modality": r.modality, "text": r.text, "ids": r.ids} for r in self.reasons],
        }

    def short(self) -> str:
        mods = " ".join(f"{m}={self.scores[m]:.2f}#{self.ranks[m]}" for m in self.scores)
        return f"{self.score:.4f} {self.path}  [{mods}]"


@dataclass
class SearchResult:
    query: Query
    hits: list[Hit]
    seconds: float
    modality_ms: dict[str, float]

    def to_dict(self) -> dict:
        return {
            "query": self.query.text,
            "parsed": self.query.describe(),
            "hits": [h.to_dict() for h in self.hits],
            "seconds": round(self.seconds, 4),
            "modality_ms": {k: round(v, 2) for k, v in self.modality_ms.items()},
        }


def _fts_terms(words: list[str]) -> str:
    """An FTS5 OR query of the words (each quoted, so no word is read as an operator)."""
    return " OR ".join('"' + w.replace('"', "") + '"' for w in dict.fromkeys(words))


class Searcher:
    """Searches one index; loads the sentence encoder (and a CLIP model) on first use."""

    def __init__(self, store: IndexStore, cfg: SearchConfig | None = None, clip=None):
        self.store = store
        self.cfg = cfg or SearchConfig()
        self.clip = clip

    def search(self, text: str, top: int = 10) -> SearchResult:
        t0 = time.perf_counter()
        q = parse(text)
        per: dict[str, dict[int, tuple[float, Reason | None]]] = {}
        ms = {}
        for m in self.cfg.modalities:
            t = time.perf_counter()
            found = getattr(self, f"_{m}")(q)
            if found is not None:
                per[m] = found
            ms[m] = (time.perf_counter() - t) * 1000
        hits = self._fuse(q, per, top)
        return SearchResult(q, hits, time.perf_counter() - t0, ms)

    # ---- the modalities: image id -> (score, reason or None: made for the hits shown) ------------------

    def _text(self, q: Query):
        if not q.words and not q.phrases:
            return None
        match = _fts_terms(q.words) if q.words else ""
        if q.phrases:
            phrase = " AND ".join('"' + p.replace('"', "") + '"' for p in q.phrases)
            match = f"({phrase})" + (f" OR ({match})" if match else "")
        return {iid: (score, None) for iid, score in self.store.bm25(match, "lines", self.cfg.depth)}

    def _labels(self, q: Query):
        words = label_words(q)
        if not words:
            return None
        return {
            iid: (score, None) for iid, score in self.store.bm25(_fts_terms(words), "labels", self.cfg.depth)
        }

    def _embed(self, q: Query):
        if not meaning.available() or not q.text.strip():
            return None
        with _torch_threads(self.cfg.encode_threads):
            vec = meaning.encoder().encode([q.text])[0].numpy().tobytes()
        near = self.store.nearest(vec, self.cfg.depth)
        rows = self.store.vector_rows([v for v, _ in near])
        out: dict[int, tuple[float, Reason | None]] = {}
        for vid, sim in near:
            if sim < self.cfg.min_similarity or vid not in rows:
                continue
            iid, source, text, ids = rows[vid]
            if iid not in out or sim > out[iid][0]:
                out[iid] = (sim, Reason("embed", f"{source}: {text[:120]}", ids[:5]))
        return out

    def _filters(self, q: Query):
        """The share of the query's filters an image meets (each met 0..1), computed in SQL."""
        wants = [self._objects(o) for o in q.objects]
        wants += [self._colour(c) for c in q.colours]
        if q.money:
            wants.append(self._money(q.money))
        if q.date:
            wants.append(self._date(q.date))
        if not wants:
            return None
        out = {}
        for iid in set().union(*wants):
            credits = [w[iid] for w in wants if iid in w]
            reasons = [r for _, r in credits]
            merged = Reason(
                "filters", "; ".join(r.text for r in reasons), [i for r in reasons for i in r.ids]
            )
            out[iid] = (sum(c for c, _ in credits) / len(wants), merged)
        return out

    def _objects(self, want) -> dict:
        """Images with the class, the best met count first: the count itself 1.0, within the maybe boxes 0.8,
        another count 0.4 ("a dog": any sure box 1.0, only maybe boxes 0.6); computed in SQL, `depth` x 3 kept."""
        marks = ",".join("?" * len(want.classes))
        credit = (
            "case when :n is null then (case when num > 0 then 1.0 else 0.6 end) when num = :n then 1.0"
            " when num < :n and :n <= num + cast(val as integer) then 0.8"
            " when num + cast(val as integer) > 0 then 0.4 else 0.0 end"
        )
        q = (
            f"select image_id, key, num, cast(val as integer), eid, {credit} as credit from facts"
            f" where kind = 'object' and key in ({marks}) and credit > 0 order by credit desc limit {self.cfg.depth * 3}"
        )
        named = {f"k{i}": c for i, c in enumerate(sorted(want.classes))}
        q = q.replace(f"({marks})", "(" + ",".join(f":{k}" for k in named) + ")")
        got = {}
        for iid, cls, sure, maybe, eids, credit in self.store.db.execute(q, {"n": want.count, **named}):
            if credit > got.get(iid, (0.0, None))[0]:
                n = int(sure)
                said = f"{n} {cls}" + (f" (maybe {n + maybe})" if maybe else "")
                got[iid] = (credit, Reason("filters", said, eids.split(",")))
        return got

    def _colour(self, family: str) -> dict:
        got = {}
        q = "select image_id, key, num, eid from facts where kind = 'colour' and (key = ? or key like ?)"
        for iid, name, share, eid in self.store.db.execute(q, (family, f"% {family}")):
            credit = min(1.0, 0.5 + share)
            if credit > got.get(iid, (0.0, None))[0]:
                got[iid] = (credit, Reason("filters", f"colour {name} {share:.0%}", [eid]))
        return got

    def _money(self, money: tuple[str, float]) -> dict:
        """An image's amount is its total (the largest amount on a line naming a total), else its largest
        amount (less sure: a price, a change given); an exact amount may be any total line."""
        op, want = money
        if op == "==":  # any amount on a total line, else any amount
            q = (
                "select image_id, key = 'total', num, val, eid from facts where kind = 'amount'"
                " and num between ? and ? order by key = 'total'"
            )
            rows = self.store.db.execute(q, (want - 0.005, want + 0.005))
        else:  # the image's amount (`store.facts_of`: its total, else its largest)
            sql_op = {">": ">", ">=": ">=", "<": "<", "<=": "<="}[op]
            q = f"select image_id, key = 'total', num, val, eid from facts where kind = 'money' and num {sql_op} ?"
            rows = self.store.db.execute(q, (want,))
        got = {}
        for iid, sure, value, text, eid in rows:
            said = f"{'total' if sure else 'amount'} {value:.2f} {op} {want:g}: {text}"
            got[iid] = (1.0 if sure else 0.6, Reason("filters", said, [eid]))
        return got

    def _date(self, date: tuple[str, str, str]) -> dict:
        op, first, last = date
        cond, args = {"before": ("val < ?", (first,)), "after": ("val > ?", (last,))}.get(
            op, ("val between ? and ?", (first, last))
        )
        got = {}
        q = f"select image_id, key, val, eid from facts where kind = 'date' and {cond}"
        for iid, source, day, eid in self.store.db.execute(q, args):
            credit = 1.0 if source == "exif" else 0.8
            if credit > got.get(iid, (0.0, None))[0]:
                said = f"{'taken' if source == 'exif' else 'dated'} {day}"
                got[iid] = (credit, Reason("filters", said, [eid]))
        return got

    def _clip(self, q: Query):
        if self.clip is None or not self.store.has_clip():
            return None
        vec = np.asarray(self.clip.text(q.text), dtype=np.float32).tobytes()
        near = self.store.nearest(vec, self.cfg.depth, table="clip")
        return {iid: (sim, Reason("clip", f"CLIP similarity {sim:.2f}", [])) for iid, sim in near}

    # ---- fusion ---------------------------------------------------------------------------------------

    def _fuse(self, q: Query, per: dict, top: int) -> list[Hit]:
        fused: dict[int, float] = {}
        ranks: dict[int, dict[str, int]] = {}
        for m, found in per.items():
            ordered = sorted(found.items(), key=lambda kv: -kv[1][0])
            for rank, (iid, _) in enumerate(ordered, 1):
                fused[iid] = fused.get(iid, 0.0) + self.cfg.weights.get(m, 1.0) / (self.cfg.rrf_k + rank)
                ranks.setdefault(iid, {})[m] = rank
        best = sorted(fused, key=lambda i: -fused[i])[:top]
        docs = self.store.docs(best, brief=True)
        hits = []
        for iid in best:
            doc, paths = docs[iid]
            scores = {m: per[m][iid][0] for m in per if iid in per[m]}
            reasons = []
            for m in per:
                if iid not in per[m]:
                    continue
                reason = per[m][iid][1] or (text_reason(q, doc) if m == "text" else labels_reason(q, doc))
                if reason is not None:
                    reasons.append(reason)
            hits.append(
                Hit(iid, doc.sha256, doc.path, sorted(paths), fused[iid], scores, ranks[iid], reasons)
            )
        return hits


_threads_lock = threading.Lock()


@contextlib.contextmanager
def _torch_threads(n: int | None):
    """torch's intra-op threads set to `n` for the block, then put back."""
    if n is None:
        yield
        return
    import torch

    with _threads_lock:
        before = torch.get_num_threads()
        torch.set_num_threads(n)
        try:
            yield
        finally:
            torch.set_num_threads(before)


def label_words(q: Query) -> list[str]:
    return q.words + [c for o in q.objects for c in o.classes] + q.colours


def text_reason(q: Query, doc) -> Reason | None:
    """The lines of a hit that hold the query's words or phrases."""
    wanted = [*q.words, *(p.lower() for p in q.phrases)]
    lines = [e for e in doc.lines() if any(w in e.text.lower() for w in wanted)]
    if not lines:
        return None
    return Reason("text", " | ".join(e.text for e in lines[:3]), [e.id for e in lines[:3]])


def labels_reason(q: Query, doc) -> Reason | None:
    """The labels of a hit the query names: ImageNet labels, detector classes, colours."""
    words = set(label_words(q))
    named = [
        (label, eid)
        for label, _, eid, coco in doc.labels()
        if set(label.lower().split()) & words or coco in words
    ]
    named += [(c, o["ids"][0]) for c, o in doc.objects().items() if c in words]
    named += [(c, eid) for c, _, eid in doc.colours() if colour_family(c) in words]
    if not named:
        return None
    return Reason("labels", ", ".join(n for n, _ in named[:4]), [e for _, e in named[:4]])
