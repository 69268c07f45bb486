"""What the UI shows for a turn, as plain data: chat messages for tool calls (nested, collapsible), the
claims list, the per-turn figures and the evidence picture. No Gradio here, so it reads (and tests) alone.

Chat messages are Gradio "messages" dicts: {"role", "content", "metadata"}; a message with
`metadata.title` is drawn as a collapsible thought, nested under the one whose `id` is its `parent_id`.
"""

from __future__ import annotations

import json

from assistant.answer import UNSURE_MARKS


def _args(args: dict) -> str:
    return ", ".join(f"{k}={json.dumps(v, default=list)}" for k, v in args.items()) or "defaults"


def _choice(b) -> str:
    """A budget decision's choice (full / reduced / crop / text), from a record or its dict."""
    if isinstance(b, dict):
        return b.get("choice") or b.get("mode") or "?"
    return getattr(b, "choice", None) or getattr(b, "mode", "?")


def tools_parent(turn: int) -> dict:
    """The collapsible "Tools" message of a turn; each tool call nests under it."""
    return {
        "role": "assistant",
        "content": "",
        "metadata": {"title": "Tools", "id": f"tools-{turn}", "status": "pending"},
    }


def tool_message(call, turn: int, n: int, done: bool) -> dict:
    """One tool call: arguments while it runs; then result summary, evidence ids, duration."""
    lines = [f"**arguments:** {_args(call.args)}"]
    if call.reason:
        lines.append(f"**why:** {call.reason}")
    if done:
        if call.ok:
            lines.append(f"**found:** {call.summary or 'nothing'}")
            if call.evidence_ids:
                ids = call.evidence_ids
                lines.append(f"**evidence:** {', '.join(ids[:15])}{' …' if len(ids) > 15 else ''}")
        else:
            lines.append(f"**error:** {call.error}")
    meta = {
        "title": f"{call.tool} · image {call.image_index}" + (" (cached)" if done and call.cache_hit else ""),
        "id": f"tool-{turn}-{n}",
        "parent_id": f"tools-{turn}",
        "status": "done" if done else "pending",
    }
    if done:
        meta["duration"] = round(float(call.duration_s), 3)
        if not call.ok:
            meta["log"] = "failed"
    return {"role": "assistant", "content": "\n\n".join(lines), "metadata": meta}


def budget_message(budget, turn: int) -> dict:
    lines = []
    for b in budget:
        extra = f", crop {[round(v) for v in b.crop]}" if b.crop else ""
        extra += f", longer side ≤ {b.max_side}px" if b.max_side else ""
        status = f" ({b.status})" if getattr(b, "status", "new") not in ("", "new") else ""
        lines.append(
            f"- image {b.image_index}: **{_choice(b)}**{status}, {b.tokens} image tokens{extra} — {b.reason}"
        )
    spent = sum(b.tokens for b in budget)
    return {
        "role": "assistant",
        "content": "\n".join(lines) or "no images",
        "metadata": {"title": f"Image budget: {spent} tokens", "id": f"budget-{turn}", "status": "done"},
    }


def streaming_draft_message(turn: int) -> dict:
    """Where the model's draft streams while the tools' check is pending: collapsed, titled as unverified,
    never the answer's bubble (the verified answer appears below it when the turn is done)."""
    return {
        "role": "assistant",
        "content": "",
        "metadata": {"title": "Model's draft (not verified yet)", "id": f"draft-{turn}", "status": "pending"},
    }


def draft_message(model_output: str, overruled_because: str, turn: int) -> dict:
    """The model's own words, when verification replaced or amended them, and why (the answer itself
    stays short: the draft and the reason live here, in the collapsible, and in the JSON)."""
    body = model_output.strip() or "(empty)"
    why = overruled_because.strip()
    if why:
        body += f"\n\n**Overruled because:** {why}"
    return {
        "role": "assistant",
        "content": body,
        "metadata": {
            "title": "Model's draft" + (" (overruled)" if why else " (before verification)"),
            "id": f"draft-{turn}",
            "status": "done",
        },
    }


