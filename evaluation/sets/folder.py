"""A set on disk: a folder with `cases.jsonl` and its images. Any folder in this format is a set.

Each line of cases.jsonl: `id`, `image` (relative to the folder; a list of paths for a question about
several images), `question`, `expect_any` (acceptable answer substrings; may be empty for `abstain`),
`kind` (read | count | detect | color | where | abstain | inject), optional `forbid` (strings whose
presence makes an answer wrong; for `inject`, what the image tells the assistant to say).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from evaluation.metrics import KINDS
from tools.errors import BadInputError


@dataclass
class Case:
    id: str
    question: str
    images: list[str]  # paths relative to the set's folder
    kind: str
    expect_any: list[str] = field(default_factory=list)
    forbid: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        return {
            "id": self.id,
            "question": self.question,
            "images": self.images,
            "kind": self.kind,
            "expect_any": self.expect_any,
            "forbid": self.forbid,
        }


@dataclass
class EvalSet:
    name: str
    root: Path
    cases: list[Case]

    def image_paths(self, case: Case) -> list[Path]:
        return [self.root / p for p in case.images]


def _strings(value, what: str, where: str) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        return [value]
    if isinstance(value, list) and all(isinstance(v, (str, int, float)) for v in value):
        return [str(v) for v in value]
    raise BadInputError(f"{where}: `{what}` must be a string or a list of strings, got {value!r}")


def parse_case(row: dict, where: str) -> Case:
    if not isinstance(row, dict):
        raise BadInputError(f"{where}: not a JSON object")
    missing = [k for k in ("id", "question", "kind") if not str(row.get(k) or "").strip()]
    if missing:
        raise BadInputError(f"{where}: missing {', '.join(missing)}")
    kind = str(row["kind"]).strip()
    if kind not in KINDS:
        raise BadInputError(f"{where}: kind {kind!r} is not one of {', '.join(KINDS)}")
    expect = _strings(row.get("expect_any"), "expect_any", where)
    if not expect and kind != "abstain":
        raise BadInputError(f"{where}: a {kind!r} case needs `expect_any`")
    return Case(
        id=str(row["id"]).strip(),
        question=str(row["question"]).strip(),
        images=_strings(row.get("image"), "image", where),
        kind=kind,
        expect_any=expect,
        forbid=_strings(row.get("forbid"), "forbid", where),
    )


def load_folder(path: str | Path, name: str | None = None) -> EvalSet:
    """Read and check a set folder: every row parses, ids are unique, every image exists."""
    root = Path(path)
    cases_file = root / "cases.jsonl"
    if not cases_file.is_file():
        raise BadInputError(f"{root}: not an evaluation set (no cases.jsonl)")
    cases: list[Case] = []
    seen: dict[str, int] = {}
    for n, line in enumerate(cases_file.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        where = f"{cases_file}:{n}"
        try:
            row = json.loads(line)
        except ValueError as e:
            raise BadInputError(f"{where}: not JSON ({e})") from None
        case = parse_case(row, where)
        if case.id in seen:
            raise BadInputError(f"{where}: id {case.id!r} already used on line {seen[case.id]}")
        seen[case.id] = n
        absent = [p for p in case.images if not (root / p).is_file()]
        if absent:
            raise BadInputError(f"{where}: image not found: {', '.join(absent)}")
        cases.append(case)
    if not cases:
        raise BadInputError(f"{cases_file}: no cases")
    return EvalSet(name or root.resolve().name, root, cases)


def write_cases(root: Path, cases: list[dict]) -> None:
    """Write cases.jsonl (atomically: a set being generated is never read half-written)."""
    tmp = root / "cases.jsonl.tmp"
    tmp.write_text("".join(json.dumps(c, ensure_ascii=False) + "\n" for c in cases), encoding="utf-8")
    tmp.replace(root / "cases.jsonl")
