"""The image-token budget: per turn, decide how each image of the conversation enters the model.

Images are the expensive part of a turn. For every image the planner chooses one of
- `full`: the whole image at the processor's own resolution;
- `reduced`: the whole image downscaled (`ImageInput.max_side`), which for AnyRes / tiled processors
  means fewer tiles and fewer tokens;
- `crop`: only the region the question is about (`ImageInput.crop`), found from the OCR words or
  detector boxes that match the question, with a margin; more pixels per token where it matters;
- `text`: no image tokens; the image's tool evidence stands in for it.

Costs come from the engine (`engine.image_token_count`), so every family (LLaVA's fixed count,
LLaVA-NeXT / OneVision AnyRes grids, Mllama tiles, text-only engines) is priced by the code that
knows it. Two budgets apply: image tokens encoded this turn (new and re-admitted images) and image
tokens held in the conversation's context. When the conversation budget runs out the oldest images
are demoted to text; a question that refers to one ("the first picture", "that image", "the sign
again") re-admits it. Admitted images keep their `ImageInput` across turns so the KV cache of the
conversation prefix stays valid. Every decision carries its token count and reason for the trace.
The settings and the decision records live in `assistant/budget_types.py` and are importable from here.
"""

from __future__ import annotations

from dataclasses import dataclass
from dataclasses import fields as dataclass_fields

from assistant import scope
from assistant.budget_cues import find_region, name_words, references, squared
from assistant.budget_types import CHOICES, BudgetConfig, BudgetDecision, TurnBudget
from assistant.core.types import ImageInput
from assistant.text import content_words
from assistant.trace import BudgetRecord
from tools.evidence import Box, Evidence
from tools.images import ImageRef


@dataclass
class _Slot:
    """What the planner remembers about one image of the conversation."""

    ref: ImageRef
    index: int  # position in the conversation (0 = first image)
    turn: int  # turn it arrived in
    words: set[str]  # content words that name it: questions asked about it, labels, its file name
    input: ImageInput | None = None  # None while it is text only
    decision: BudgetDecision | None = None
    since: int = 0  # turn of the latest decision that was not "kept"


@dataclass
class _Option:
    choice: str
    input: ImageInput
    tokens: int
    reason: str
    evidence: list[str]


