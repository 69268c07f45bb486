"""Trace inspection: a readable timeline of a conversation, a turn's evidence drawn on its images, and the
differences between two runs over the same questions.

Works on the JSONL traces the assistant writes (`assistant.trace.load_trace`) and, for `diff`, also on
the answer files `batch` writes (rows matched by id; each row's trace is read for its evidence).
"""

from __future__ import annotations

import json
from pathlib import Path

from assistant.trace import ConversationTrace, TurnTrace, load_trace
from tools.errors import BadInputError


def _ms(s: float | None) -> str:
    if s is None:
        return "-"
    return f"{s * 1000:.0f} ms" if s < 1 else f"{s:.2f} s"


def _q(text, limit: int = 200) -> str:
    if not isinstance(text, str):
        return str(text)
    text = " ".join(text.split())
    return json.dumps(text if len(text) <= limit else text[: limit - 1] + "…", ensure_ascii=False)


def _choice(b) -> str:
    choice = getattr(b, "choice", None) or getattr(b, "mode", "?")
    status = getattr(b, "status", "new")
    return choice if status in ("", "new") else f"{choice} [{status}]"


# ---- show --------------------------------------------------------------------------------------------


def show(trace: ConversationTrace, full: bool = False) -> str:
    """The conversation as a timeline, one block per turn; `full` adds every evidence record and the prompt."""
    first = trace.turns[0]
    model = first.model or {}
    lines = [
        f"conversation {trace.conversation_id}  ({len(trace.turns)} turn{'s' if len(trace.turns) != 1 else ''})",
        f"  file: {trace.path}",
        f"  model: {model.get('id', '?')} ({model.get('family', '?')}, {model.get('device', '?')})"
        + (f"  prompts: {first.prompt_versions}" if first.prompt_versions else ""),
    ]
    for t in trace.turns:
        lines.append("")
        lines.extend(show_turn(t, full))
    return "\n".join(lines)


def show_turn(t: TurnTrace, full: bool = False) -> list[str]:
    out = [f"── turn {t.turn}  {t.created}", f"  question: {_q(t.question)}"]
    for im in t.images:
        out.append(f"  image {im.index}: {im.id} {im.width}x{im.height} {im.source}")
    if t.in_scope:
        out.append(
            f"  about images: {', '.join(t.in_scope)}   intent: {t.intent or '-'}   tools by: {t.tool_policy or '-'}"
        )
    if t.tool_calls:
        out.append("  tool calls:")
        for c in t.tool_calls:
            status = "ok" if c.ok else f"ERROR {c.error}"
            hit = ", cached" if c.cache_hit else ""
            who = f"{c.source}" + (f" step {c.step}" if c.step else "")
            out.append(
                f"    {c.tool}(image {c.image_index}, {json.dumps(c.args, default=list)})  [{who}] {status}, {_ms(c.duration_s)}{hit}"
            )
            if c.reason:
                out.append(f"      why: {c.reason}")
            if c.summary:
                out.append(f"      found: {c.summary}")
            if c.evidence_ids:
                ids = c.evidence_ids
                out.append(
                    f"      evidence: {', '.join(ids[:12])}{' …' if len(ids) > 12 else ''} ({len(ids)})"
                )
    else:
        out.append("  tool calls: none")
    for b in t.budget:
        extra = f" crop={b.crop}" if b.crop else ""
        extra += f" max_side={b.max_side}" if b.max_side else ""
        out.append(
            f"  budget: image {b.image_index} -> {_choice(b)}, {b.tokens} image tokens{extra}  ({b.reason})"
        )
    if t.tokens:
        tk = t.tokens

        def n(*names):
            return next((tk[k] for k in names if k in tk), 0)

        out.append(
            f"  tokens: in {n('tokens_in', 'in')} (image {n('image_tokens', 'image')}, kv reused "
            f"{n('kv_reused_tokens', 'kv_reused')}), out {n('tokens_out', 'out')}, "
            f"embedding cache {n('embed_cache_hits')} hit(s) / {n('embed_cache_misses')} miss(es)"
        )
    if t.timings:
        out.append(
            "  timings: "
            + ", ".join(
                f"{k.removesuffix('_s')} {_ms(v)}"
                for k, v in t.timings.items()
                if isinstance(v, (int, float))
            )
        )
    if full:
        for e in t.evidence:
            box = "" if not e.get("box") else " box=" + ",".join(str(round(v)) for v in e["box"])
            out.append(
                f"    [{e['id']}] {e.get('kind')} {_q(e.get('text', ''), 80)} ({e.get('confidence', 0):.2f}){box}"
            )
        for m in t.messages:
            out.append(
                f"    <{m.get('role')}> {_q(m.get('content') if isinstance(m.get('content'), str) else json.dumps(m.get('content')), 400)}"
            )
    if t.model_output and t.model_output.strip() != t.answer.strip():
        out.append(f"  model said: {_q(t.model_output)}")
    flag = "  [abstained]" if t.abstained else ""
    out.append(f"  answer ({t.composition or 'model'}): {_q(t.answer, 400)}{flag}")
    if t.note:
        out.append(f"  note: {t.note}")
    for c in t.claims:
        mark = "verified" if c.supported else "FLAGGED "
        ev = f" [{', '.join(c.evidence)}]" if c.evidence else ""
        out.append(f"    {mark} {_q(c.text, 120)}{ev}" + (f" — {c.reason}" if c.reason else ""))
    if t.citations:
        out.append(f"  citations: {', '.join(t.citations)}")
    if t.error:
        out.append(f"  error: {t.error}")
    return out


