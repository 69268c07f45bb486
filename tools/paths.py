"""Where the project keeps what it builds or downloads: models, detector weights, caches, traces."""

from __future__ import annotations

import os
from pathlib import Path


def cache_home() -> Path:
    """`$GROUNDED_VLM_HOME`, else `~/.cache/grounded-vlm`. Created on first use."""
    root = Path(os.environ.get("GROUNDED_VLM_HOME") or Path.home() / ".cache" / "grounded-vlm")
    root.mkdir(parents=True, exist_ok=True)
    return root


def cache_dir(*parts: str) -> Path:
    p = cache_home().joinpath(*parts)
    p.mkdir(parents=True, exist_ok=True)
    return p
