"""The image index on disk: one SQLite file with FTS5 (BM25) and sqlite-vec (nearest vectors).

Why SQLite (measured by `python -m bench.search_stores`, 2-core CPU; see docs/search.md): one file, one
writer, and a transaction per image, so a run killed with -9 leaves every image either wholly indexed
or not at all (WAL mode: a crash rolls back the half-written one); BM25 over text and labels is built in
(FTS5); sqlite-vec answers 50 nearest of 10k vectors in ~9 ms and of 100k in ~90 ms. LanceDB was as
fast for full text but 1.5-2x slower for vectors and appends a data fragment per write (a resumable
writer per image would need compaction); Qdrant's local mode has no BM25 and loaded 10k points 100x
slower (its server is the way past one machine, not its local mode).

Tables: `images` (one row per content hash: size, the document as JSON, the tools' call keys), `files`
(paths found in the folder -> image), `fts` (OCR lines and labels, rowid = image id), `facts` (the
structured fields filters read: object counts, labels, colours, money, dates), `vectors` + `vec` (a few
sentence embeddings per image: its text, its labels in words, its most prominent lines) and `clip`
(an image embedding per image, when a CLIP model is configured).
"""

from __future__ import annotations

import importlib
import json
import time
import zlib
from pathlib import Path

import numpy as np

from assistant.search.records import ImageDoc
from tools.errors import BadInputError
from tools.evidence import Evidence
from tools.paths import cache_dir

try:  # Python's own sqlite3 may be built without extension loading (pyenv's is); pysqlite3 is not
    sqlite3 = importlib.import_module("pysqlite3")
except ImportError:  # pragma: no cover - where pysqlite3-binary has no wheel
    import sqlite3

SCHEMA_VERSION = "4"  # 2: documents compressed, path and errors in columns; 3: money facts; 4: briefs
DIM = 384  # all-MiniLM-L6-v2
# Up to this many sentence vectors (~3 per image) are searched as a matrix in memory (150 MB at most:
# 2-5 ms for 30k on 2 cores, where sqlite-vec's scan of the file took ~40 ms); beyond, sqlite-vec.
MEMORY_VECTORS = 100_000
INSTALL = "pip install sqlite-vec pysqlite3-binary"

SCHEMA = f"""
create table if not exists meta(key text primary key, value text);
create table if not exists images(
    id integer primary key, sha256 text unique not null, width integer, height integer,
    path text, doc blob not null, brief blob, tools text not null, errors text, caption text, indexed_at real);
create table if not exists files(path text primary key, image_id integer not null, size integer, mtime real);
create index if not exists files_image on files(image_id);
create virtual table if not exists fts using fts5(lines, labels, tokenize = "unicode61 remove_diacritics 2");
create table if not exists facts(image_id integer not null, kind text not null, key text, num real, val text, eid text);
create index if not exists facts_kind on facts(kind, key);
create index if not exists facts_image on facts(image_id);
create index if not exists facts_num on facts(kind, num);
create index if not exists facts_val on facts(kind, val);
create table if not exists vectors(id integer primary key, image_id integer not null, source text, text text, eids text);
create index if not exists vectors_image on vectors(image_id);
create virtual table if not exists vec using vec0(embedding float[{DIM}] distance_metric=cosine);
"""


def default_path() -> Path:
    """The index `index`, `search`, `ask --search` and the UI use unless told otherwise."""
    return cache_dir("index") / "images.sqlite"


def connect(path: str | Path, readonly: bool = False):
    """An SQLite connection with sqlite-vec loaded, WAL journal (a killed writer loses only its open
    transaction), the schema in place."""
    try:
        import sqlite_vec
    except ImportError:
        raise BadInputError(f"the image index needs sqlite-vec: {INSTALL}") from None
    path = Path(path)
    if readonly and not path.exists():
        raise BadInputError(f"no index at {path}; build one with `python launch.py index DIR --index {path}`")
    path.parent.mkdir(parents=True, exist_ok=True)
    db = sqlite3.connect(str(path), timeout=30, check_same_thread=False)
    db.enable_load_extension(True)
    sqlite_vec.load(db)
    db.enable_load_extension(False)
    db.execute("pragma journal_mode=wal")
    db.execute("pragma synchronous=normal")  # WAL + normal: a process crash never loses a commit
    have = db.execute("select name from sqlite_master where name = 'meta'").fetchone()
    found = db.execute("select value from meta where key = 'schema'").fetchone() if have else None
    if found and found[0] != SCHEMA_VERSION:
        db.close()
        raise BadInputError(
            f"the index {path} has schema {found[0]}, this version reads {SCHEMA_VERSION}: index into a new file"
        )
    if not readonly:
        db.executescript(SCHEMA)
        db.execute("insert or ignore into meta values ('schema', ?)", (SCHEMA_VERSION,))
        db.commit()
    return db


