"""The image-token budget planner on real engines: costs per family, choices, demotion, re-admission, traces."""

from __future__ import annotations

import json

import pytest
from PIL import Image

from assistant.budget import BudgetConfig, BudgetDecision, BudgetPlanner
from assistant.core.types import GenerationConfig, ImageInput
from tools.errors import BadInputError
from tools.evidence import EvidenceStore, Finding
from tools.images import ImageRef


def _engine(name: str):
    from assistant.core import load_engine
    from assistant.core.config import ModelConfig
    from tests.fixtures.tiny_models import TINY_MODELS, tiny_model_dir

    model = str(tiny_model_dir(name)) if name in TINY_MODELS else name  # the tests' own tiny models
    return load_engine(ModelConfig(model=model, device="cpu"))


@pytest.fixture(scope="module")
def llava():
    return _engine("tiny-llava")


@pytest.fixture(scope="module")
def llava_next():
    """A tiny LLaVA-NeXT (AnyRes grids of 32 px tiles): the family where a crop saves tokens."""
    return _engine("tiny-llava-next")


@pytest.fixture(scope="module")
def mllama():
    return _engine("tiny-mllama")


def _photo(colour, size=(800, 600), source="photo.png") -> ImageRef:
    im = Image.new("RGB", size, colour)
    return ImageRef.from_pil(im, source=source)


def _sign_with_ocr(store: EvidenceStore, seed: int = 3):
    """A rendered street sign and the real OCR tool's evidence about it."""
    from synthetic.render import render_sign
    from tools.ocr import OCRConfig, OCRTool

    synth = render_sign(seed=seed, size=(960, 720))
    ref = ImageRef.from_pil(synth.image, source="street_sign.png")
    tool = OCRTool(OCRConfig(call_timeout_s=120.0))  # a loaded CI machine must not fail the read
    tool.timeout_s = 300.0
    tool.setup()
    evidence = store.add("ocr", ref.id, tool.forward(ref, **tool.validate({})))
    return ref, synth, evidence


def test_llava_fixed_cost_and_defaults(llava):
    planner = BudgetPlanner(llava)
    ref = _photo((200, 30, 30))
    full = llava.image_token_count(ImageInput(ref))
    assert full > 0
    # LLaVA resizes every view to the same square: a crop or a smaller image costs the same.
    assert llava.image_token_count(ImageInput(ref, crop=(0, 0, 100, 100))) == full
    assert llava.image_token_count(ImageInput(ref, max_side=64)) == full
    # Defaults follow the model: two full images a turn, four held in the conversation.
    assert (planner.per_turn, planner.per_conversation) == (2 * full, 4 * full)
    plan = planner.plan_turn("Describe this picture.", [ref])
    d = plan.decision(ref.id)
    assert (d.choice, d.tokens, d.status) == ("full", full, "new")
    assert plan.inputs == {ref.id: ImageInput(ref)}


def test_planned_inputs_cost_what_the_model_consumes(llava):
    """The planner's token accounting equals the image tokens the engine actually fed the model."""
    a, b = _photo((10, 200, 10)), _photo((10, 10, 200))
    planner = BudgetPlanner(llava)
    plan = planner.plan_turn("Compare these two pictures.", [a, b])
    messages = [
        {"role": "user", "content": [{"type": "image"}, {"type": "image"}, {"type": "text", "text": "Hi"}]}
    ]
    stream = llava.stream(messages, list(plan.inputs.values()), GenerationConfig(max_new_tokens=2))
    for _ in stream:
        pass
    assert stream.stats.image_tokens == plan.tokens == 2 * llava.image_token_count(ImageInput(a))


def test_anyres_reading_question_crops_to_ocr_region_and_saves_tokens(llava_next):
    store = EvidenceStore()
    ref, synth, evidence = _sign_with_ocr(store)
    assert evidence, "the OCR tool read nothing on the rendered sign"
    planner = BudgetPlanner(llava_next)
    plan = planner.plan_turn("What does the sign say?", [ref], store.all())
    d = plan.decision(ref.id)
    assert d.choice == "crop", d.reason
    assert d.tokens == llava_next.image_token_count(ImageInput(ref, crop=tuple(d.crop)))
    assert d.tokens < d.full_tokens, (d.tokens, d.full_tokens)
    # The crop holds the sign's text, with its margin, and it came from OCR evidence ids.
    x0, y0, x1, y1 = synth.region
    assert d.crop[0] <= x0 + 10 and d.crop[1] <= y0 + 10 and d.crop[2] >= x1 - 10 and d.crop[3] >= y1 - 10
    assert d.evidence and all(i.startswith("ocr:") for i in d.evidence)
    # A question about the whole scene gets the whole image.
    other = _photo((40, 90, 160), source="beach.png")
    assert (
        BudgetPlanner(llava_next)
        .plan_turn("What is the mood of this scene?", [other])
        .decision(other.id)
        .choice
        == "full"
    )


