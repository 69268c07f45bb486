"""Evaluation sets: a folder with cases.jsonl and its images, or a builtin set generated on first use.

Builtin sets are registered here explicitly, one small module each; each module's `generate(root)`
writes the set's images and cases.jsonl (seeded: the same set every time) into the cache, once.
"""

from __future__ import annotations

import importlib
import os
import shutil
from pathlib import Path

from evaluation.sets.folder import EvalSet, load_folder
from tools.errors import BadInputError

# name -> module whose generate(root) writes the set; bumping a module's VERSION regenerates it.
BUILTIN = {
    "synth-signs": "evaluation.sets.synth_signs",
    "synth-receipts": "evaluation.sets.synth_receipts",
    "synth-abstain": "evaluation.sets.synth_abstain",
    "synth-inject": "evaluation.sets.synth_inject",
    "synth-shapes": "evaluation.sets.synth_shapes",
    "shipped": "evaluation.sets.shipped",
}


def builtin_root(name: str) -> Path:
    """Where a builtin set lives: generated into the cache on first use (atomically)."""
    from tools.paths import cache_dir

    mod = importlib.import_module(BUILTIN[name])
    root = cache_dir("evalsets") / f"{name}-v{mod.VERSION}"
    if not (root / "cases.jsonl").is_file():
        tmp = root.with_name(f"{root.name}.tmp{os.getpid()}")
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        mod.generate(tmp)
        try:
            tmp.rename(root)
        except OSError:  # another process generated it meanwhile: theirs is the same set
            shutil.rmtree(tmp, ignore_errors=True)
    return root


def resolve_set(name_or_path: str) -> EvalSet:
    """A builtin set by name, or any folder holding cases.jsonl."""
    if name_or_path in BUILTIN:
        return load_folder(builtin_root(name_or_path), name_or_path)
    p = Path(name_or_path)
    if p.is_dir():
        return load_folder(p)
    raise BadInputError(
        f"no evaluation set {name_or_path!r}: give a folder with cases.jsonl or one of {', '.join(BUILTIN)}"
    )