# ---- render ------------------------------------------------------------------------------------------


def _find_image(rec, search: list[Path]):
    """The image file a trace names: its recorded source if its hash still matches, else a file with that
    hash in the given folders. None when it cannot be found."""
    import hashlib

    candidates = [Path(rec.source)] if rec.source and not rec.source.startswith("<") else []
    for folder in search:
        if folder.is_file():
            candidates.append(folder)
        elif folder.is_dir():
            candidates.extend(p for p in sorted(folder.rglob("*")) if p.is_file())
    for p in candidates:
        try:
            if p.is_file() and hashlib.sha256(p.read_bytes()).hexdigest() == rec.sha256:
                return p
        except OSError:
            continue
    return None


def render(trace: ConversationTrace, turn: int, images: list[str | Path] = ()) -> tuple[object, list[str]]:
    """The turn's images with their evidence boxes (cited ones highlighted), side by side.

    Returns (PIL image, notes). An image the trace names but that cannot be found is drawn as a grey
    canvas of its recorded size, and a note says so.
    """
    from PIL import Image

    from frontends.drawing import draw_evidence, side_by_side
    from tools.images import ImageRef

    t = trace.turn(turn)
    records = {im.id: im for tt in trace.turns for im in tt.images}
    wanted = t.in_scope or [im.id for im in t.images] or sorted({e["image"] for e in t.evidence})
    if not wanted:
        raise BadInputError(f"turn {turn} has no images to render")
    cited = set(t.citations) | {i for c in t.claims for i in c.evidence}
    panels, notes = [], []
    for image_id in wanted:
        rec = records.get(image_id)
        path = _find_image(rec, [Path(p) for p in images]) if rec else None
        if path is not None:
            pil = ImageRef.from_path(path).image
        else:
            size = (rec.width, rec.height) if rec and rec.width else (640, 480)
            pil = Image.new("RGB", size, (200, 200, 200))
            notes.append(
                f"image {image_id} not found (pass --image FILE or a folder); boxes drawn on a blank canvas"
            )
        panels.append(draw_evidence(pil, [e for e in t.evidence if e.get("image") == image_id], cited))
    return side_by_side(panels), notes


# ---- diff --------------------------------------------------------------------------------------------


def _read_jsonl(path: Path) -> list[dict]:
    rows = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip():
            try:
                rows.append(json.loads(line))
            except ValueError:
                continue  # a torn last line of an interrupted run
    return rows