def test_anyres_shrinks_to_fit_the_turn_budget(llava_next):
    ref = _photo((90, 90, 20), size=(1200, 900))
    full = llava_next.image_token_count(ImageInput(ref))
    # The tiny model's AnyRes tiles are 32 px, so its resolution ladder is scaled down to match.
    cfg = BudgetConfig(image_tokens_per_turn=full - 1, reduced_sides=[96, 64, 32])
    planner = BudgetPlanner(llava_next, cfg)
    d = planner.plan_turn("Describe the picture.", [ref]).decision(ref.id)
    assert d.choice == "reduced" and d.max_side is not None
    assert d.tokens == llava_next.image_token_count(ImageInput(ref, max_side=d.max_side)) < full
    # No view fits: the evidence stands in.
    tiny = BudgetPlanner(llava_next, BudgetConfig(image_tokens_per_turn=1))
    d = tiny.plan_turn("Describe the picture.", [ref]).decision(ref.id)
    assert (d.choice, d.tokens) == ("text", 0) and "budget" in d.reason


def test_mllama_tiles(mllama):
    """Cross-attention family: the cost is the tiles' vision states; the planner prices every view through it."""
    wide = _photo((5, 5, 5), size=(1600, 400))
    cost = mllama.image_token_count(ImageInput(wide))
    assert cost > 0
    d = BudgetPlanner(mllama).plan_turn("What is in the picture?", [wide]).decision(wide.id)
    assert (d.choice, d.tokens) == ("full", cost)
    squeezed = BudgetPlanner(mllama, BudgetConfig(image_tokens_per_turn=cost - 1))
    d = squeezed.plan_turn("What is in the picture?", [wide]).decision(wide.id)
    if d.choice == "text":  # no smaller view is cheaper for this processor
        assert all(mllama.image_token_count(ImageInput(wide, max_side=s)) >= cost for s in (1344, 336, 224))
    else:
        assert d.choice == "reduced" and d.tokens == mllama.image_token_count(
            ImageInput(wide, max_side=d.max_side)
        )
        assert d.tokens < cost


def test_text_engine_gets_text_only():
    engine = _engine("smollm2")
    assert not engine.supports_images
    planner = BudgetPlanner(engine)
    ref = _photo((1, 2, 3))
    plan = planner.plan_turn("What does the sign say?", [ref])
    assert [(d.choice, d.tokens) for d in plan.decisions] == [("text", 0)]
    assert plan.inputs == {} and "cannot see images" in plan.decisions[0].reason


def test_demotion_and_readmission_across_a_conversation(llava):
    cost = llava.image_token_count(ImageInput(_photo((0, 0, 0))))
    planner = BudgetPlanner(llava, BudgetConfig(image_tokens_per_conversation=2 * cost))
    sign = _photo((200, 0, 0), source="sign.png")
    cat, dog = _photo((0, 200, 0), source="cat.png"), _photo((0, 0, 200), source="dog.png")

    planner.plan_turn("What does the sign say?", [sign])
    planner.plan_turn("And what is this animal doing?", [cat])
    t3 = planner.plan_turn("Is this dog bigger?", [dog])
    assert t3.decision(sign.id).status == "demoted" and t3.decision(sign.id).choice == "text"
    assert set(t3.inputs) == {cat.id, dog.id} and t3.tokens <= 2 * cost

    t4 = planner.plan_turn("Thanks. How tall is the dog?", [])
    assert t4.decision(dog.id).status == "kept" and t4.encoded_tokens == 0  # nothing to encode again

    t5 = planner.plan_turn("Go back to the first picture: what colour is it?", [])
    assert t5.decision(sign.id).status == "readmitted" and sign.id in t5.inputs
    assert t5.decision(cat.id).status == "demoted"  # the oldest image that was not asked about
    assert t5.decision(dog.id).choice == "full" and t5.tokens <= 2 * cost

    t6 = planner.plan_turn("Show me that animal again.", [])
    assert t6.decision(cat.id).status == "readmitted"  # named by the words of the question it came with
    t7 = planner.plan_turn("What did the sign say again?", [])
    assert t7.decision(sign.id).choice == "full" and sign.id in t7.inputs
    for plan in (t3, t4, t5, t6, t7):
        assert plan.tokens <= 2 * cost and plan.encoded_tokens <= planner.per_turn