def claims_markdown(result: dict) -> str:
    """Verified and flagged claims of the answer, with the evidence ids behind each."""
    claims = result.get("claims") or []
    out = []
    if result.get("abstained"):
        out.append("**The assistant abstained**: the evidence does not settle the question.")
    elif any(m in (result.get("answer") or "") for m in UNSURE_MARKS):
        mark = next(m for m in UNSURE_MARKS if m in result["answer"])
        what = "an OCR reading" if mark == UNSURE_MARKS[0] else "a detection"
        out.append(f"**⚠ {mark}**: what follows the mark is {what} too unsure to state as fact.")
    elif result.get("status") == "unverified":
        out.append(
            "**⚠ Not verified**: the model's own answer, shown as such; no loaded tool could check it."
        )
    if not claims:
        out.append("_No checkable claims in this answer._")
    for c in claims:
        ev = f" — {', '.join(f'`{e}`' for e in c.get('evidence') or [])}" if c.get("evidence") else ""
        mark = "✓ verified" if c.get("supported") else "⚠ flagged"
        reason = f" <small>({c['reason']})</small>" if c.get("reason") else ""
        out.append(f"- {mark}: {c.get('text', '')}{ev}{reason}")
    if result.get("citations"):
        out.append(f"\n**Cited:** {', '.join(f'`{c}`' for c in result['citations'])}")
    return "\n".join(out)


def _tok(tokens: dict, *names: str):
    """A token count under its current or older name (traces keep the names they were written with)."""
    return next((tokens[n] for n in names if n in tokens), None)


def _s(v) -> str:
    return "–" if not isinstance(v, (int, float)) else (f"{v * 1000:.0f} ms" if v < 1 else f"{v:.2f} s")


def figures_markdown(result: dict) -> str:
    """Per-turn figures: image tokens and the budget decision, cache hits, time to first token, total."""
    tokens = result.get("tokens") or {}
    timings = result.get("timings") or {}
    budget = result.get("budget") or []
    calls = result.get("tool_calls") or []
    decisions = (
        "; ".join(f"img {b['image_index']}: {_choice(b)} ({b['tokens']})" for b in budget) or "no images"
    )
    hits = sum(1 for c in calls if c.get("cache_hit"))
    image_tokens = _tok(tokens, "image_tokens", "image")
    if image_tokens is None:
        image_tokens = sum(b.get("tokens", 0) for b in budget)
    rows = [
        ("image tokens", f"{image_tokens} — {decisions}"),
        (
            "prompt / answer tokens",
            f"{_tok(tokens, 'tokens_in', 'in')} / {_tok(tokens, 'tokens_out', 'out')}",
        ),
        ("KV cache reused", f"{_tok(tokens, 'kv_reused_tokens', 'kv_reused') or 0} tokens"),
        ("tool cache hits", f"{hits} of {len(calls)} calls"),
    ]
    if "embed_cache_hits" in tokens:
        rows.append(
            (
                "image embedding cache",
                f"{tokens['embed_cache_hits']} hit(s), {tokens.get('embed_cache_misses', 0)} miss(es)",
            )
        )
    rows += [
        ("time to first token", _s(timings.get("ttft_s"))),
        ("tools", _s(timings.get("tools_s"))),
        ("total", _s(timings.get("total_s"))),
    ]
    return (
        "| turn "
        + str(result.get("turn", ""))
        + " | |\n|---|---|\n"
        + "\n".join(f"| {k} | {v} |" for k, v in rows)
    )


def evidence_picture(result: dict, images: dict[str, object]):
    """The turn's images (PIL, by image id) with evidence boxes; cited ones highlighted. None without images."""
    from frontends.drawing import draw_evidence, side_by_side

    evidence = result.get("evidence") or []
    cited = set(result.get("citations") or []) | {
        e for c in result.get("claims") or [] for e in c.get("evidence") or []
    }
    wanted = [i for i in dict.fromkeys(e["image"] for e in evidence) if i in images]
    for b in result.get("budget") or []:  # images in scope but with no evidence are still shown
        if b.get("image") in images and b["image"] not in wanted:
            wanted.append(b["image"])
    if not wanted:
        return None
    return side_by_side(
        [draw_evidence(images[i], [e for e in evidence if e["image"] == i], cited) for i in wanted]
    )


def is_offline(description: str) -> bool:
    d = description.lower()
    return "offline" in d or "stand-in" in d
