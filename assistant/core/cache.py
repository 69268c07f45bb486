"""The engine's two caches: image embeddings (by content) and KV state across a conversation's turns.

`EmbeddingCache` keeps what the vision stage produced for an image (features after the projector for
the prefix family, cross-attention states for Mllama), keyed by everything that determines it: model
id and revision, processor settings, cache format version and `ImageInput.key()` (the image's content
hash, crop and resolution cap). A hit needs no decoding, preprocessing or vision tower. LRU bounded in
bytes; optionally mirrored on disk as safetensors (atomic writes), each file carrying its full key so a
file written for another model or other settings is never used.

`KVSessionCache` keeps, per session, the transformers Cache of the last turn and the per-position
identity of what it holds (token ids; image positions carry the image key). The next turn reuses the
longest common prefix. Sessions never share an entry; idle and least recently used sessions are evicted.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
import threading
import time
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

FORMAT_VERSION = 1  # bump when what is stored for an image changes


def tensors_nbytes(tensors: dict) -> int:
    return sum(t.numel() * t.element_size() for t in tensors.values())


class EmbeddingCache:
    """In-memory LRU of {name: tensor} dicts, bounded in bytes, optionally backed by a directory."""

    def __init__(self, max_bytes: int, disk_dir: str | Path | None = None):
        self.max_bytes = max_bytes
        self.disk_dir = Path(disk_dir) if disk_dir else None
        if self.disk_dir:
            self.disk_dir.mkdir(parents=True, exist_ok=True)
        self._items: OrderedDict[str, dict] = OrderedDict()
        self._lock = threading.Lock()
        self.nbytes = 0
        self.hits = 0
        self.misses = 0

    def get(self, key: str) -> dict | None:
        with self._lock:
            item = self._items.get(key)
            if item is not None:
                self._items.move_to_end(key)
                self.hits += 1
                return item
        item = self._load(key)
        with self._lock:
            if item is None:
                self.misses += 1
                return None
            self.hits += 1
        self._remember(key, item)
        return item

    def put(self, key: str, tensors: dict) -> None:
        tensors = {k: v.detach().contiguous() for k, v in tensors.items()}
        self._remember(key, tensors)
        if self.disk_dir:
            self._save(key, tensors)

    def peek_image(self, sha256: str) -> dict | None:
        """The most recently used entry of an image (any crop or size) without counting a hit or reading
        the disk: what drift monitoring reads of the vision tower's features, at no model cost."""
        with self._lock:
            for key in reversed(self._items):
                if sha256 in key:
                    return self._items[key]
        return None

    def clear(self) -> None:
        with self._lock:
            self._items.clear()
            self.nbytes = 0

    def __len__(self) -> int:
        return len(self._items)

    def _remember(self, key: str, tensors: dict) -> None:
        size = tensors_nbytes(tensors)
        if size > self.max_bytes:
            return
        with self._lock:
            old = self._items.pop(key, None)
            if old is not None:
                self.nbytes -= tensors_nbytes(old)
            self._items[key] = tensors
            self.nbytes += size
            while self.nbytes > self.max_bytes:
                _, evicted = self._items.popitem(last=False)
                self.nbytes -= tensors_nbytes(evicted)

    def _path(self, key: str) -> Path:
        return self.disk_dir / (hashlib.sha256(key.encode()).hexdigest() + ".safetensors")

    def _save(self, key: str, tensors: dict) -> None:
        from safetensors.torch import save_file

        fd, tmp = tempfile.mkstemp(dir=self.disk_dir, suffix=".tmp")
        os.close(fd)
        try:
            save_file({k: v.cpu() for k, v in tensors.items()}, tmp, metadata={"key": key})
            os.replace(tmp, self._path(key))  # atomic: readers see the old file or the whole new one
        except OSError:
            Path(tmp).unlink(missing_ok=True)

    def _load(self, key: str) -> dict | None:
        if not self.disk_dir:
            return None
        path = self._path(key)
        if not path.exists():
            return None
        from safetensors import safe_open

        try:
            with safe_open(path, framework="pt") as f:
                if (f.metadata() or {}).get("key") != key:
                    return None  # another model, revision or setting: never use it
                return {name: f.get_tensor(name) for name in f.keys()}  # noqa: SIM118 - safe_open has no items()
        except Exception:
            return None  # unreadable or truncated file: recompute


def common_prefix(a: Sequence, b: Sequence) -> int:
    n = min(len(a), len(b))
    for i in range(n):
        if a[i] != b[i]:
            return i
    return n


def cache_nbytes(cache) -> int:
    """Bytes held by a transformers Cache (keys and values of every layer)."""
    total = 0
    for layer in getattr(cache, "layers", []):
        for t in (getattr(layer, "keys", None), getattr(layer, "values", None)):
            if t is not None and hasattr(t, "numel"):
                total += t.numel() * t.element_size()
    return total


@dataclass
class _Session:
    keys: list
    cache: object
    nbytes: int
    last_used: float


class KVSessionCache:
    """Per-session KV state between turns; `lookup` hands the entry over, `store` gives it back.

    Handing over (instead of sharing) means a generation that fails midway can never leave a corrupted
    cache behind, and two concurrent requests on one session simply do not both reuse it.
    """

    def __init__(self, max_sessions: int = 8, max_bytes: int = 2 * 1024**3, idle_ttl_s: float = 1800.0):
        self.max_sessions = max_sessions
        self.max_bytes = max_bytes
        self.idle_ttl_s = idle_ttl_s
        self._sessions: OrderedDict[str, _Session] = OrderedDict()
        self._lock = threading.Lock()
        self.evictions = 0

    @property
    def nbytes(self) -> int:
        return sum(s.nbytes for s in self._sessions.values())

    def lookup(self, session_id: str, keys: Sequence) -> tuple[object | None, int]:
        """(cache, n) where the cache's first n positions match `keys`; the caller crops it to n."""
        with self._lock:
            self._expire(time.monotonic())
            entry = self._sessions.pop(session_id, None)
        if entry is None:
            return None, 0
        n = common_prefix(entry.keys, keys)
        if n == 0:
            return None, 0
        return entry.cache, n

    def store(self, session_id: str, keys: Sequence, cache) -> None:
        if self.max_sessions <= 0:
            return
        size = cache_nbytes(cache)
        if size > self.max_bytes:
            return
        now = time.monotonic()
        with self._lock:
            self._sessions.pop(session_id, None)
            self._sessions[session_id] = _Session(list(keys), cache, size, now)
            self._expire(now)
            while len(self._sessions) > self.max_sessions or self.nbytes > self.max_bytes:
                self._sessions.popitem(last=False)
                self.evictions += 1

    def drop(self, session_id: str) -> None:
        with self._lock:
            self._sessions.pop(session_id, None)

    def __contains__(self, session_id: str) -> bool:
        return session_id in self._sessions

    def __len__(self) -> int:
        return len(self._sessions)

    def _expire(self, now: float) -> None:
        for sid in [s for s, e in self._sessions.items() if now - e.last_used > self.idle_ttl_s]:
            del self._sessions[sid]
            self.evictions += 1