def load_run(path: str | Path) -> dict[str, dict]:
    """A run as {key: record}: a batch answers file (keyed by id) or a trace (keyed by turn number).

    Each record has answer, abstained, citations, claims, error, timings and evidence ({id: text})."""
    p = Path(path)
    if not p.is_file():
        raise BadInputError(f"file not found: {p}")
    rows = _read_jsonl(p)
    if not rows:
        raise BadInputError(f"{p} holds no rows")
    if "turn" in rows[0] and "conversation_id" in rows[0]:
        return {f"turn {t.turn}": _from_turn(t) for t in load_trace(p).turns}
    if "id" not in rows[0]:
        raise BadInputError(f"{p} is neither a trace nor a batch answers file (no `id` or `turn`)")
    out = {}
    for r in rows:
        rec = {
            k: r.get(k)
            for k in ("question", "answer", "abstained", "citations", "claims", "error", "timings")
        }
        rec["evidence"] = {}
        if r.get("trace") and Path(r["trace"]).is_file():
            turns = load_trace(r["trace"]).turns
            rec["evidence"] = _from_turn(turns[-1])["evidence"]
        out[str(r["id"])] = rec
    return out


def _from_turn(t: TurnTrace) -> dict:
    return {
        "question": t.question,
        "answer": t.answer,
        "abstained": t.abstained,
        "citations": t.citations,
        "claims": [{"text": c.text, "supported": c.supported} for c in t.claims],
        "error": t.error,
        "timings": t.timings,
        "evidence": {e["id"]: e.get("text", "") for e in t.evidence},
    }


def diff(a: dict[str, dict], b: dict[str, dict], timing_ratio: float = 1.5) -> tuple[list[str], dict]:
    """What changed from run A to run B: answers, abstentions, errors, citations, claims, evidence, and
    timings that moved by more than `timing_ratio`. Returns (lines, counts)."""
    lines: list[str] = []
    counts = {"same": 0, "changed": 0, "only_a": 0, "only_b": 0, "slower": 0, "faster": 0}
    for key in [k for k in a if k not in b]:
        counts["only_a"] += 1
        lines.append(f"- {key}: only in A")
    for key in [k for k in b if k not in a]:
        counts["only_b"] += 1
        lines.append(f"+ {key}: only in B")
    for key in [k for k in a if k in b]:
        ra, rb = a[key], b[key]
        changes = []
        for field in ("answer", "abstained", "error"):
            if ra.get(field) != rb.get(field):
                changes.append(f"{field}: {_q(ra.get(field), 120)} -> {_q(rb.get(field), 120)}")
        if sorted(ra.get("citations") or []) != sorted(rb.get("citations") or []):
            changes.append(f"citations: {ra.get('citations')} -> {rb.get('citations')}")
        ca = [(c.get("text"), c.get("supported")) for c in ra.get("claims") or []]
        cb = [(c.get("text"), c.get("supported")) for c in rb.get("claims") or []]
        if ca != cb:
            flagged = lambda cs: sum(1 for _, s in cs if not s)  # noqa: E731
            changes.append(f"claims: {len(ca)} ({flagged(ca)} flagged) -> {len(cb)} ({flagged(cb)} flagged)")
        ea, eb = ra.get("evidence") or {}, rb.get("evidence") or {}
        if ea != eb:
            lost = sorted(set(ea.values()) - set(eb.values()))
            new = sorted(set(eb.values()) - set(ea.values()))
            changes.append(f"evidence: {len(ea)} -> {len(eb)} records; lost {lost[:6]} new {new[:6]}")
        ta, tb = _total(ra.get("timings")), _total(rb.get("timings"))
        if ta and tb and (tb / ta > timing_ratio or ta / tb > timing_ratio):
            counts["slower" if tb > ta else "faster"] += 1
            changes.append(f"time: {_ms(ta)} -> {_ms(tb)} ({tb / ta:.1f}x)")
        if changes:
            counts["changed"] += 1
            lines.append(f"~ {key}: {_q(ra.get('question') or '', 80)}")
            lines.extend(f"    {c}" for c in changes)
        else:
            counts["same"] += 1
    ta_all = [_total(r.get("timings")) for r in a.values()]
    tb_all = [_total(r.get("timings")) for r in b.values()]
    sa, sb = sum(t for t in ta_all if t), sum(t for t in tb_all if t)
    summary = (
        f"{counts['same']} same, {counts['changed']} changed, {counts['only_a']} only in A, {counts['only_b']} only in B;"
        f" total time {_ms(sa)} -> {_ms(sb)}"
    )
    return [summary, *lines], counts


def _total(timings) -> float | None:
    if not isinstance(timings, dict):
        return None
    for k in ("total_s", "row_s"):
        if isinstance(timings.get(k), (int, float)) and timings[k] > 0:
            return float(timings[k])
    return None
