"""A scripted Engine for loop tests: replies are given in advance, so a test can play any model.

It implements the Engine contract (assistant/core/types.py) without weights. Tests use it where the point
is the loop's behaviour against a given model output (a model that obeys an injected instruction, one that
emits tool calls forever); the real offline model is exercised in tests/test_assistant.py.
"""

from __future__ import annotations

from evaluation.engines import TextStream

ScriptedStream = TextStream


class ScriptedEngine:
    model_id = "scripted"
    revision = "test"
    family = "text"
    device = "cpu"
    description = "scripted test engine"
    supports_images = False

    def __init__(
        self, replies=(), default: str = "I can't tell from the evidence.", sees_images: bool = False
    ):
        self.replies = list(replies)
        # False (the default) plays the offline stand-in, whose drafts count as no evidence; True plays a
        # model that sees the image, whose draft is an answer to check
        self.sees_images = sees_images
        self.default = default
        self.calls: list[list[dict]] = []  # the messages of every generation

    def image_token_count(self, image) -> int:
        return 0

    def stream(self, messages, images, gen=None, session_id=None):
        self.calls.append(messages)
        reply = self.replies.pop(0) if self.replies else self.default
        return ScriptedStream(reply(messages) if callable(reply) else reply)

    def drop_session(self, session_id) -> None:
        pass


def prompt_text(messages: list[dict]) -> str:
    """All text of a message list, for assertions about what the model was shown."""
    out = []
    for m in messages:
        content = m["content"]
        if isinstance(content, str):
            out.append(content)
        else:
            out += [p.get("text", "") for p in content if p.get("type") == "text"]
    return "\n".join(out)
