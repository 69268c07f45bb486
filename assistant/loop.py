"""One turn of a conversation, step by step (called by `Conversation.stream`).

Each step is a small function over one `Turn` record (`assistant/turn.py`), run in order: scope
(images join, intent, the images the question means) -> tools (policy plan, follow-ups) -> image plan
(the budget planner) -> prompt (history, image parts) -> generate (model-driven tool steps, the
streamed answer) -> ground (verification and composition) -> record (trace, history, `TurnResult`).
The turn's `TurnTrace` is filled as it goes; a user error ends the turn with an "error" event and is
recorded too.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import datetime, timezone

from assistant import context, policy, window
from assistant.answer import compose_answer
from assistant.toolcalls import model_calls_tools, parse_tool_calls, strip_tool_calls
from assistant.trace import ToolCallRecord, TurnTrace
from assistant.turn import ScopedImage, SentTurn, Turn, TurnEvent, TurnResult
from tools.errors import BadInputError, UserError
from tools.evidence import Evidence


def run_turn(conv, text: str, images: list) -> Iterator[TurnEvent]:
    """Run one turn of `conv` (an `assistant.session.Conversation`), yielding its events as they happen.

    Each step fills the one `Turn` record in order; a user error ends the turn with an "error" event."""
    turn = Turn(
        TurnTrace(
            conversation_id=conv.id,
            turn=len(conv.turns) + 1,
            question=text,
            created=datetime.now(timezone.utc).isoformat(timespec="seconds"),
            grounding=conv.assistant.config.grounding,
            model=model_info(conv.assistant.engine),
            prompt_versions=context.prompt_versions(),
        ),
        t0=time.perf_counter(),
    )
    try:
        if not isinstance(text, str) or not text.strip():
            raise BadInputError("the question is empty")
        _scope(conv, turn, images)
        yield from _tools(conv, turn)
        yield from _image_plan(conv, turn)
        _prompt(conv, turn)
        yield from _generate(conv, turn)
        _ground(conv, turn)
        yield TurnEvent("done", result=_record(conv, turn))
    except UserError as e:
        turn.trace.error = str(e)
        turn.trace.timings = {"total_s": round(time.perf_counter() - turn.t0, 4)}
        conv.record(turn.trace)
        yield TurnEvent("error", text=str(e), error=e)


def _scope(conv, turn: Turn, images: list) -> None:
    """The turn's images join the conversation; the question's intent and the images it is about."""
    trace, text = turn.trace, turn.trace.question
    turn.arrived = conv.add_images(images, trace.turn)
    trace.images = list(turn.arrived)  # this turn's inputs; a repeated image keeps its first index and turn
    previous = conv.turns[-1] if conv.turns else None
    prev_intent = (
        policy.Intent(previous.intent, **previous.intent_detail) if previous and previous.intent else None
    )
    prev_scope = [r.index for r in conv.images if previous and r.id in previous.in_scope]
    turn.intent = intent = policy.classify(text, prev_intent)
    turn.scope = policy.resolve_scope(text, len(conv.images), [r.index for r in turn.arrived], prev_scope)
    turn.refs = refs = conv.image_refs()
    trace.intent = intent.name
    trace.intent_detail = {
        "target": intent.target,
        "field": intent.field,
        "inherited": intent.inherited,
        "ink": intent.ink,
    }
    trace.in_scope = [refs[i - 1].id for i in turn.scope]
    trace.in_scope_numbers = list(turn.scope)
    trace.image_sizes = {
        conv.images[i - 1].id: [conv.images[i - 1].width, conv.images[i - 1].height] for i in turn.scope
    }


def _tools(conv, turn: Turn) -> Iterator[TurnEvent]:
    """The policy's plan and its follow-ups (model-driven calls come with generation)."""
    a, cfg, trace = conv.assistant, conv.assistant.config, turn.trace
    turn.available = set(a.tool_names())
    turn.model_driven = cfg.tool_policy == "model" or (
        cfg.tool_policy == "auto" and model_calls_tools(a.engine)
    )
    trace.tool_policy = cfg.tool_policy + (
        "+model" if turn.model_driven and cfg.tool_policy == "auto" else ""
    )
    t_tools = time.perf_counter()
    if turn.available and cfg.tool_policy != "model":
        yield from _run(conv, trace, policy.plan(turn.intent, turn.scope, turn.available), "policy", 0)
        extra = []
        for i in turn.scope:
            ev = conv.evidence.all(turn.refs[i - 1].id)
            extra += policy.follow_ups(turn.intent, i, ev, turn.available, turn.refs[i - 1].size)
        yield from _run(conv, trace, extra, "policy", 0)
    turn.tools_s = time.perf_counter() - t_tools


