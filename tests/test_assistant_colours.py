"""Colour questions answered where they point: a part of the image, the ink of its text, or an object a
loaded detector can find; never the whole image's colour for a part, and an abstention for a thing no
tool can locate."""

from PIL import Image, ImageDraw, ImageFont

from assistant.session import Assistant, AssistantConfig
from tests.scripted_engine import ScriptedEngine
from tools.base import ToolRegistry
from tools.color import ColorTool
from tools.images import ImageRef
from tools.ocr import OCRTool
from tools.runner import ToolRunner

RED = (200, 20, 20)


def striped():
    """White, with a red stripe along the bottom (a fifth of the height)."""
    im = Image.new("RGB", (400, 300), (250, 250, 250))
    ImageDraw.Draw(im).rectangle([0, 240, 399, 299], fill=RED)
    return im


def blue_letters():
    im = Image.new("RGB", (520, 160), (245, 245, 240))
    font = ImageFont.truetype("DejaVuSans-Bold.ttf", 72)
    ImageDraw.Draw(im).text((30, 40), "LONDON", fill=(20, 40, 200), font=font)
    return im


def _conv(tmp_path, *tools, reply="It is white."):
    reg = ToolRegistry()
    for t in tools:
        reg.register(t)
    return Assistant(
        ScriptedEngine([reply] * 4), ToolRunner(reg), AssistantConfig(trace_dir=str(tmp_path))
    ).conversation()


def test_area_and_ink_of_the_colour_tool():
    tool = ColorTool()
    assert tool(ImageRef.from_pil(striped()))[0].text == "white"
    bottom = tool(ImageRef.from_pil(striped()), area="bottom")
    assert bottom[0].text == "red" and bottom[0].extra["area"] == "bottom"
    ink = tool(ImageRef.from_pil(blue_letters()), text_boxes=[[25, 45, 500, 125]])
    parts = {f.extra["part"]: f.text for f in ink if f.extra["share"] > 0.5}
    assert parts == {"ink": "blue", "background": "white"}


def test_a_colour_question_about_a_part_of_the_image_is_measured_there(tmp_path):
    r = _conv(tmp_path, ColorTool()).ask("What colour is the stripe at the bottom of the image?", [striped()])
    assert not r.abstained and "red" in r.answer and "white" not in r.answer.split("(")[0]
    assert any(c.args.get("area") == "bottom" for c in r.tool_calls)


def test_the_colour_of_letters_is_their_ink(tmp_path):
    r = _conv(tmp_path, ColorTool(), OCRTool()).ask("What colour are the letters?", [blue_letters()])
    assert not r.abstained and "blue" in r.answer.lower()


def test_an_object_no_detector_can_find_is_abstained_on(tmp_path):
    r = _conv(tmp_path, ColorTool()).ask("What colour is the horse?", [striped()])
    assert r.abstained and "horse" in r.answer and "white" not in r.answer


def red_and_black_text():
    im = Image.new("RGB", (640, 260), (245, 245, 240))
    d, font = ImageDraw.Draw(im), ImageFont.truetype("DejaVuSans-Bold.ttf", 44)
    d.text((30, 30), "PLATFORM 2", fill=(10, 10, 10), font=font)
    d.text((30, 150), "EMERGENCY STOP", fill=(210, 20, 20), font=font)
    return im


def test_the_red_text_is_the_text_written_in_red(tmp_path):
    conv = _conv(tmp_path, ColorTool(), OCRTool(), reply="I can't tell.")
    r = conv.ask("What does the red text say?", [red_and_black_text()])
    assert "EMERGENCY STOP" in r.answer and "PLATFORM" not in r.answer, r.answer
    assert any(c.tool == "color" and c.args.get("text_boxes") for c in r.tool_calls)
    # without a colour named, the sign's text is all of it
    r = conv.ask("What does the sign say?", [red_and_black_text()])
    assert "EMERGENCY STOP" in r.answer and "PLATFORM" in r.answer, r.answer


def green_sign():
    """A green plate with white letters, on a grey wall."""
    im = Image.new("RGB", (640, 300), (120, 120, 120))
    d, font = ImageDraw.Draw(im), ImageFont.truetype("DejaVuSans-Bold.ttf", 48)
    d.rectangle([80, 70, 560, 230], fill=(20, 130, 60))
    d.text((130, 120), "EXIT 4B", fill=(250, 250, 250), font=font)
    return im


def test_a_signs_colour_is_around_its_letters_and_the_letters_are_their_ink(tmp_path):
    conv = _conv(tmp_path, ColorTool(), OCRTool(), reply="I can't tell.")
    r = conv.ask("What colour is the sign?", [green_sign()])
    assert r.answer.startswith("The sign is mostly") and "green" in r.answer and "white" not in r.answer, (
        r.answer
    )
    r = conv.ask("What colour are the letters?", [green_sign()])
    assert r.answer.startswith("The letters are white"), r.answer  # first, by far


