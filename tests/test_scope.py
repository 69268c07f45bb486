"""One answer to "which image does this question mean", shared by the tool policy and the image budget."""

from __future__ import annotations

import pytest
from PIL import Image

from assistant.budget import BudgetConfig, BudgetPlanner
from assistant.core.types import ImageInput
from assistant.policy import resolve_scope
from tools.images import ImageRef


@pytest.fixture(scope="module")
def llava():
    from assistant.core import load_engine
    from assistant.core.config import ModelConfig
    from tests.fixtures.tiny_models import tiny_model_dir

    return load_engine(ModelConfig(model=str(tiny_model_dir("tiny-llava")), device="cpu"))


def _photo(colour, source):
    return ImageRef.from_pil(Image.new("RGB", (800, 600), colour), source=source)


def test_the_original_photo_is_the_one_the_conversation_was_about():
    # three images, the last turn was about image 1: "the original photo" is image 1, not the newest
    assert resolve_scope("And the original photo?", 3, [], [1]) == [1]
    assert resolve_scope("What about that picture?", 3, [], [2]) == [2]


def test_policy_and_budget_agree_on_the_original_photo(llava):
    cost = llava.image_token_count(ImageInput(_photo((0, 0, 0), "x.png")))
    planner = BudgetPlanner(llava, BudgetConfig(image_tokens_per_conversation=2 * cost))
    a, b, c = (
        _photo(rgb, f"{n}.png")
        for rgb, n in [((200, 0, 0), "red"), ((0, 200, 0), "lime"), ((0, 0, 200), "navy")]
    )
    planner.plan_turn("Here are three photos.", [a, b, c])
    t2 = planner.plan_turn("What is in the first picture?", [])
    assert a.id in t2.inputs and c.id not in t2.inputs  # the budget held two; the third is text only
    t3 = planner.plan_turn("And the original photo?", [])
    assert resolve_scope("And the original photo?", 3, [], [1]) == [1]
    assert a.id in t3.inputs  # the image the question means, as the policy scopes it
    assert t3.decision(c.id).status != "readmitted"  # no tokens spent on an image it does not mean