def _image_plan(conv, turn: Turn) -> Iterator[TurnEvent]:
    """How each image enters the model this turn (the image planner: full, crop, reduced or text)."""
    new = {x.id for x in turn.arrived}
    scoped = [
        ScopedImage(turn.refs[r.index - 1], r.index, r.turn, r.id in new, r.index in turn.scope)
        for r in conv.images
    ]
    turn.decisions = conv.planner.plan(
        conv.assistant.engine, turn.trace.question, scoped, _evidence(conv, turn.trace)
    )
    turn.trace.budget = [rec for _, rec in turn.decisions]
    yield TurnEvent("budget", budget=turn.trace.budget)


def _prompt(conv, turn: Turn) -> None:
    """The prompt's parts: history, which images go in which message, the images left as text.

    Earlier turns as they were sent: an admitted image keeps its part in the message that first showed
    it; images not in the history (new, re-admitted, re-cropped) go in this turn's message. The oldest
    turns leave when the prompt would not fit the context (`window.fit_history`); an image whose
    message left goes in this turn's message."""
    turn.admitted = admitted = {rec.image: inp for inp, rec in turn.decisions if inp is not None}
    turn.index_of = {r.id: r.index for r in conv.images}
    turn.text_only = [i for i in turn.scope if turn.refs[i - 1].id not in admitted]
    turn.counter = window.Counter(conv.assistant.engine)
    text_history, sent = _window(conv)

    def tokens(history: list[dict], turns: list, whole: bool) -> int:
        _parts(turn, history, turns)
        evidence = _evidence(conv, turn.trace)
        # The whole block as a cap of records would show it (fit_evidence picks which; sizes are alike).
        records = context.prompt_records(evidence, turn.shown)[: context.MAX_RECORDS] if whole else []
        return turn.counter.prompt(_build(turn, evidence)(records, 0), turn.inputs)

    limit = turn.counter.limit(_answer_tokens(conv, turn))
    whole, bare = (lambda h, t: tokens(h, t, True)), (lambda h, t: tokens(h, t, False))
    kept_history, kept = window.fit_history(limit, text_history, sent, whole, bare, context.compacted)
    turn.trace.context = window.reduced(text_history, sent, kept_history, kept)
    if kept_history is not text_history or kept is not sent:
        # For good: the next turns start from this history, so their prompts extend this one's.
        conv.history, conv.sent = kept_history, kept
    old_parts = _parts(turn, kept_history, kept)
    # A demoted image leaves its old message for good: if it is re-admitted later it goes in that
    # turn's message, so only the newest message changes, not everything after the old one.
    for t in kept:
        t.images = [(i, key) for i, key in t.images if i in old_parts]


def _parts(turn: Turn, text_history: list[dict], sent: list[SentTurn]) -> list[str]:
    """With this history: its messages, the evidence ids they show, which images go in this turn's
    message and the images in message order (on `turn`); returns the image ids the history shows."""
    admitted = turn.admitted
    old, old_parts, turn.shown = context.history_messages(sent, {i: inp.key() for i, inp in admitted.items()})
    turn.history = text_history + old
    turn.new_parts = [rec for inp, rec in turn.decisions if inp is not None and rec.image not in old_parts]
    turn.parts = [rec.image_index for rec in turn.new_parts]
    turn.inputs = [admitted[i] for i in old_parts] + [admitted[rec.image] for rec in turn.new_parts]
    return old_parts


def _build(turn: Turn, evidence: list[Evidence], specs=None):
    """build(records, left_out) -> this turn's messages with an evidence block of those records."""

    def build(records: list[Evidence], left_out: int) -> list[dict]:
        t = turn
        args = (t.index_of, t.history, t.parts, t.text_only, specs, t.shown, records, left_out)
        return context.build_messages(t.trace.question, evidence, *args)

    return build


def _messages(conv, turn: Turn, specs=None, answer_tokens: int | None = None) -> list[dict]:
    """This generation's messages, the evidence block cut by relevance to fit the context
    (`window.fit_evidence`); the trace's `context` says which records the model saw."""
    evidence = _evidence(conv, turn.trace)
    limit = turn.counter.limit(answer_tokens or conv.assistant.config.max_new_tokens)
    candidates = context.prompt_records(evidence, turn.shown)
    fitted = window.fit_evidence(
        turn.counter,
        limit,
        turn.trace.question,
        candidates,
        _build(turn, evidence, specs),
        turn.index_of,
        turn.inputs,
    )
    turn.sent = fitted.sent
    turn.trace.context.update(fitted.record(turn.counter))
    return fitted.messages


def _answer_tokens(conv, turn: Turn) -> int:
    """The answer's token budget the prompt leaves room for: the intent's short draft, or the tool
    steps' full length where the model may call tools first."""
    cfg = conv.assistant.config
    return cfg.max_new_tokens if turn.model_driven else _gen_config(cfg, turn.intent).max_new_tokens


