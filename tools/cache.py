"""The tool result cache: findings keyed by (image content hash, tool name, version, canonical arguments).

An LRU in memory, optionally mirrored to a directory on disk (written atomically, so a reader never sees
half a file, and a torn or stale file is a miss), so results can outlive the process.
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections import OrderedDict
from pathlib import Path

from tools.evidence import Finding


class ToolCache:
    """LRU of tool findings keyed by (image hash, call key); optionally mirrored to a directory on disk."""

    def __init__(self, max_entries: int = 2048, disk_dir: str | Path | None = None):
        self.max_entries = max_entries
        self.disk_dir = Path(disk_dir) if disk_dir else None
        self._mem: OrderedDict[str, list[Finding]] = OrderedDict()
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    @staticmethod
    def key(image_sha: str, ckey: str) -> str:
        return hashlib.sha256(f"{image_sha}\n{ckey}".encode()).hexdigest()

    def get(self, key: str) -> list[Finding] | None:
        with self._lock:
            if key in self._mem:
                self._mem.move_to_end(key)
                self.hits += 1
                return self._mem[key]
        if self.disk_dir is not None:
            path = self.disk_dir / key[:2] / f"{key}.json"
            if path.exists():
                try:
                    found = [Finding.from_dict(d) for d in json.loads(path.read_text())]
                except (OSError, ValueError, KeyError):
                    found = None  # a torn or stale file is a miss, not an error
                if found is not None:
                    self._put_mem(key, found)
                    with self._lock:
                        self.hits += 1
                    return found
        with self._lock:
            self.misses += 1
        return None

    def __contains__(self, key: str) -> bool:
        """Whether `key` is cached (memory or disk), without counting a hit or a miss."""
        with self._lock:
            if key in self._mem:
                return True
        return self.disk_dir is not None and (self.disk_dir / key[:2] / f"{key}.json").exists()

    def put(self, key: str, findings: list[Finding]) -> None:
        self._put_mem(key, findings)
        if self.disk_dir is not None:
            path = self.disk_dir / key[:2] / f"{key}.json"
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(f".{threading.get_ident()}.tmp")
            tmp.write_text(json.dumps([f.to_dict() for f in findings]))
            tmp.replace(path)  # atomic: readers never see half a file

    def _put_mem(self, key: str, findings: list[Finding]) -> None:
        with self._lock:
            self._mem[key] = findings
            self._mem.move_to_end(key)
            while len(self._mem) > self.max_entries:
                self._mem.popitem(last=False)
