"""Ablations and modality dropout: the same samples with parts of the system taken away.

Conditions (`--conditions`):
- `both`: tools and image tokens (the assistant as shipped);
- `tools-only`: evidence text to the model, no image tokens;
- `vision-only`: image tokens, no tools;
- `no-image`: the question without its image(s);
- `corrupt-image`: each image replaced by a truncated copy of its file;
- `ocr-fails`, `detector-fails`: that tool raises on every call;
- `tools-slow`: every tool takes longer than its deadline.

Failures are injected by wrapping the tools in the registry (with a fresh tool cache, so no cached
finding stands in for the failure). Accuracy should fall in proportion to what was lost, and the answer
should say what evidence is missing, never crash.
"""

from __future__ import annotations

import dataclasses
import hashlib
import tempfile
import time
from pathlib import Path

from assistant.factory import build_assistant
from assistant.session import Assistant, AssistantConfig
from tools.errors import ToolError
from tools.images import ImageRef
from tools.runner import ToolRunner

CONDITIONS = (
    "both",
    "tools-only",
    "vision-only",
    "no-image",
    "corrupt-image",
    "ocr-fails",
    "detector-fails",
    "tools-slow",
)
ABLATIONS = ("both", "tools-only", "vision-only")
DROPOUT = ("no-image", "corrupt-image", "ocr-fails", "detector-fails", "tools-slow")
SLOW_DEADLINE_S = 0.5  # the per-call deadline under `tools-slow`; each tool then takes twice as long
_FAILING = {"ocr-fails": "ocr", "detector-fails": "detect"}


def prepare_images(condition: str, paths: list[Path]) -> list:
    """The images a sample is asked with under this condition."""
    if condition == "no-image":
        return []
    if condition == "corrupt-image":
        return [_truncated_copy(Path(p)) for p in paths]
    return [ImageRef.from_path(p) for p in paths]


_CORRUPT_DIR: Path | None = None


def _truncated_copy(path: Path) -> ImageRef:
    """A copy of the file cut to its first third, as a user's broken upload would be."""
    global _CORRUPT_DIR
    if _CORRUPT_DIR is None:
        _CORRUPT_DIR = Path(tempfile.mkdtemp(prefix="eval-corrupt-"))
    data = path.read_bytes()
    out = _CORRUPT_DIR / (hashlib.sha256(str(path.resolve()).encode()).hexdigest()[:16] + path.suffix)
    out.write_bytes(data[: max(16, len(data) // 3)])
    return ImageRef.from_path(out)


def _inject(tool, condition: str) -> None:
    """Make this tool instance fail (or be slow) the way the condition says."""
    inner = tool.forward

    if condition == "tools-slow":

        def forward(image, **args):
            time.sleep(SLOW_DEADLINE_S * 2)
            return inner(image, **args)
    else:

        def forward(image, **args):
            raise ToolError(tool.name, "the tool failed (failure injected by the evaluation)")

    tool.forward = forward


# Conditions whose tools run as shipped: they can share one tool runner (and its cache) across engines.
SHARED_TOOLS = ("both", "tools-only", "no-image", "corrupt-image")


def assistant_for(condition: str, engine, assistant_cfg: AssistantConfig, runner=None) -> Assistant:
    """An Assistant over `engine` with the parts this condition takes away taken away. `runner`: a tool
    runner to reuse where the condition leaves the tools as they are (so engines share its cache)."""
    cfg = assistant_cfg
    if condition == "vision-only":
        cfg = dataclasses.replace(cfg, no_tools=True)
    if condition == "tools-slow":
        cfg = dataclasses.replace(cfg, tool_timeout_s=SLOW_DEADLINE_S)
    shared = runner if condition in SHARED_TOOLS and not cfg.no_tools else None
    assistant = build_assistant(None, cfg, engine=engine, runner=shared)
    if assistant.tools is not None and (condition in _FAILING or condition == "tools-slow"):
        for name in assistant.tools.registry.names():  # a registry of its own: wrapping it harms no one
            if condition == "tools-slow" or name == _FAILING[condition]:
                _inject(assistant.tools.registry.get(name), condition)
        # A fresh memory-only cache: no finding cached before (or on disk) stands in for the failure.
        assistant.tools = ToolRunner(assistant.tools.registry)
    if condition == "tools-only":
        assistant.planner_factory = lambda engine, config: TextOnly()
    return assistant


class TextOnly:
    """An image planner that gives the model no image tokens: every image enters as its evidence."""

    def plan(self, engine, question, images, evidence):
        from assistant.trace import BudgetRecord

        return [
            (None, BudgetRecord(im.ref.id, im.index, "text", reason="ablation: tools only, no image tokens"))
            for im in images
        ]