def _generate(conv, turn: Turn) -> Iterator[TurnEvent]:
    """Model-driven tool steps first when enabled, then the answer (streamed)."""
    a, cfg, trace = conv.assistant, conv.assistant.config, turn.trace
    specs = [
        s for s in (a.tools.registry.specs() if a.tools else []) if s["function"]["name"] in turn.available
    ]
    output, ttft = "", None
    t_gen = time.perf_counter()
    steps = cfg.max_tool_steps if (turn.model_driven and specs and a.engine is not None) else 0
    for step in range(1, steps + 1):
        trace.messages = _messages(conv, turn, specs)
        out, stats = _generate_quietly(a, conv, trace.messages, turn.inputs)
        turn.stats.append(stats)
        calls = parse_tool_calls(out, known=turn.available)
        if not calls:
            output = out
            break
        planned = [_from_model_call(c, turn.scope, len(turn.refs), step) for c in calls]
        t1 = time.perf_counter()
        yield from _run(conv, trace, planned, "model", step)
        turn.tools_s += time.perf_counter() - t1
    else:
        output = None  # no model step answered: generate the answer below, streamed
    if output:
        ttft = time.perf_counter() - turn.t0
        yield TurnEvent("token", text=strip_tool_calls(output))
    elif a.engine is not None:
        gen = _gen_config(cfg, turn.intent)
        trace.messages = _messages(conv, turn, answer_tokens=gen.max_new_tokens)
        stream = a.engine.stream(trace.messages, turn.inputs, gen, session_id=conv.id)
        for chunk in stream:
            if ttft is None:
                ttft = time.perf_counter() - turn.t0
            yield TurnEvent("token", text=chunk)
        output = stream.text
        turn.stats.append(stream.stats)
    if not trace.messages:
        trace.messages = _messages(conv, turn)
    trace.model_output = output or ""
    turn.ttft, turn.gen_s = ttft, time.perf_counter() - t_gen


def _ground(conv, turn: Turn) -> None:
    """Verification and composition: the answer the evidence supports."""
    trace = turn.trace
    t_ver = time.perf_counter()
    # Composition reads the evidence as the trace stores it (rounded boxes), so a replay is exact.
    trace.evidence = [e.to_dict() for e in _evidence(conv, trace)]
    evidence = [Evidence.from_dict(d) for d in trace.evidence]
    errors = {(c.tool, c.image): c.error for c in trace.tool_calls if c.error}  # per tool and image
    turn.composed = composed = compose_answer(
        trace.question,
        turn.intent,
        evidence,
        trace.model_output,
        errors,
        trace.image_sizes,
        conv.assistant.config.grounding,
        trace.in_scope,
        trace.in_scope_numbers,
        sees_images=bool(trace.model.get("sees_images")),
    )
    turn.verify_s = time.perf_counter() - t_ver
    trace.answer, trace.abstained, trace.citations = composed.answer, composed.abstained, composed.citations
    trace.claims, trace.composition, trace.note = composed.claims, composed.composition, composed.note
    trace.draft, trace.overruled_because = composed.draft, composed.overruled_because
    trace.status = composed.status


def _record(conv, turn: Turn) -> TurnResult:
    """Figures into the trace, the trace to disk, the turn as sent into the conversation's history."""
    trace = turn.trace
    trace.tokens = _tokens(turn.stats)
    trace.timings = {
        "tools_s": round(turn.tools_s, 4),
        "ttft_s": round(turn.ttft, 4) if turn.ttft is not None else None,
        "model_ttft_s": round(turn.stats[-1].ttft_s, 4) if turn.stats else None,
        "generate_s": round(turn.gen_s, 4),
        "verify_s": round(turn.verify_s, 4),
        "total_s": round(time.perf_counter() - turn.t0, 4),
    }
    path = conv.record(trace)
    conv.sent.append(
        SentTurn(
            images=[(rec.image, turn.admitted[rec.image].key()) for rec in turn.new_parts],
            text=trace.messages[-1]["content"][-1]["text"],
            evidence=list(turn.sent),  # the records its block showed, not those left out to fit
            answer=_history_answer(trace.model_output, turn.composed),
            question=trace.question,
        )
    )
    return TurnResult.view(trace, path)


def model_info(engine) -> dict:
    if engine is None:
        return {"id": "none", "revision": "", "family": "none", "device": ""}
    return {
        "id": str(getattr(engine, "model_id", "")),
        "revision": str(getattr(engine, "revision", "")),
        "family": str(getattr(engine, "family", "")),
        "device": str(getattr(engine, "device", "")),
        "sees_images": bool(getattr(engine, "sees_images", False)),  # real vision (Engine.sees_images)
    }