def test_a_black_and_white_photo_answers_no_colour_question(tmp_path):
    """A gray photo (a JPEG's few tinted pixels too) says nothing of a thing's colour: the answer abstains,
    saying so and what shades it measured; a seeing model's colour is flagged, never shown as fact."""
    import io

    from tools.color import grayscale

    gray = striped().convert("L").convert("RGB")  # the red stripe is now a dark gray one
    buf = io.BytesIO()
    gray.save(buf, "JPEG", quality=70)
    jpeg = Image.open(io.BytesIO(buf.getvalue()))
    assert grayscale(gray) and grayscale(jpeg) and not grayscale(striped())
    q = "What colour is the stripe at the bottom of the image?"
    r = _conv(tmp_path, ColorTool()).ask(q, [jpeg])
    assert r.abstained and "black-and-white" in r.answer and "gray" in r.answer
    assert "red" not in r.answer  # what the tool cannot know is not guessed
    assert _conv(tmp_path, ColorTool()).ask(q, [striped()]).answer.count("red") >= 1  # colour: answered
    seeing = Assistant(
        ScriptedEngine(["The stripe is red."] * 2, sees_images=True),
        ToolRunner(_registry(ColorTool())),
        AssistantConfig(trace_dir=str(tmp_path)),
    ).conversation()
    r = seeing.ask(q, [jpeg])
    assert r.status == "unverified" and "black-and-white" in r.answer


def _registry(*tools):
    reg = ToolRegistry()
    for t in tools:
        reg.register(t)
    return reg


def test_a_tinted_black_is_not_stated_as_the_colour():
    """A dark green sign in a dim photo measures (15, 25, 23): named black, its tint kept, never stated."""
    from assistant.extract import colours
    from tools.evidence import Evidence

    im = Image.new("RGB", (300, 120), (15, 40, 34))
    d = ImageDraw.Draw(im)
    for x in range(70, 230, 20):
        d.rectangle([x, 48, x + 10, 72], fill=(200, 200, 195))
    found = ColorTool()(ImageRef.from_pil(im), text_boxes=[[66, 46, 234, 74]])
    ground = [f for f in found if f.extra["part"] == "background"]
    assert ground[0].text == "black" and ground[0].extra["tint"] == "teal"
    ev = [
        Evidence(f"color:{i}", "color", "im", "color", f.text, 1.0, f.box, f.extra)
        for i, f in enumerate(found, 1)
    ]
    ex = colours(ev, "sign", {"im": (300, 120)})
    assert not ex.sure and "too dark" in ex.why
    plain = Image.new("RGB", (300, 120), (22, 22, 24))  # a black sign: black, no tint
    d = ImageDraw.Draw(plain)
    d.rectangle([0, 0, 30, 20], fill=(200, 30, 30))  # a red mark far from the text: a colour photo
    for x in range(70, 230, 20):
        d.rectangle([x, 48, x + 10, 72], fill=(200, 200, 195))
    found = ColorTool()(ImageRef.from_pil(plain), text_boxes=[[66, 46, 234, 74]])
    ev = [
        Evidence(f"color:{i}", "color", "im", "color", f.text, 1.0, f.box, f.extra)
        for i, f in enumerate(found, 1)
    ]
    assert colours(ev, "sign", {"im": (300, 120)}).sure


def test_an_object_measured_mostly_gray_with_a_notable_hue_is_not_said_gray():
    """bus.jpg's blue bus measures dark gray 30%, black 19%, blue 15%, light gray 14%, gray 12%: its
    windows and shadows are gray; the answer does not state gray (nor blue) as its colour."""
    from assistant.extract import colours
    from tools.evidence import Evidence

    box = (26.0, 225.0, 810.0, 737.0)
    det = Evidence("det:2", "detect", "im", "detection", "bus", 0.88, box)
    shares = [("dark gray", 0.30), ("black", 0.19), ("blue", 0.148), ("light gray", 0.14), ("gray", 0.12)]
    found = [Evidence(f"color:{i}", "color", "im", "color", n, 1.0, box, {"share": v, "mask": "grabcut"})
             for i, (n, v) in enumerate(shares, 1)]  # fmt: skip
    ex = colours([det, *found], "bus", {"im": (810, 1080)})
    assert not ex.sure and "blue" in ex.why
    white_truck = [("light gray", 0.44), ("dark gray", 0.25), ("gray", 0.13), ("orange", 0.06)]
    found = [Evidence(f"color:{i}", "color", "im", "color", n, 1.0, box, {"share": v, "mask": "grabcut"})
             for i, (n, v) in enumerate(white_truck, 1)]  # fmt: skip
    assert colours([det, *found], "bus", {"im": (810, 1080)}).sure  # no hue covers 10%: stays white
