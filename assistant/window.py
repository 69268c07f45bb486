"""What of a turn fits the model's context: the evidence by relevance, the history newest first.

A prompt is the system prompt, the history (earlier turns exactly as they were sent), this turn's image
parts, its evidence block and its question, and the answer's `max_new_tokens` must fit after it. When
all of it fits, nothing changes: the engine's KV cache reuses the history as it was. When it does not:

- the evidence block shows the records most related to the question and their layout neighbours (the
  lines on the same row, the line above and below, the rest of a small block, the colour measured at
  a line), in reading order, and says how many it left out. The records left out stay in the turn's
  evidence (extraction and verification read all of it) and the trace says which records the model saw;
- the oldest turns are compacted to their question and answer, then dropped, and when some must be,
  enough of them that the history takes at most half the room: each change alters the prompt's prefix
  (the KV cache recomputes from there), so the next turns should fit again without another.

Relevance is closeness in meaning (all-MiniLM-L6-v2, `assistant.meaning`, where it is installed) plus
the share of the question's words found in the record (OCR-tolerant), with small priors for larger text
and earlier lines. Tokens are counted by the engine's tokenizer where it has one (`count_tokens`), else
estimated at four characters a token against a conservative context (a remote server).
"""

from __future__ import annotations

import functools
import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from assistant import context, meaning
from assistant.text import STOPWORDS, similarity, singular
from tools.evidence import Evidence

# For an engine that does not say (a remote server): the project's default --max-context.
DEFAULT_CONTEXT = 4096
CHARS_PER_TOKEN = 4  # the estimate where no tokenizer counts
ESTIMATE_MARGIN = 0.1  # an estimated count may be short: a tenth of the context stays free
HISTORY_SHARE = 0.5  # when the prompt does not fit, the history keeps at most this share of the room
TEXT_KINDS = ("line", "word")  # OCR text; the other records are whole-image or per-object facts
SMALL_BLOCK = 4  # an OCR block of this many lines or fewer (a label and its value, a sign) goes together


@dataclass(frozen=True)
class Weights:
    """How relevance is scored. These only order records; what is left out is decided by room alone."""

    meaning: float = 0.6  # cosine similarity of question and record (-1..1, related text ~0.3-0.7)
    words: float = 0.4  # share of the question's words the record holds
    fact: float = 0.15  # detections, colours, labels, metadata: short, and each says much
    size: float = 0.1  # text taller than the page's usual line (headings, sign text)
    order: float = 0.05  # earlier lines first among equals (titles come first)
    # A layout neighbour of a relevant record ranks at this share of its score: a line on its row (a
    # label's value) first, then the lines before and after it, its small block, the colour of its letters.
    row: float = 0.95
    neighbour: float = 0.9


WEIGHTS = Weights()


class Counter:
    """Token counts against one engine's context: exact by its tokenizer, else estimated."""

    def __init__(self, engine):
        self.engine = engine
        context = getattr(engine, "max_context", None)
        self.context = int(context) if context else DEFAULT_CONTEXT
        tokenizer = getattr(engine, "tokenizer", None)
        self.exact = tokenizer is not None and callable(getattr(engine, "count_tokens", None))
        self.tokenizer = tokenizer if self.exact else None

    def limit(self, answer_tokens: int) -> int:
        """Most tokens a prompt may take so that an answer of `answer_tokens` still fits after it."""
        margin = 0 if self.exact else math.ceil(self.context * ESTIMATE_MARGIN)
        return self.context - answer_tokens - margin

    def texts(self, texts: Sequence[str]) -> list[int]:
        """Tokens of each text on its own (a row of the evidence block)."""
        if not texts:
            return []
        if self.tokenizer is not None:
            ids = self.tokenizer(list(texts), add_special_tokens=False)["input_ids"]
            return [len(x) for x in ids]
        return [math.ceil(len(t) / CHARS_PER_TOKEN) for t in texts]

    def prompt(self, messages: list[dict], images: Sequence = ()) -> int:
        """Tokens of a whole prompt, its images included."""
        if self.exact:
            return int(self.engine.count_tokens(messages, list(images)))
        chars = 0
        for m in messages:
            content = m.get("content")
            parts = [content] if isinstance(content, str) else [p.get("text", "") for p in content or []]
            chars += sum(len(p) for p in parts)
        cost = getattr(self.engine, "image_token_count", None)
        images_cost = sum(int(cost(im)) for im in images) if images and cost else 0
        return math.ceil(chars / CHARS_PER_TOKEN) + 4 * len(messages) + images_cost

    def describe(self) -> str:
        return (
            "the engine's tokenizer" if self.exact else f"an estimate ({CHARS_PER_TOKEN} characters a token)"
        )


