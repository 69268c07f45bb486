"""Run the assistant over evaluation sets, resumably, and score every sample.

For each (engine, condition) the answers go to `OUT/answers-ENGINE-CONDITION.jsonl` through
assistant/answer_log.py, the resumable log `launch.py batch` writes too (whole rows, fsynced, skipped
on rerun, progress bar); the scores are then recomputed from those answers and the cases into
`OUT/results.jsonl` (one row per sample and engine/condition), from which report.py writes the report.
Answers produced elsewhere (a `launch.py batch` output, or any JSONL with id / answer / abstained) are
scored the same way with `score_batch`.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from assistant.answer_log import RESULT_KEYS, AnswerLog, Job, run_batch
from evaluation import metrics
from evaluation.sets import resolve_set
from evaluation.sets.folder import Case, EvalSet
from tools.errors import BadInputError
from tools.images import ImageRef

# What an answers row keeps of a turn (a batch row's keys plus what scoring and the report read).
ANSWER_KEYS = (
    *RESULT_KEYS,
    "note",
    "draft",
    "overruled_because",
    "model_output",
    "composition",
    "intent",
    "evidence_ids",
    "tool_errors",
    "image_tokens",
)


@dataclass
class EvalConfig:
    sets: list[str]  # builtin set names or folders
    out: Path
    engines: list[str] = field(default_factory=lambda: ["default"])  # default | oracle | hallucinating
    conditions: list[str] = field(default_factory=lambda: ["both"])  # see evaluation/ablations.py
    limit: int | None = None  # first N cases of each set
    progress: bool = True


# (engine name, condition) -> an Assistant; the runner builds each once, lazily.
BuildFn = Callable[[str, str], object]


def load_sets(names: list[str], limit: int | None = None) -> list[EvalSet]:
    sets = [resolve_set(n) for n in names]
    seen: dict[str, str] = {}
    for s, n in zip(sets, names, strict=True):
        if s.name in seen:
            raise BadInputError(f"two sets are both named {s.name!r} ({seen[s.name]} and {n})")
        seen[s.name] = n
        if limit is not None:
            s.cases = s.cases[:limit]
    return sets


def compact(result: dict) -> dict:
    """A TurnResult.to_dict() cut to what an answers row keeps."""
    out = {k: result.get(k) for k in ANSWER_KEYS if k in result}
    out["evidence_ids"] = [e.get("id") for e in result.get("evidence") or []]
    out["tool_errors"] = {c["tool"]: c["error"] for c in result.get("tool_calls") or [] if c.get("error")}
    out["image_tokens"] = (result.get("tokens") or {}).get("image_tokens", 0)
    return out


def answer_case(assistant, eval_set: EvalSet, case: Case, images=None) -> dict:
    """One sample through the assistant: the per-row hook first (engines that need the sample)."""
    set_case = getattr(assistant.engine, "set_case", None)
    if set_case is not None:
        set_case(case.to_dict())
    if images is None:
        images = [ImageRef.from_path(p) for p in eval_set.image_paths(case)]
    conv = assistant.conversation()
    try:
        return compact(conv.ask(case.question, images).to_dict())
    finally:
        conv.close()


def answers_path(out: Path, engine: str, condition: str) -> Path:
    return out / f"answers-{engine}-{condition}.jsonl"


def run_answers(cfg: EvalConfig, sets: list[EvalSet], build: BuildFn, log=print) -> None:
    """Answer every sample not yet answered, for every engine and condition."""
    from evaluation.ablations import prepare_images

    for engine in cfg.engines:
        for condition in cfg.conditions:
            jobs, by_id = [], {}
            for s in sets:
                for c in s.cases:
                    jobs.append(Job(f"{s.name}/{c.id}", c.question))
                    by_id[jobs[-1].id] = (s, c)
            alog = AnswerLog(answers_path(cfg.out, engine, condition))
            todo = sum(j.id not in alog.rows for j in jobs)
            if not todo:
                log(f"{engine}/{condition}: all {len(jobs)} samples already answered")
                continue
            assistant = build(engine, condition)
            log(f"{engine}/{condition}: {todo} of {len(jobs)} samples to answer ({assistant.description})")

            def answer(job, _image, assistant=assistant, condition=condition, by_id=by_id):
                s, c = by_id[job.id]
                return answer_case(assistant, s, c, prepare_images(condition, s.image_paths(c)))

            run_batch(jobs, None, alog, answer, progress=cfg.progress, keys=ANSWER_KEYS)


def result_row(eval_set: EvalSet, case: Case, answer: dict, engine: str, condition: str) -> dict:
    """One scored sample: the case, what the assistant answered, every score."""
    row = {
        "id": f"{eval_set.name}/{case.id}",
        "set": eval_set.name,
        "kind": case.kind,
        "engine": engine,
        "condition": condition,
        "question": case.question,
        "images": case.images,
        "expected": case.expect_any,
        "forbid": case.forbid,
        "answer": answer.get("answer"),
        "abstained": bool(answer.get("abstained")),
        "error": answer.get("error"),
        # The model's words before verification (`draft`: tool calls stripped; older rows: `model_output`).
        "draft": answer.get("draft") if answer.get("draft") is not None else answer.get("model_output"),
        "composition": answer.get("composition"),
        "status": answer.get("status"),  # verified | unverified | abstained
        "claims": answer.get("claims") or [],
        "citations": answer.get("citations") or [],
        "evidence_ids": answer.get("evidence_ids") or [],
        "tool_errors": answer.get("tool_errors") or {},
        "timings": answer.get("timings") or {},
        "image_tokens": answer.get("image_tokens") or 0,
        "trace": answer.get("trace"),
    }
    t = row["timings"]
    row["latency_s"] = t.get("total_s") if isinstance(t.get("total_s"), (int, float)) else t.get("row_s")
    case_d = case.to_dict()
    row["scores"] = metrics.score(case_d, answer)
    row["draft_outcome"] = metrics.draft_outcome(case_d, row["draft"]) if row["draft"] is not None else None
    return row


def score_answers(
    sets: list[EvalSet], answers: dict[str, dict], engine: str, condition: str, bare_ids: bool = False
) -> list[dict]:
    """Result rows for every case that has an answer (`answers` keyed `SET/ID`, or `ID` with bare_ids)."""
    rows = []
    for s in sets:
        for c in s.cases:
            a = answers.get(f"{s.name}/{c.id}") or (answers.get(c.id) if bare_ids else None)
            if a is not None:
                rows.append(result_row(s, c, a, engine, condition))
    return rows


def write_results(out: Path, rows: list[dict]) -> Path:
    out.mkdir(parents=True, exist_ok=True)
    path = out / "results.jsonl"
    tmp = path.with_suffix(".jsonl.tmp")
    tmp.write_text("".join(json.dumps(r, ensure_ascii=False, default=str) + "\n" for r in rows), "utf-8")
    tmp.replace(path)
    return path


def collect(cfg: EvalConfig, sets: list[EvalSet]) -> list[dict]:
    rows = []
    for engine in cfg.engines:
        for condition in cfg.conditions:
            p = answers_path(cfg.out, engine, condition)
            if p.exists():
                rows += score_answers(sets, AnswerLog(p).rows, engine, condition)
    return rows


def run_eval(cfg: EvalConfig, build: BuildFn, log=print) -> list[dict]:
    """Answer (resumably), score, write results.jsonl and the report; returns the result rows."""
    from evaluation.report import write_report

    sets = load_sets(cfg.sets, cfg.limit)
    run_answers(cfg, sets, build, log)
    rows = collect(cfg, sets)
    write_results(cfg.out, rows)
    write_report(cfg.out, rows)
    return rows


def score_batch(
    answers_file: str | Path, set_names: list[str], out: Path, limit: int | None = None
) -> list[dict]:
    """Score answers made elsewhere: rows with `id` (the case id, or SET/ID), `answer`, `abstained`."""
    from evaluation.report import write_report

    p = Path(answers_file)
    if not p.is_file():
        raise BadInputError(f"answers file not found: {p}")
    sets = load_sets(set_names, limit)
    answers = AnswerLog(p).rows
    if not answers:
        raise BadInputError(f"{p}: no rows with an `id`")
    rows = score_answers(sets, answers, "batch", "both", bare_ids=True)
    if not rows:
        raise BadInputError(f"{p}: none of its {len(answers)} ids is a case of {', '.join(set_names)}")
    write_results(out, rows)
    write_report(out, rows)
    return rows
