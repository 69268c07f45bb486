"""Versioned prompt templates, read by the assistant loop.

Each template is a text file here whose first line is `# version: N` (recorded in every trace, so a
change of wording is visible when two runs differ); the rest is the template, with `$name` placeholders
(string.Template: JSON braces in a template need no escaping). `load("system")` reads `system.txt`.
"""

from __future__ import annotations

import re
import string
from dataclasses import dataclass
from functools import cache
from pathlib import Path

_DIR = Path(__file__).parent


@dataclass(frozen=True)
class Prompt:
    name: str
    version: str
    text: str

    def render(self, **values) -> str:
        """Fill the placeholders; a missing value is a programming error and raises KeyError."""
        return string.Template(self.text).substitute(**values)


@cache
def load(name: str) -> Prompt:
    path = _DIR / f"{name}.txt"
    if not path.is_file():
        raise FileNotFoundError(f"no prompt template {name!r} (looked for {path})")
    raw = path.read_text(encoding="utf-8")
    first, _, body = raw.partition("\n")
    m = re.match(r"#\s*version:\s*(\S+)\s*$", first)
    if not m:
        raise ValueError(f"prompt {path.name}: first line must be '# version: N', got {first!r}")
    return Prompt(name, m.group(1), body.strip("\n"))


def versions(*names: str) -> dict[str, str]:
    """{name: version} for the given templates (what a trace records)."""
    return {n: load(n).version for n in names}
