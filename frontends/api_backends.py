"""What answers an API request: the bare model (`EngineBackend`, for `serve --raw`) or the grounded
assistant (`AssistantBackend`). Both run on a worker thread and hand text chunks to `emit` as they come;
the HTTP side (`frontends.api`) turns those into SSE chunks or one response. The assistant's draft is
unchecked: its tokens go out in the `draft` field of a delta (an extension clients ignore), and the
`content` a client shows is only the verified answer, sent once verification is done. However a run ends
(finished, `Cancelled` raised by `emit`, an error), the generation it started is closed on this same
thread before `run` returns, so the engine is free for the next request at once.

A conversation kept on the server is named by an id the server issues (`grounding.conversation_id`
of every answer: 192 random bits), never by one a client makes up: whoever holds the id holds the
conversation (its images' answers), so an id must be as hard to guess as a key. A request naming an id
the server did not issue (or has forgotten: the last `keep_conversations` are kept, their images at
most `keep_pixels` together) is refused.
"""

from __future__ import annotations

import secrets
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from frontends.openai_format import ChatRequest
from tools.errors import BackendError, BadInputError, UserError


@dataclass
class Outcome:
    """What a backend produced for one request."""

    text: str
    finish_reason: str = "stop"
    prompt_tokens: int = 0
    completion_tokens: int = 0
    grounding: dict | None = None


class UnknownConversation(BadInputError):
    """A conversation_id this server did not issue, or no longer keeps: 404."""


def new_conversation_id() -> str:
    """An id nobody can guess (192 bits), in the characters a conversation id may use."""
    return "c" + secrets.token_urlsafe(24)


class Cancelled(Exception):
    """The client went away; raised inside the worker at the next chunk to stop generating."""


# emit(text) sends answer text (a delta's `content`); emit(text, "draft") the unchecked draft's tokens
Emit = Callable[..., None]


class EngineBackend:
    """The bare model: messages in, generated text out (what `serve --raw` exposes)."""

    def __init__(self, engine, name: str | None = None):
        self.engine = engine
        self.name = name or engine.model_id
        self.description = engine.description

    def run(self, req: ChatRequest, emit: Emit) -> Outcome:
        from assistant.core.types import GenerationConfig, ImageInput

        messages = []
        for t in req.turns:
            content = t.parts if t.images else t.text
            messages.append({"role": t.role, "content": content})
        gen = GenerationConfig(
            max_new_tokens=req.max_tokens or 256,
            temperature=req.temperature or 0.0,
            top_p=req.top_p if req.top_p is not None else 1.0,
            stop=req.stop,
        )
        stream = self.engine.stream(messages, [ImageInput(im) for im in req.images], gen)
        try:
            for chunk in stream:
                emit(chunk)
        finally:
            _close(stream)
        stats = stream.stats
        finish = "length" if stats.tokens_out >= gen.max_new_tokens else "stop"
        return Outcome(stream.text, finish, stats.tokens_in, stats.tokens_out)


class AssistantBackend:
    """The grounded assistant: tools, verification, traces; the answer is the verified one."""

    def __init__(
        self, assistant, name: str | None = None, keep_conversations: int = 64, keep_pixels: int = 200_000_000
    ):
        self.assistant = assistant
        self.name = name or assistant.engine.model_id
        self.description = assistant.description
        self._conversations: OrderedDict[str, object] = OrderedDict()
        # Every answer's conversation is kept (its id issued), so the kept ones are bounded in number and
        # in the decoded pixels their images hold; the least recently used go first.
        self._keep, self._keep_pixels = keep_conversations, keep_pixels

    def _trim(self) -> None:
        def pixels():
            return sum(
                r.width * r.height for c in self._conversations.values() for r in getattr(c, "images", [])
            )

        while len(self._conversations) > 1 and (
            len(self._conversations) > self._keep or pixels() > self._keep_pixels
        ):
            self._conversations.popitem(last=False)[1].close()

    def _conversation(self, req: ChatRequest):
        cid = req.conversation_id
        if cid:
            if cid not in self._conversations:
                raise UnknownConversation(
                    "conversation_id: no conversation with this id is kept here; ids are issued by the "
                    "server (grounding.conversation_id of an answer): omit it to start a new conversation"
                )
            self._conversations.move_to_end(cid)
            return self._conversations[cid], req.question.images
        cid = new_conversation_id()
        conv = self.assistant.conversation(cid)
        # A stateless request carries its history: earlier turns become the conversation's text history
        # and every image of the request comes with the question (the tools look at all of them).
        last = max(i for i, t in enumerate(req.turns) if t.role == "user")
        conv.history = [
            {"role": t.role, "content": t.text} for t in req.turns[:last] if t.role in ("user", "assistant")
        ]
        self._conversations[cid] = conv
        self._trim()
        return conv, req.images

    def run(self, req: ChatRequest, emit: Emit) -> Outcome:
        conv, images = self._conversation(req)
        result = None
        events = conv.stream(req.question.text, images)
        try:
            for ev in events:
                if ev.type == "token":
                    emit(ev.text, "draft")  # never as content: nothing unchecked reads as the answer
                elif ev.type == "error":
                    raise (
                        ev.error
                        if isinstance(ev.error, UserError)
                        else BackendError(ev.text or "the turn failed")
                    )
                elif ev.type == "done":
                    result = ev.result
        finally:
            events.close()  # on this thread, now: ends the engine's generation and frees it
            self._trim()  # its images now count
        if result is None:
            raise BackendError("the turn ended without an answer")
        text = result.answer
        emit(text)  # the verified answer: the only content a client shows
        d = result.to_dict()
        grounding = {
            k: d.get(k)
            for k in (
                "answer",
                "citations",
                "claims",
                "abstained",
                "evidence",
                "trace",
                "timings",
                "budget",
                "composition",
                "draft",
                "overruled_because",
                "status",
            )
        }
        # The trace's file name, never the server's path (it says where the server keeps its files).
        grounding["trace"] = Path(d["trace"]).name if d.get("trace") else None
        grounding["tool_calls"] = d.get("tool_calls")
        grounding["conversation_id"] = result.conversation_id
        grounding["model"] = result.model
        tokens = result.tokens or {}
        return Outcome(
            text, "stop", int(tokens.get("tokens_in", 0)), int(tokens.get("tokens_out", 0)), grounding
        )


def _close(stream) -> None:
    close = getattr(stream, "close", None)
    if close is not None:
        close()