class IndexStore:
    """Reads and writes the index; every image is written in one transaction."""

    def __init__(self, path: str | Path, readonly: bool = False):
        self.path = Path(path)
        self.db = connect(self.path, readonly=readonly)
        self._cached = None  # the sentence vectors in memory (see `nearest`)

    def close(self) -> None:
        self.db.close()

    # ---- what is there ----------------------------------------------------------------------------

    def tools_of(self) -> dict[str, dict[str, str]]:
        """sha256 -> {tool: call key} of every indexed image (what incremental indexing compares)."""
        return {sha: json.loads(t) for sha, t in self.db.execute("select sha256, tools from images")}

    def files(self) -> dict[str, str]:
        """path -> sha256 of every file the index has seen."""
        q = "select f.path, i.sha256 from files f join images i on i.id = f.image_id"
        return dict(self.db.execute(q))

    def file_stats(self) -> list[tuple[str, str, int, float]]:
        """(path, sha256, size, mtime) of every file the index has seen."""
        q = "select f.path, i.sha256, f.size, f.mtime from files f join images i on i.id = f.image_id"
        return list(self.db.execute(q))

    def doc_dict(self, sha256: str) -> dict | None:
        row = self.db.execute("select doc from images where sha256 = ?", (sha256,)).fetchone()
        return json.loads(zlib.decompress(row[0])) if row else None

    def errors(self) -> dict[str, dict[str, str]]:
        """path -> {tool: error} of images a tool failed on (they are tried again by the next run)."""
        q = "select path, errors from images where errors != '{}'"
        return {p: json.loads(e) for p, e in self.db.execute(q)}

    def count(self) -> int:
        return self.db.execute("select count(*) from images").fetchone()[0]

    def doc(self, sha256: str) -> ImageDoc | None:
        row = self.db.execute("select doc from images where sha256 = ?", (sha256,)).fetchone()
        return unpack_doc(row[0]) if row else None

    def docs(self, ids: list[int], brief: bool = False) -> dict[int, tuple[ImageDoc, list[str]]]:
        """image id -> (its document, the paths it was found at); `brief`: without the OCR words and
        blocks (what a hit's reasons read, a fifth of the bytes)."""
        if not ids:
            return {}
        marks = ",".join("?" * len(ids))
        out = {}
        column = "brief" if brief else "doc"
        for iid, doc in self.db.execute(f"select id, {column} from images where id in ({marks})", ids):
            out[iid] = (unpack_doc(doc), [])
        for iid, path in self.db.execute(
            f"select image_id, path from files where image_id in ({marks})", ids
        ):
            out[iid][1].append(path)
        return out

    def meta(self, key: str) -> str | None:
        row = self.db.execute("select value from meta where key = ?", (key,)).fetchone()
        return row[0] if row else None

    def set_meta(self, key: str, value: str) -> None:
        with self.db:
            self.db.execute("insert or replace into meta values (?, ?)", (key, value))

    # ---- writing ------------------------------------------------------------------------------------

    def write(
        self,
        doc: ImageDoc,
        vectors: list[tuple[str, str, list[str], bytes]],
        clip: bytes | None = None,
        files: list[tuple[str, int, float]] = (),
    ) -> int:
        """Put one image (its document, facts, text, vectors, the paths it is at) in one transaction,
        replacing what the index had for it. `vectors`: (source, text, evidence ids, float32 bytes)."""
        with self.db:  # one transaction: all of it or, after a crash, none of it
            row = self.db.execute("select id from images where sha256 = ?", (doc.sha256,)).fetchone()
            if row:
                iid = row[0]
                self._forget(iid)
                self.db.execute(
                    "update images set path=?, width=?, height=?, doc=?, brief=?, tools=?, errors=?, caption=?,"
                    " indexed_at=?"
                    " where id=?",
                    (*self._row(doc), iid),
                )
            else:
                cur = self.db.execute(
                    "insert into images(path, width, height, doc, brief, tools, errors, caption, indexed_at, sha256)"
                    " values (?,?,?,?,?,?,?,?,?,?)",
                    (*self._row(doc), doc.sha256),
                )
                iid = cur.lastrowid
            self.db.execute(
                "insert into fts(rowid, lines, labels) values (?, ?, ?)", (iid, doc.text(), doc.label_text())
            )
            self.db.executemany("insert into facts values (?,?,?,?,?,?)", [(iid, *f) for f in facts_of(doc)])
            for source, text, eids, blob in vectors:
                cur = self.db.execute(
                    "insert into vectors(image_id, source, text, eids) values (?,?,?,?)",
                    (iid, source, text, json.dumps(eids)),
                )
                self.db.execute("insert into vec(rowid, embedding) values (?, ?)", (cur.lastrowid, blob))
            if clip is not None:
                self._clip_table(len(clip) // 4)
                self.db.execute("insert into clip(rowid, embedding) values (?, ?)", (iid, clip))
            for path, size, mtime in files:
                self.db.execute("insert or replace into files values (?,?,?,?)", (path, iid, size, mtime))
        return iid

    @staticmethod
    def _row(doc: ImageDoc) -> tuple:
        return (
            doc.path,
            doc.width,
            doc.height,
            pack_doc(doc),
            pack_doc(doc, brief=True),
            json.dumps(doc.tools),
            json.dumps(doc.errors),
            doc.caption(),
            time.time(),
        )

    def add_files(self, sha256: str, files: list[tuple[str, int, float]]) -> None:
        """Record more paths of an image already indexed (a copy of it elsewhere in the folder)."""
        with self.db:
            iid = self.db.execute("select id from images where sha256 = ?", (sha256,)).fetchone()[0]
            self.db.executemany(
                "insert or replace into files values (?,?,?,?)", [(p, iid, s, m) for p, s, m in files]
            )

    def forget_files(self, paths: list[str]) -> None:
        """Paths no longer in the folder; an image no path points to any more is dropped."""
        with self.db:
            self.db.executemany("delete from files where path = ?", [(p,) for p in paths])
            orphans = [
                r[0]
                for r in self.db.execute("select id from images where id not in (select image_id from files)")
            ]
            for iid in orphans:
                self._forget(iid)
                self.db.execute("delete from images where id = ?", (iid,))

    def _forget(self, iid: int) -> None:
        self.db.execute("delete from fts where rowid = ?", (iid,))
        self.db.execute("delete from facts where image_id = ?", (iid,))
        vids = [r[0] for r in self.db.execute("select id from vectors where image_id = ?", (iid,))]
        self.db.executemany("delete from vec where rowid = ?", [(v,) for v in vids])
        self.db.execute("delete from vectors where image_id = ?", (iid,))
        if self.has_clip():
            self.db.execute("delete from clip where rowid = ?", (iid,))

    def has_clip(self) -> bool:
        return self.meta("clip_dim") is not None

    def _clip_table(self, dim: int) -> None:
        known = self.meta("clip_dim")
        if known is None:
            self.db.execute(
                f"create virtual table if not exists clip using vec0(embedding float[{dim}] distance_metric=cosine)"
            )
            self.db.execute("insert or replace into meta values ('clip_dim', ?)", (str(dim),))
        elif int(known) != dim:
            raise ValueError(f"CLIP embeddings of this index have {known} dimensions, this model gives {dim}")

    # ---- reading for search -------------------------------------------------------------------------

    def bm25(self, match: str, column: str | None, limit: int) -> list[tuple[int, float]]:
        """(image id, score: higher is better) of an FTS5 match, in the `lines` or `labels` column or both."""
        expr = f"{{{column}}} : ({match})" if column else match
        q = "select rowid, -bm25(fts, 1.0, 1.0) from fts where fts match ? order by rank limit ?"
        try:
            return list(self.db.execute(q, (expr, limit)))
        except sqlite3.OperationalError:  # a query FTS5 cannot parse matches nothing
            return []

    def nearest(self, vec: bytes, k: int, table: str = "vec") -> list[tuple[int, float]]:
        """(rowid, cosine similarity) of the k nearest vectors: from a matrix held in memory while the
        sentence vectors are few enough (`MEMORY_VECTORS`), else by sqlite-vec's scan of the file."""
        if table == "vec":
            matrix = self._matrix()
            if matrix is not None:
                ids, m = matrix
                sims = m @ np.frombuffer(vec, dtype=np.float32)
                top = (
                    np.argpartition(-sims, min(k, len(sims) - 1))[:k]
                    if len(sims) > k
                    else np.arange(len(sims))
                )
                top = top[np.argsort(-sims[top])]
                return [(int(ids[i]), float(sims[i])) for i in top]
        q = f"select rowid, distance from {table} where embedding match ? and k = ?"
        return [(r, 1.0 - d) for r, d in self.db.execute(q, (vec, k))]

    def _matrix(self):
        """(vector ids, unit vectors as rows), read once and again only when the index changed."""
        count, last = self.db.execute("select count(*), coalesce(max(id), 0) from vectors").fetchone()
        if count == 0 or count > MEMORY_VECTORS:
            return None
        if self._cached is None or self._cached[0] != (count, last):
            rows = self.db.execute("select rowid, embedding from vec").fetchall()
            ids = np.array([r for r, _ in rows], dtype=np.int64)
            m = np.frombuffer(b"".join(e for _, e in rows), dtype=np.float32).reshape(len(rows), DIM)
            self._cached = ((count, last), (ids, m))
        return self._cached[1]

    def vector_rows(self, ids: list[int]) -> dict[int, tuple[int, str, str, list[str]]]:
        """vector id -> (image id, source, text, evidence ids)."""
        if not ids:
            return {}
        q = f"select id, image_id, source, text, eids from vectors where id in ({','.join('?' * len(ids))})"
        return {r[0]: (r[1], r[2], r[3], json.loads(r[4])) for r in self.db.execute(q, ids)}

    def facts(self, kind: str, keys: list[str] | None = None) -> list[tuple[int, str, float, str, str]]:
        """(image id, key, num, val, evidence id) of one kind of fact, of these keys if given."""
        q, args = "select image_id, key, num, val, eid from facts where kind = ?", [kind]
        if keys:
            q += f" and key in ({','.join('?' * len(keys))})"
            args += keys
        return list(self.db.execute(q, args))

    def checkpoint(self) -> None:
        """Fold the write-ahead log into the file (done after a run, so the size on disk is the index's)."""
        self.db.execute("pragma wal_checkpoint(TRUNCATE)")

    def size_bytes(self) -> int:
        return sum(p.stat().st_size for p in self.path.parent.glob(self.path.name + "*") if p.is_file())


def facts_of(doc: ImageDoc) -> list[tuple[str, str, float, str, str]]:
    """(kind, key, num, val, evidence id) rows: what structured filters read."""
    rows = []
    for cls, o in doc.objects().items():
        rows.append(("object", cls, float(o["sure"]), str(o["maybe"]), ",".join(o["ids"][:6])))
    for label, p, eid, coco in doc.labels():
        rows.append(("label", label.lower(), p, coco or "", eid))
    for name, share, eid in doc.colours():
        rows.append(("colour", name.lower(), share, "", eid))
    amounts = doc.amounts()
    for a in amounts:
        rows.append(("amount", "total" if a["total"] else "any", a["value"], a["text"], a["id"]))
    totals = [a for a in amounts if a["total"]]
    if (
        amounts
    ):  # what "over 20" compares: the total (the largest on a line naming one), else the largest amount
        a = max(totals or amounts, key=lambda a: a["value"])
        rows.append(("money", "total" if totals else "any", a["value"], a["text"], a["id"]))
    for d in doc.dates():
        rows.append(("date", d["source"], 0.0, d["date"], d["id"]))
    return rows


BRIEF_KINDS = {"word", "block"}  # left out of a brief: the lines hold their text


def pack_doc(doc: ImageDoc, brief: bool = False) -> bytes:
    """The document as compressed JSON (OCR words with their alternatives compress about 6x)."""
    d = doc_to_dict(doc)
    if brief:
        d["evidence"] = [e for e in d["evidence"] if e["kind"] not in BRIEF_KINDS]
    return zlib.compress(json.dumps(d, separators=(",", ":")).encode(), 6)


def unpack_doc(blob: bytes) -> ImageDoc:
    return doc_from_dict(json.loads(zlib.decompress(blob)))


def doc_to_dict(doc: ImageDoc) -> dict:
    return {
        "sha256": doc.sha256,
        "path": doc.path,
        "width": doc.width,
        "height": doc.height,
        "tools": doc.tools,
        "errors": doc.errors,
        "evidence": [e.to_dict() for e in doc.evidence],
    }


def doc_from_dict(d: dict) -> ImageDoc:
    return ImageDoc(
        sha256=d["sha256"],
        path=d["path"],
        width=d["width"],
        height=d["height"],
        tools=d["tools"],
        errors=d.get("errors", {}),
        evidence=[Evidence.from_dict(e) for e in d["evidence"]],
    )
