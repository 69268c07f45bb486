"""lmms-eval model adapter: score the grounded assistant on TextVQA, DocVQA, OCRBench, POPE, V*Bench...

Registered through lmms-eval's entry point group `lmms_eval.models` (pyproject.toml), so on a machine
with lmms-eval, the data and a GPU:

    pip install lmms-eval            # large: datasets, evaluate, wandb... (not a dependency of this project)
    lmms-eval --model grounded_vlm --model_args model=auto,answer=short --tasks textvqa_val,pope

Each request runs one full assistant turn (tools, budget, model, verification) on the task's images
and prompt. `answer=short` returns what a benchmark's scorer expects (the quoted text when the answer
has one, else the answer without citations, without the note quoting an overruled model answer);
`answer=full` returns the answer as the user sees it. Abstentions are returned as they are, and score
as wrong. Only `generate_until` tasks are supported: the assistant does not rank continuations.

This module imports lmms-eval at the top (it is only ever imported by lmms-eval itself).
"""

from __future__ import annotations

from lmms_eval.api.instance import Instance
from lmms_eval.api.model import lmms
from lmms_eval.models.registry_v2 import ModelManifest
from tqdm import tqdm

from evaluation.metrics import short_answer, shown_as_fact

MODEL_ID = "grounded_vlm"


def manifest() -> ModelManifest:
    """The payload of the `lmms_eval.models` entry point."""
    return ModelManifest(
        model_id=MODEL_ID,
        simple_class_path="evaluation.lmms_adapter.GroundedVLM",
        aliases=("grounded-vlm",),
    )


def _flatten(visuals) -> list:
    out = []
    for v in visuals if isinstance(visuals, (list, tuple)) else [visuals]:
        out += _flatten(v) if isinstance(v, (list, tuple)) else [v]
    return [v for v in out if v is not None]


class GroundedVLM(lmms):
    """The grounded assistant as an lmms-eval "simple" model."""

    is_simple = True

    def __init__(
        self,
        model: str = "auto",
        device: str | None = None,
        answer: str = "short",
        max_new_tokens: int = 160,
        batch_size: int = 1,
        assistant=None,
        **kwargs,
    ) -> None:
        super().__init__()
        if answer not in ("short", "full"):
            raise ValueError(f"answer must be 'short' or 'full', got {answer!r}")
        self.answer = answer
        if assistant is None:
            import dataclasses

            from assistant.core.config import ModelConfig
            from assistant.factory import build_assistant
            from assistant.session import AssistantConfig

            mcfg = ModelConfig(model=model)
            if device:
                mcfg = dataclasses.replace(mcfg, device=device.split(":")[0])
            assistant = build_assistant(
                mcfg, AssistantConfig(max_new_tokens=int(max_new_tokens), write_traces=False)
            )
        self.assistant = assistant
        self.batch_size_per_gpu = int(batch_size)

    def _ask(self, question: str, images: list) -> str:
        from tools.images import ImageRef

        refs = [ImageRef.coerce(im) for im in images]
        conv = self.assistant.conversation()
        try:
            r = conv.ask(question, refs)
        finally:
            conv.close()
        if self.answer == "full" or r.abstained:
            return r.answer
        return short_answer(shown_as_fact(r.answer, r.note))

    def generate_until(self, requests: list[Instance]) -> list[str]:
        out = []
        for req in tqdm(requests, disable=self.rank != 0, desc="grounded_vlm"):
            context, _gen_kwargs, doc_to_visual, doc_id, task, split = req.args
            visuals = _flatten(doc_to_visual(self.task_dict[task][split][doc_id])) if doc_to_visual else []
            text = self._ask(context, visuals)
            out.append(text)
            self.cache_hook.add_partial("generate_until", (context, _gen_kwargs), text)
        return out

    def loglikelihood(self, requests: list[Instance]) -> list[tuple[float, bool]]:
        raise NotImplementedError(
            "grounded_vlm answers by generating and verifying; loglikelihood (multiple-choice ranking) "
            "tasks are not supported: use generate_until tasks"
        )

    def generate_until_multi_round(self, requests) -> list[str]:
        raise NotImplementedError("grounded_vlm: multi-round tasks are not supported")
