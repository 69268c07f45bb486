"""The image-token budget's settings and decisions: `BudgetConfig` (budgets, strategy, crop rules; the
defaults priced on the engine), `BudgetDecision` (how one image enters the model, what it costs, why)
and `TurnBudget` (one turn's decisions and the inputs to send). The planner that makes them is
`assistant/budget.py`.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

from assistant.core.types import ImageInput
from tools.errors import BadInputError
from tools.images import ImageRef

CHOICES = ("full", "reduced", "crop", "text")
STRATEGIES = ("auto", "full", "crop", "text")


@dataclass
class BudgetConfig:
    """Image-token budgets and how the planner spends them. `None` budgets follow the model (see `resolve`)."""

    image_tokens_per_turn: int | None = field(
        default=None,
        metadata={
            "help": "image tokens that may be encoded in one turn (new and re-admitted images); "
            "default: two full reference images of the model, capped by the conversation budget"
        },
    )
    image_tokens_per_conversation: int | None = field(
        default=None,
        metadata={
            "help": "image tokens held in the conversation's context; older images beyond it become "
            "text; default: four full reference images, at most half the context (prefix family)"
        },
    )
    strategy: str = field(
        default="auto",
        metadata={
            "help": "auto: crop to the region a question is about, else full, shrinking to fit; "
            "full: never crop; crop: crop whenever evidence gives a region; text: never send pixels",
            "choices": list(STRATEGIES),
        },
    )
    crop_margin: float = field(
        default=0.25,
        metadata={
            "help": "margin added around a crop region, as a fraction of its size (geometric mean of the sides)"
        },
    )
    min_crop_side: int = field(
        default=96,
        metadata={"help": "smallest crop side in pixels (a word alone gives the model no context)"},
    )
    max_crop_share: float = field(
        default=0.6, metadata={"help": "a region covering more of the image than this is sent whole instead"}
    )
    reduced_sides: list[int] = field(
        default_factory=lambda: [1344, 1008, 672, 448, 336, 224],
        metadata={"help": "longer-side caps tried, largest first, when an image must shrink to fit"},
    )

    def __post_init__(self):
        if self.strategy not in STRATEGIES:
            raise BadInputError(f"budget strategy must be one of {STRATEGIES}, not {self.strategy!r}")
        for name in ("image_tokens_per_turn", "image_tokens_per_conversation"):
            value = getattr(self, name)
            if value is not None and value < 0:
                raise BadInputError(f"{name} must be >= 0, not {value}")

    def resolve(self, engine) -> tuple[int, int]:
        """(per-turn, per-conversation) budgets for this engine, filling defaults from its costs."""
        if not getattr(engine, "supports_images", False):
            return 0, 0
        ref_cost = engine.image_token_count(ImageInput(_reference_image()))
        conv = 4 * ref_cost
        # Prefix-family image tokens live in the text context; cross-attention states do not.
        if getattr(engine, "family", "") == "prefix":
            conv = min(conv, max(ref_cost, int(getattr(engine, "max_context", 4096)) // 2))
        conv = conv if self.image_tokens_per_conversation is None else self.image_tokens_per_conversation
        turn = min(2 * ref_cost, conv) if self.image_tokens_per_turn is None else self.image_tokens_per_turn
        return turn, conv


@dataclass
class BudgetDecision:
    """How one image enters the model this turn, what it costs, and why."""

    image: str  # ImageRef.id
    choice: str  # "full" | "reduced" | "crop" | "text"
    tokens: int  # image tokens (or cross-attended states) it costs; 0 for text
    reason: str  # one sentence with the numbers behind the choice
    status: str = "new"  # "new" (first seen now) | "kept" (already in context) | "readmitted" | "demoted"
    full_tokens: int = 0  # what the whole image would cost, for "saved" accounting
    crop: list[float] | None = None  # region shown (original pixels) when choice is "crop"
    max_side: int | None = None  # resolution cap when reduced
    evidence: list[str] = field(default_factory=list)  # evidence ids the crop region came from

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> BudgetDecision:
        return cls(**d)

    def short(self) -> str:
        return f"{self.image} {self.choice} ({self.status}) {self.tokens} tokens: {self.reason}"


@dataclass
class TurnBudget:
    """The planner's answer for one turn: a decision per conversation image and the inputs to send."""

    turn: int
    per_turn: int
    per_conversation: int
    decisions: list[BudgetDecision]
    inputs: dict[str, ImageInput] = field(default_factory=dict)  # image id -> input, images the model sees

    @property
    def text_only(self) -> list[str]:
        return [d.image for d in self.decisions if d.choice == "text"]

    @property
    def tokens(self) -> int:
        """Image tokens held in context this turn."""
        return sum(d.tokens for d in self.decisions)

    @property
    def encoded_tokens(self) -> int:
        """Image tokens encoded this turn (new and re-admitted images)."""
        return sum(d.tokens for d in self.decisions if d.status in ("new", "readmitted"))

    def decision(self, image_id: str) -> BudgetDecision:
        return next(d for d in self.decisions if d.image == image_id)

    def to_dict(self) -> dict:
        return {
            "turn": self.turn,
            "per_turn": self.per_turn,
            "per_conversation": self.per_conversation,
            "tokens": self.tokens,
            "encoded_tokens": self.encoded_tokens,
            "decisions": [d.to_dict() for d in self.decisions],
        }


def _reference_image() -> ImageRef:
    """A 4:3 photo-sized blank image: what the default budgets are priced on."""
    from PIL import Image

    global _REFERENCE
    if _REFERENCE is None:
        _REFERENCE = ImageRef.from_pil(Image.new("RGB", (1344, 1008), (127, 127, 127)), source="<reference>")
    return _REFERENCE


_REFERENCE: ImageRef | None = None