class BudgetPlanner:
    """One per conversation: call `plan_turn` every turn, after the tools ran and before the model."""

    def __init__(self, engine, config: BudgetConfig | None = None):
        self.engine = engine
        self.config = config or BudgetConfig()
        self.per_turn, self.per_conversation = self.config.resolve(engine)
        self._slots: dict[str, _Slot] = {}
        self._turn = 0
        self._costs: dict[str, int] = {}
        self._scope: list[int] = []  # the last turn's images (1-based), for "that picture"

    def cost(self, image: ImageInput) -> int:
        key = image.key()
        if key not in self._costs:
            self._costs[key] = int(self.engine.image_token_count(image))
        return self._costs[key]

    def plan_turn(
        self, question: str, new_images=(), evidence: list[Evidence] = (), referenced: list[str] | None = None
    ) -> TurnBudget:
        """Decide for every image of the conversation; `evidence` is the conversation's tool evidence,
        `referenced` ids of older images the caller already knows the question is about (None: resolved
        here by `assistant.scope`, the tool policy's grammar)."""
        self._turn += 1
        new_ids = []
        for obj in new_images:
            ref = ImageRef.coerce(obj)
            if ref.id not in self._slots:
                self._slots[ref.id] = _Slot(ref, len(self._slots), self._turn, name_words(ref.source))
            new_ids.append(ref.id)
        q_words = content_words(question)
        order = [s.ref.id for s in sorted(self._slots.values(), key=lambda s: s.index)]
        current = [order.index(i) + 1 for i in new_ids]
        named = [order[n - 1] for n in scope.named(question, len(order), current, self._scope)]
        if referenced is None:  # no caller resolved the scope: the same grammar as the tool policy's
            referenced = named
        # what an image shows names it only when the question names no image itself
        found = [] if named else references(q_words, list(self._slots.values()), new_ids)
        referenced = list(
            dict.fromkeys([i for i in referenced if i in self._slots and i not in new_ids] + found)
        )
        self._scope = [order.index(i) + 1 for i in dict.fromkeys([*new_ids, *referenced])]
        for i in set(new_ids) | set(referenced):
            self._slots[i].words |= q_words
        for e in evidence:  # what an image shows names it: detected classes and the words read in it
            if e.image in self._slots and e.kind in ("detection", "word", "line"):
                self._slots[e.image].words |= content_words(e.text)

        decisions: dict[str, BudgetDecision] = {}
        if not getattr(self.engine, "supports_images", False):
            for s in self._slots.values():
                decisions[s.ref.id] = BudgetDecision(
                    s.ref.id,
                    "text",
                    0,
                    "the model cannot see images; its tool evidence stands in",
                    "new" if s.ref.id in new_ids else "kept",
                )
            return self._finish(decisions)

        protected = set(new_ids) | set(referenced)
        to_admit = [i for i in referenced if self._slots[i].input is None and i not in new_ids] + new_ids
        turn_left = self.per_turn
        for image_id in to_admit:
            slot = self._slots[image_id]
            status = "new" if image_id in new_ids else "readmitted"
            options = self._options(slot, question, q_words, evidence)
            full = self.cost(ImageInput(slot.ref))
            chosen = None
            for opt in options:
                if opt.tokens > turn_left:
                    continue
                if self._make_room(opt.tokens, protected, decisions):
                    chosen = opt
                    break
            if chosen is None:
                smallest = min((o.tokens for o in options), default=full)
                why = (
                    f"budget: {turn_left} tokens left this turn, {self.per_conversation - self._held(decisions)} in the "
                    f"conversation; the smallest view costs {smallest}; its tool evidence stands in"
                )
                if self.config.strategy == "text":
                    why = "strategy 'text': tool evidence stands in for the pixels"
                decisions[image_id] = BudgetDecision(image_id, "text", 0, why, status, full)
                slot.input = None
                continue
            turn_left -= chosen.tokens
            slot.input = chosen.input
            decisions[image_id] = BudgetDecision(
                image_id,
                chosen.choice,
                chosen.tokens,
                chosen.reason,
                status,
                full,
                crop=list(chosen.input.crop) if chosen.input.crop else None,
                max_side=chosen.input.max_side,
                evidence=chosen.evidence,
            )
        for slot in self._slots.values():
            if slot.ref.id in decisions:
                continue
            prev = slot.decision
            if slot.input is None:
                decisions[slot.ref.id] = BudgetDecision(
                    slot.ref.id,
                    "text",
                    0,
                    f"text only since turn {slot.since}; not referenced",
                    "kept",
                    prev.full_tokens if prev else 0,
                )
            else:
                decisions[slot.ref.id] = BudgetDecision(
                    slot.ref.id,
                    prev.choice,
                    prev.tokens,
                    f"in context since turn {slot.since}; nothing new to encode",
                    "kept",
                    prev.full_tokens,
                    prev.crop,
                    prev.max_side,
                    prev.evidence,
                )
        return self._finish(decisions)

    # -- internals ---------------------------------------------------------------------------------

    def _finish(self, decisions: dict[str, BudgetDecision]) -> TurnBudget:
        ordered = sorted(self._slots.values(), key=lambda s: s.index)
        for s in ordered:
            if decisions[s.ref.id].status != "kept" or s.decision is None:
                s.since = self._turn
            s.decision = decisions[s.ref.id]
        return TurnBudget(
            turn=self._turn,
            per_turn=self.per_turn,
            per_conversation=self.per_conversation,
            decisions=[decisions[s.ref.id] for s in ordered],
            inputs={s.ref.id: s.input for s in ordered if s.input is not None},
        )

    def _held(self, decisions: dict[str, BudgetDecision]) -> int:
        """Image tokens in context: this turn's decisions plus images kept from earlier turns."""
        kept = [
            s
            for s in self._slots.values()
            if s.input is not None and s.decision and s.ref.id not in decisions
        ]
        return sum(d.tokens for d in decisions.values()) + sum(s.decision.tokens for s in kept)

    def _make_room(self, tokens: int, protected: set[str], decisions: dict[str, BudgetDecision]) -> bool:
        """Demote the oldest unprotected images until `tokens` more fit the conversation; False if they cannot."""
        need = self._held(decisions) + tokens - self.per_conversation
        if need <= 0:
            return True
        victims = [
            s
            for s in sorted(self._slots.values(), key=lambda s: s.index)
            if s.input is not None and s.ref.id not in protected and s.ref.id not in decisions
        ]
        if sum(s.decision.tokens for s in victims) < need:
            return False
        for s in victims:
            if need <= 0:
                break
            need -= s.decision.tokens
            decisions[s.ref.id] = BudgetDecision(
                s.ref.id,
                "text",
                0,
                f"demoted: the conversation budget of {self.per_conversation} image tokens ran out; "
                f"oldest image first, its tool evidence stands in (frees {s.decision.tokens})",
                "demoted",
                s.decision.full_tokens,
            )
            s.input = None
        return True

    def _options(self, slot: _Slot, question: str, q_words: set[str], evidence) -> list[_Option]:
        """Ways to show this image, best first."""
        cfg = self.config
        if cfg.strategy == "text":
            return []
        ref = slot.ref
        full = ImageInput(ref)
        full_cost = self.cost(full)
        options: list[_Option] = []
        found = None
        if cfg.strategy != "full":
            found = find_region(question, q_words, ref, evidence, cfg, force=cfg.strategy == "crop")
        if found is not None:
            box, ids, why = found
            crop = ImageInput(ref, crop=box)
            cost = self.cost(crop)
            # Square views (LLaVA's fixed grid, centre-cropping processors) cut a wide crop's ends off;
            # where a squarer crop costs no more tokens, it keeps the ends and some context.
            square = ImageInput(ref, crop=squared(box, ref.size))
            if square.crop != box and self.cost(square) <= cost:
                crop, cost = square, self.cost(square)
            options.append(
                _Option(
                    "crop",
                    crop,
                    cost,
                    f"{why}; crop costs {cost} tokens vs {full_cost} for the whole image",
                    ids,
                )
            )
        options.append(_Option("full", full, full_cost, f"whole image, {full_cost} tokens", []))
        for base in [o for o in options]:
            last = base.tokens
            for side in cfg.reduced_sides:
                smaller = ImageInput(ref, crop=base.input.crop, max_side=side)
                cost = self.cost(smaller)
                if cost < last:
                    last = cost
                    options.append(
                        _Option(
                            base.choice if base.choice == "crop" else "reduced",
                            smaller,
                            cost,
                            f"{'crop' if base.choice == 'crop' else 'whole image'} shrunk to a longer side of "
                            f"{side}px to fit the budget: {cost} tokens instead of {base.tokens}",
                            base.evidence,
                        )
                    )
        # A crop dearer than the whole image (an AnyRes grid upscaling a small region) is no saving.
        options = [o for o in options if o.choice != "crop" or o.tokens <= full_cost]
        # Preferred view first (the richest crop when the question is about a region), then the rest
        # from richest to cheapest.
        options.sort(key=lambda o: -o.tokens)
        best_crop = next((o for o in options if o.choice == "crop"), None)
        if best_crop is None:
            return options
        return [best_crop] + [o for o in options if o is not best_crop]


