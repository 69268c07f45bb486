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

import json
import time
from dataclasses import dataclass, field

import numpy as np

from assistant import meaning
from assistant.search.query import Query, colour_family, date_ok, money_ok, parse
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

    # ---- the modalities: image id -> (score, reason) ------------------------------------------------

    def _text(self, q: Query):
        words = q.words + q.phrases
        if not words:
            return None
        match = _fts_terms(q.words) if q.words else ""
        if q.phrases:
            phrase = " AND ".join('"' + p.replace('"', "") + '"' for p in q.phrases)
            match = f"({phrase})" + (f" OR ({match})" if match else "")
        found = self.store.bm25(match, "lines", self.cfg.depth)
        docs = self.store.docs([i for i, _ in found[:20]])
        out = {}
        for iid, score in found:
            reason = None
            if iid in docs:
                lines = [
                    e
                    for e in docs[iid][0].lines()
                    if any(w in e.text.lower() for w in [*q.words, *(p.lower() for p in q.phrases)])
                ]
                if lines:
                    reason = Reason("text", " | ".join(e.text for e in lines[:3]), [e.id for e in lines[:3]])
            out[iid] = (score, reason)
        return out

    def _labels(self, q: Query):
        words = q.words + [c for o in q.objects for c in o.classes] + q.colours
        if not words:
            return None
        found = self.store.bm25(_fts_terms(words), "labels", self.cfg.depth)
        docs = self.store.docs([i for i, _ in found[:20]])
        out = {}
        for iid, score in found:
            reason = None
            if iid in docs:
                doc = docs[iid][0]
                named = [
                    (label, eid)
                    for label, _, eid, coco in doc.labels()
                    if set(label.lower().split()) & set(words) or coco in words
                ]
                named += [(c, o["ids"][0]) for c, o in doc.objects().items() if c in words]
                named += [(c, eid) for c, _, eid in doc.colours() if colour_family(c) in words]
                if named:
                    reason = Reason("labels", ", ".join(n for n, _ in named[:4]), [e for _, e in named[:4]])
            out[iid] = (score, reason)
        return out

    def _embed(self, q: Query):
        if not meaning.available() or not q.text.strip():
            return None
        vec = meaning.encoder().encode([q.text])[0].numpy().tobytes()
        near = self.store.nearest(vec, self.cfg.depth * 3)
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
        wants = []  # one entry per stated filter: image id -> (credit 0..1, reason)
        for o in q.objects:
            got = {}
            for iid, cls, sure, val, eid in self.store.facts("object", sorted(o.classes)):
                extra = json.loads(val)
                n = int(sure)
                credit = _count_credit(o.count, n, extra.get("maybe", 0))
                if credit > got.get(iid, (0, None))[0]:
                    said = f"{n} {cls}" + (f" (maybe {n + extra['maybe']})" if extra.get("maybe") else "")
                    got[iid] = (credit, Reason("filters", said, extra.get("ids", [eid])[:6]))
            wants.append(got)
        for colour in q.colours:
            got = {}
            for iid, name, share, _, eid in self.store.facts("colour"):
                if colour_family(name) == colour and share > got.get(iid, (0,))[0] * 0.5:
                    got[iid] = (min(1.0, 0.5 + share), Reason("filters", f"colour {name} {share:.0%}", [eid]))
            wants.append(got)
        if q.money:
            wants.append(self._money(q.money))
        if q.date:
            got = {}
            for iid, source, _, day, eid in self.store.facts("date"):
                if date_ok(q.date, day):
                    credit = 1.0 if source == "exif" else 0.8
                    if credit > got.get(iid, (0,))[0]:
                        got[iid] = (
                            credit,
                            Reason("filters", f"{'taken' if source == 'exif' else 'dated'} {day}", [eid]),
                        )
            wants.append(got)
        if not wants:
            return None
        out = {}
        for iid in set().union(*wants):
            credits = [w[iid] for w in wants if iid in w]
            score = sum(c for c, _ in credits) / len(wants)
            reasons = [r for _, r in credits]
            merged = Reason(
                "filters", "; ".join(r.text for r in reasons), [i for r in reasons for i in r.ids]
            )
            out[iid] = (score, merged)
        return out

    def _money(self, money: tuple[str, float]) -> dict:
        """An image's amount is its total (the largest amount on a line naming a total), else its largest
        amount (less sure: a price, a change given); an exact amount may be any total line."""
        by_image: dict[int, dict[str, list]] = {}
        for iid, key, value, text, eid in self.store.facts("amount"):
            by_image.setdefault(iid, {}).setdefault(key, []).append((value, text, eid))
        got = {}
        for iid, kinds in by_image.items():
            sure = "total" in kinds
            found = kinds["total" if sure else "any"]
            if money[0] == "==":
                chosen = [f for f in found if money_ok(money, f[0])][:1]
            else:
                chosen = [f for f in [max(found)] if money_ok(money, f[0])]
            if chosen:
                value, text, eid = chosen[0]
                said = f"{'total' if sure else 'amount'} {value:.2f} {money[0]} {money[1]:g}: {text}"
                got[iid] = (1.0 if sure else 0.6, Reason("filters", said, [eid]))
        return got

    def _clip(self, q: Query):
        if self.clip is None or not self.store.has_clip():
            return None
        vec = self.clip.text(q.text)
        near = self.store.nearest(np.asarray(vec, dtype=np.float32).tobytes(), self.cfg.depth, table="clip")
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
        docs = self.store.docs(best)
        hits = []
        for iid in best:
            doc, paths = docs[iid]
            scores = {m: per[m][iid][0] for m in per if iid in per[m]}
            reasons = [per[m][iid][1] for m in per if iid in per[m] and per[m][iid][1] is not None]
            hits.append(
                Hit(iid, doc.sha256, doc.path, sorted(paths), fused[iid], scores, ranks[iid], reasons)
            )
        return hits


def _count_credit(want: int | None, sure: int, maybe: int) -> float:
    """How well `sure` (and up to `maybe` more) boxes meet a wanted count (None: present at all)."""
    if want is None:
        return 1.0 if sure else 0.6
    if sure == want:
        return 1.0
    if sure < want <= sure + maybe:
        return 0.8
    return 0.4 if sure + maybe > 0 else 0.0