# --- relevance ------------------------------------------------------------------------------------


def _words(text: str) -> list[str]:
    return [w for w in re.findall(r"[a-z0-9]+", text.lower()) if len(w) >= 3 and w not in STOPWORDS]


@functools.lru_cache(maxsize=65536)
def _close(q: str, w: str) -> bool:
    """A word OCR may have garbled into another: similar at 0.85 or more (lengths within two)."""
    return abs(len(w) - len(q)) <= 2 and similarity(q, w) >= 0.85


def word_overlap(question_words: Sequence[str], text: str) -> float:
    """Share of the question's words found in `text`: the word itself, its singular, or a reading
    of it that OCR could have garbled (similar at 0.85 or more, for words of four letters or more)."""
    if not question_words:
        return 0.0
    have = set(_words(text))
    have |= {singular(w) for w in have}

    def found(q: str) -> bool:
        if q in have or singular(q) in have:
            return True
        return len(q) >= 4 and any(_close(q, w) for w in have)

    return sum(map(found, question_words)) / len(question_words)


def _similarities(question: str, texts: list[str]) -> list[float]:
    """Meaning similarities, or [] where the model is missing or fails to load (words alone then)."""
    if not texts or not meaning.available():
        return []
    try:
        return meaning.similarities(question, texts)
    except (RuntimeError, OSError, ValueError):
        return []