def test_receipt_word_readmits_and_crops_to_the_line(llava_next):
    store = EvidenceStore()
    receipt = _photo((250, 250, 250), size=(600, 900), source="IMG_0001.jpg")
    store.add(
        "ocr",
        receipt.id,
        [
            Finding("line", "CORNER CAFE", 0.9, (30, 20, 300, 50)),
            Finding("line", "Croissant 3.20", 0.9, (30, 200, 570, 230)),
            Finding("line", "TOTAL 12.50", 0.9, (30, 800, 570, 830)),
        ],
    )
    other = _photo((10, 10, 10), source="IMG_0002.jpg")
    cost = llava_next.image_token_count(ImageInput(other))
    planner = BudgetPlanner(llava_next, BudgetConfig(image_tokens_per_conversation=cost))
    planner.plan_turn("Here is my receipt.", [receipt], store.all())
    assert planner.plan_turn("And this one?", [other], store.all()).decision(receipt.id).choice == "text"
    plan = planner.plan_turn("How much was the croissant?", [], store.all())
    d = plan.decision(receipt.id)
    assert d.status == "readmitted" and d.choice == "crop", d.reason
    assert d.evidence == ["ocr:2"] and d.crop[1] < 200 and d.crop[3] > 230 and d.crop[3] < 800


def test_stray_ocr_word_does_not_stretch_the_crop(llava_next):
    """OCR on a busy photo reads a stray word in a texture; the crop keeps to the main text."""
    store = EvidenceStore()
    ref = _photo((90, 120, 60), size=(1280, 960), source="street.jpg")
    store.add(
        "ocr",
        ref.id,
        [
            Finding("line", "PHARMACY", 0.96, (580, 537, 709, 554)),
            Finding("line", "OPEN LATE", 0.9, (590, 560, 700, 577)),
            Finding("line", "peal", 0.78, (424, 950, 471, 960)),
        ],
    )
    d = BudgetPlanner(llava_next).plan_turn("What does the sign say?", [ref], store.all()).decision(ref.id)
    assert d.choice == "crop" and d.evidence == ["ocr:1", "ocr:2"]
    assert d.crop[3] < 700 and d.tokens < d.full_tokens


def test_fixed_grid_crop_is_squared(llava):
    """LLaVA shows one square: a wide text line is cropped square (same tokens), so no end of it is cut off."""
    store = EvidenceStore()
    ref = _photo((240, 240, 240), size=(1000, 1000), source="notice.png")
    store.add("ocr", ref.id, [Finding("line", "NO PARKING AT ANY TIME", 0.95, (100, 600, 700, 640))])
    d = BudgetPlanner(llava).plan_turn("What does the notice say?", [ref], store.all()).decision(ref.id)
    assert d.choice == "crop" and d.tokens == d.full_tokens
    x0, y0, x1, y1 = d.crop
    assert x0 <= 100 and x1 >= 700 and abs((x1 - x0) - (y1 - y0)) < 1 and y1 <= 1000


def test_decisions_serialise_for_the_trace(llava):
    planner = BudgetPlanner(llava, BudgetConfig(image_tokens_per_conversation=0))
    ref = _photo((3, 3, 3))
    plan = planner.plan_turn("What is it?", [ref])
    data = json.loads(json.dumps(plan.to_dict()))
    assert data["decisions"][0]["choice"] == "text" and data["per_conversation"] == 0
    assert [BudgetDecision.from_dict(d) for d in data["decisions"]] == plan.decisions
    assert set(data) >= {"turn", "tokens", "encoded_tokens", "decisions"}


def test_bad_config_is_a_user_error():
    with pytest.raises(BadInputError, match="strategy"):
        BudgetConfig(strategy="cheap")
    with pytest.raises(BadInputError, match="image_tokens_per_turn"):
        BudgetConfig(image_tokens_per_turn=-1)


def test_assistant_loop_uses_the_planner(llava):
    """The planner sits behind the loop's image-planner seam: its decisions are the turn's budget records."""
    from assistant.factory import build_assistant
    from assistant.session import AssistantConfig

    cost = llava.image_token_count(ImageInput(_photo((0, 0, 0))))
    cfg = AssistantConfig(
        no_tools=True, write_traces=False, max_new_tokens=2, image_tokens_per_conversation=2 * cost
    )
    conv = build_assistant(engine=llava, runner=None, assistant_cfg=cfg).conversation()
    photos = [Image.new("RGB", (300, 200), (60 * i, 0, 0)) for i in range(3)]
    for i, photo in enumerate(photos):
        budget = conv.ask(f"What is in picture {i + 1}?", images=[photo]).to_dict()["budget"]
    assert [(b["choice"], b["status"]) for b in budget] == [
        ("text", "demoted"),
        ("full", "kept"),
        ("full", "new"),
    ]
    budget = conv.ask("Back to the first picture: what colour is it?").to_dict()["budget"]
    assert [b["status"] for b in budget] == ["readmitted", "demoted", "kept"]
    assert sum(b["tokens"] for b in budget) <= 2 * cost