def evidence_stand_in(image_id: str, evidence: list[Evidence], limit: int = 40) -> str:
    """What stands in for an image sent as text: its evidence, one short line each (untrusted data)."""
    lines = [e.short() for e in evidence if e.image == image_id and e.kind != "word"][:limit]
    return "\n".join(lines) if lines else "(no tool evidence for this image)"


class LoopPlanner:
    """The budget planner behind the assistant loop's image-planner seam (`assistant.session.ImagePlanner`)."""

    def __init__(self, engine, config: BudgetConfig):
        self.planner = BudgetPlanner(engine, config)

    def plan(self, engine, question: str, images, evidence) -> list[tuple]:
        """One (ImageInput | None, BudgetRecord) per conversation image, in the conversation's order."""
        new = [im.ref for im in images if im.current or im.ref.id not in self.planner._slots]
        in_scope = [im.ref.id for im in images if im.in_scope and not im.current]
        plan = self.planner.plan_turn(question, new, evidence, referenced=in_scope)
        out = []
        for im in images:
            d = plan.decision(im.ref.id)
            fields = {k: v for k, v in d.to_dict().items() if k != "image"}
            out.append(
                (plan.inputs.get(im.ref.id), BudgetRecord(image=d.image, image_index=im.index, **fields))
            )
        return out


def planner_factory(engine, assistant_config) -> LoopPlanner:
    """What `assistant.factory` plugs into every conversation: budgets from the assistant's config."""
    names = [f.name for f in dataclass_fields(BudgetConfig)]
    given = {n: getattr(assistant_config, n) for n in names if getattr(assistant_config, n, None) is not None}
    return LoopPlanner(engine, BudgetConfig(**given))


__all__ = [
    "BudgetConfig",
    "BudgetDecision",
    "BudgetPlanner",
    "TurnBudget",
    "Box",
    "CHOICES",
    "evidence_stand_in",
    "LoopPlanner",
    "planner_factory",
]