def relevance(question: str, records: Sequence[Evidence], weights: Weights = WEIGHTS) -> list[float]:
    """How related each record is to the question (higher is more), one score per record."""
    texts = [e.text for e in records]
    sims = _similarities(question, texts)
    q_words = list(dict.fromkeys(_words(question)))
    heights = sorted(e.box[3] - e.box[1] for e in records if e.kind in TEXT_KINDS and e.box is not None)
    usual = heights[len(heights) // 2] if heights else 0.0
    n = max(1, len(records))
    out = []
    for i, e in enumerate(records):
        words = word_overlap(q_words, e.text)
        score = weights.meaning * sims[i] + weights.words * words if sims else words
        if e.kind not in TEXT_KINDS:
            score += weights.fact
        else:
            if e.box is not None and usual > 0:
                score += weights.size * min(1.0, max(0.0, (e.box[3] - e.box[1]) / usual - 1.0))
            score += weights.order * (1.0 - i / n)
        out.append(score)
    return out


# --- layout ---------------------------------------------------------------------------------------


def _same_row(a, b) -> bool:
    """Two boxes on one row: their vertical spans overlap by half the smaller height or more."""
    overlap = min(a[3], b[3]) - max(a[1], b[1])
    return overlap >= 0.5 * min(a[3] - a[1], b[3] - b[1]) > 0


def _inside(inner, outer) -> bool:
    cx, cy = (inner[0] + inner[2]) / 2, (inner[1] + inner[3]) / 2
    return outer[0] <= cx <= outer[2] and outer[1] <= cy <= outer[3]


def neighbours(records: Sequence[Evidence], weights: Weights = WEIGHTS) -> list[dict[int, float]]:
    """Per record, its layout neighbours (index -> the share of its score they rank at): the lines on
    its row, the lines before and after it in reading order, the other lines of a small block (a label
    and its value), and the facts measured inside its box (the colour of its letters)."""
    out: list[dict[int, float]] = [{} for _ in records]

    def link(a: int, b: int, share: float = weights.neighbour) -> None:
        if a != b:
            out[a][b] = out[b][a] = max(share, out[a].get(b, 0.0))

    lines = [i for i, e in enumerate(records) if e.kind == "line" and e.box is not None]
    # One call's lines, in reading order: line ids restart with each call of a tool on an image.
    run_of: dict[tuple, tuple] = {}
    last: dict[tuple, int] = {}
    runs: dict[tuple, list[int]] = {}
    blocks: dict[tuple, list[int]] = {}
    for i in lines:
        e = records[i]
        source, line_id = (e.tool, e.image), e.extra.get("line_id", i)
        if source not in run_of or line_id <= last[source]:
            run_of[source] = (*source, i)
        last[source] = line_id
        runs.setdefault(run_of[source], []).append(i)
        blocks.setdefault((run_of[source], e.extra.get("block_id", i)), []).append(i)
    for members in runs.values():
        for a, b in zip(members, members[1:], strict=False):
            link(a, b)
    for members in blocks.values():
        if len(members) <= SMALL_BLOCK:
            for a in members:
                for b in members:
                    link(a, b)
    by_top = sorted(lines, key=lambda i: records[i].box[1])
    for k, i in enumerate(by_top):
        bi = records[i].box
        for j in by_top[k + 1 :]:
            bj = records[j].box
            if bj[1] >= bi[3]:
                break
            if records[i].image == records[j].image and _same_row(bi, bj):
                link(i, j, weights.row)
    facts = [i for i, e in enumerate(records) if e.kind not in TEXT_KINDS and e.box is not None]
    for f in facts:
        for i in lines:
            if records[i].image == records[f].image and _inside(records[f].box, records[i].box):
                link(i, f)
    return out


# --- choosing -------------------------------------------------------------------------------------


def choose(
    scores: Sequence[float],
    costs: Sequence[int],
    near: Sequence[dict[int, float]],
    room: float,
    most: int | None = None,
) -> list[int]:
    """Indices (in their original order) of the records to show: best first by score, a neighbour of
    a relevant record ranked at its share of that record's score (`neighbours`), each taken while it
    fits in `room` tokens, at most `most` of them."""
    ranked = list(scores)
    for i, shares in enumerate(near):
        for j, share in shares.items():
            ranked[j] = max(ranked[j], share * scores[i])
    chosen, used = [], 0
    for i in sorted(range(len(scores)), key=lambda i: (-ranked[i], i)):
        if most is not None and len(chosen) >= most:
            break
        if used + costs[i] <= room:
            chosen.append(i)
            used += costs[i]
    return sorted(chosen)


@dataclass
class Fitted:
    """This turn's messages as fitted, and what the model sees of the evidence."""

    messages: list[dict]
    sent: list[str]  # ids of the records the block shows
    left_out: list[str]  # ids of the candidate records it leaves out (still evidence for verification)
    tokens: int  # the prompt's tokens, as `Counter.prompt` counts them
    limit: int  # the most it could take

    def record(self, counter: Counter) -> dict:
        """The trace's account of it (`TurnTrace.context`)."""
        return {
            "evidence_sent": list(self.sent),
            "evidence_left_out": len(self.left_out),
            "prompt_tokens": self.tokens,
            "prompt_limit": self.limit,
            "context_limit": counter.context,
            "counted_by": counter.describe(),
        }


def fit_evidence(
    counter: Counter,
    limit: int,
    question: str,
    candidates: list[Evidence],
    build: Callable[[list[Evidence], int], list[dict]],
    image_index: dict[str, int],
    images: Sequence = (),
    most: int | None = context.MAX_RECORDS,
) -> Fitted:
    """The messages `build(records, left_out)` makes with as many of `candidates` as fit in `limit`
    tokens (and at most `most`), the most relevant to `question` first (see `choose`); `images` are
    the prompt's image inputs, `image_index` numbers the images as the block names them."""
    ranked: tuple | None = None

    def pick(room: float, cap: int | None) -> list[Evidence]:
        nonlocal ranked
        if ranked is None:
            rows = [context.evidence_row(e, image_index) for e in candidates]
            costs = [c + 1 for c in counter.texts(rows)]  # each with its newline
            ranked = (relevance(question, candidates), costs, neighbours(candidates))
        return [candidates[i] for i in choose(*ranked, room, cap)]

    def done(records: list[Evidence], messages: list[dict], tokens: int) -> Fitted:
        ids = {e.id for e in records}
        left = [e.id for e in candidates if e.id not in ids]
        return Fitted(messages, [e.id for e in records], left, tokens, limit)

    records = candidates if most is None or len(candidates) <= most else pick(math.inf, most)
    messages = build(records, len(candidates) - len(records))
    tokens = counter.prompt(messages, images)
    if tokens <= limit:
        return done(records, messages, tokens)
    # The block with only its note, then the room left for records, corrected by the exact count.
    base = counter.prompt(build([], len(candidates)), images)
    room = limit - base
    for _ in range(4):
        records = pick(room, most) if room > 0 else []
        messages = build(records, len(candidates) - len(records))
        tokens = counter.prompt(messages, images)
        if tokens <= limit or not records:
            break
        room -= tokens - limit
    else:  # rows that count more together than apart, four times over: the note alone
        records, messages, tokens = [], build([], len(candidates)), base
    return done(records, messages, tokens)


def fit_history(
    limit: int,
    history: list[dict],
    sent: list,
    whole: Callable[[list[dict], list], int],
    bare: Callable[[list[dict], list], int],
    compact: Callable[[object], object],
) -> tuple[list[dict], list]:
    """The text history and sent turns to keep: as they are while they fit, else reduced oldest first.

    whole(history, sent): tokens of the prompt with that history and this turn's whole evidence block;
    bare(history, sent): the same with an empty block; compact(turn): the turn cut to its question and
    answer. Everything stays while the whole prompt fits in `limit`, or while the history takes at most
    `HISTORY_SHARE` of the room (the evidence block is then cut to fit, `fit_evidence`). Otherwise the
    fewest steps that bring the history within that share, in this order: compact the sent turns,
    oldest first; drop the text history, oldest first; drop the compacted turns, oldest first."""
    if whole(history, sent) <= limit:
        return history, sent
    alone = bare([], [])
    cap = HISTORY_SHARE * (limit - alone)
    n, m = len(sent), len(history)
    short = [compact(t) for t in sent]

    def reduced(step: int) -> tuple[list[dict], list]:
        if step <= n:
            return history, short[:step] + sent[step:]
        h = history[min(step - n, m) :]
        while h and h[0].get("role") != "user":
            h = h[1:]  # a history starts with a question
        return h, short[max(0, step - n - m) :]

    def small(step: int) -> bool:
        return bare(*reduced(step)) - alone <= cap

    lo, hi = 0, 2 * n + m  # the fewest steps that make it small: each step only shortens the history
    if small(lo):
        return history, sent
    while hi - lo > 1:
        mid = (lo + hi) // 2
        lo, hi = (lo, mid) if small(mid) else (mid, hi)
    return reduced(hi)


def reduced(history: list[dict], sent: list, kept_history: list[dict], kept: list) -> dict:
    """The trace's account of the history (`TurnTrace.context`): the earlier turns kept, those compacted
    this turn, those dropped, and the text messages (a stateless request's history) dropped."""
    return {
        "history_turns": len(kept),
        "history_compacted": sum(
            a is not b for a, b in zip(sent[len(sent) - len(kept) :], kept, strict=True)
        ),
        "history_dropped": len(sent) - len(kept),
        "history_messages_dropped": len(history) - len(kept_history),
    }