def _window(conv) -> tuple[list[dict], list[SentTurn]]:
    """The last `history_turns` turns (a small model's context is short, and old turns rarely matter):
    this conversation's own turns as sent, and, while they leave room, the text history it came with.
    Fewer when they do not fit the context (`_prompt`)."""
    keep = conv.assistant.config.history_turns
    if keep <= 0:
        return [], []
    sent = conv.sent[-keep:]
    left = keep - len(sent)
    return (conv.history[-2 * left :] if left > 0 else []), sent


def _history_answer(model_output: str, composed) -> str:
    """The assistant message the model's history holds for a turn.

    Where the verified answer keeps the model's answer (composition "model"), it is the model's own
    output: the KV cache already holds exactly those tokens, so the next turn reuses them too, and
    the words are the model's either way. Where the evidence overrode the model or the assistant
    abstained, the user saw another answer and follow-ups refer to it, so the history holds the
    verified answer (only those few tokens are recomputed; the prompt before them is still reused).
    The trace and the UI always show the verified answer.
    """
    if composed.composition == "model" and model_output.strip():
        return model_output
    return composed.answer


def _evidence(conv, trace: TurnTrace):
    scope = set(trace.in_scope)
    return [e for e in conv.evidence.all() if e.image in scope]


def _gen_config(cfg, intent: policy.Intent | None = None):
    """Generation settings for a turn; a short question's answer is short (`policy.ANSWER_TOKENS`)."""
    from assistant.core.types import GenerationConfig

    gen = GenerationConfig(max_new_tokens=cfg.max_new_tokens, temperature=cfg.temperature)
    short = policy.ANSWER_TOKENS.get(intent.name) if intent is not None else None
    if short:
        gen.max_new_tokens, gen.stop = min(gen.max_new_tokens, short), ["\n\n"]
    return gen


def _generate_quietly(a, conv, messages, inputs) -> tuple[str, object]:
    stream = a.engine.stream(messages, inputs, _gen_config(a.config), session_id=conv.id)
    for _ in stream:
        pass
    return stream.text, stream.stats


def _from_model_call(call, scope: list[int], n_images: int, step: int) -> policy.PlannedCall:
    args = dict(call.arguments)
    image = args.pop("image", None)
    index = image if isinstance(image, int) and 1 <= image <= n_images else (scope[0] if scope else 1)
    return policy.PlannedCall(call.name, index, args, f"the model asked for it (step {step})")


def _run(conv, trace: TurnTrace, planned: list, source: str, step: int) -> Iterator[TurnEvent]:
    """Run planned calls concurrently; each becomes a ToolCallRecord with the evidence ids it produced."""
    from tools.runner import ToolCall

    a = conv.assistant
    if not planned or a.tools is None:
        return
    refs = conv.image_refs()
    registry = a.tools.registry
    records, calls = [], []
    for p in planned:
        args = dict(p.args)
        if source == "policy" and p.tool in registry:  # rules never pass an argument the tool does not take
            args = {k: v for k, v in args.items() if k in registry.get(p.tool).inputs}
        rec = ToolCallRecord(p.tool, refs[p.image_index - 1].id, p.image_index, args, source, p.reason, step)
        records.append(rec)
        calls.append(ToolCall(p.tool, refs[p.image_index - 1], args))
        yield TurnEvent("tool_start", tool=rec)
    results = a.tools.run(calls, timeout_s=a.config.tool_timeout_s)
    for rec, res in zip(records, results, strict=True):
        rec.args, rec.ok, rec.error = res.args, res.ok, res.error
        rec.duration_s, rec.cache_hit = round(res.duration_s, 4), res.cache_hit
        if res.ok:
            prefix = registry.get(res.tool).evidence_prefix if res.tool in registry else None
            evs = conv.evidence.add(res.tool, res.image, res.findings, res.call_key, prefix or None)
            rec.evidence_ids = [e.id for e in evs]
            rec.summary = _summary(evs)
        else:
            rec.summary = f"error: {res.error}"
        trace.tool_calls.append(rec)
        yield TurnEvent("tool_end", tool=rec)


def _summary(evs) -> str:
    if not evs:
        return "nothing found"
    kinds: dict[str, int] = {}
    for e in evs:
        kinds[e.kind] = kinds.get(e.kind, 0) + 1
    shown = [e for e in evs if e.kind in ("line", "detection", "color", "metadata")][:4] or evs[:4]
    texts = " ".join(repr(e.text[:40]) for e in shown)
    return ", ".join(f"{n} {k}" for k, n in kinds.items()) + (f": {texts}" if texts else "")


def _tokens(stats_all) -> dict:
    keys = (
        "tokens_in",
        "tokens_out",
        "image_tokens",
        "kv_reused_tokens",
        "embed_cache_hits",
        "embed_cache_misses",
    )
    return {k: sum(int(getattr(s, k, 0) or 0) for s in stats_all) for k in keys} | {
        "generations": len(stats_all)
    }
