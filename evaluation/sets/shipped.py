"""shipped: the two real photos inside the ultralytics package (bus.jpg, zidane.jpg), with questions
written by hand from looking at them. Small, real, and available wherever the project installs.
"""

from __future__ import annotations

import shutil
from importlib.resources import files
from pathlib import Path

from evaluation.sets.folder import write_cases

VERSION = 1
CASES = [
    # bus.jpg: a blue electric city bus in Madrid, two men walking past it
    (
        "bus-side-text",
        "bus.jpg",
        "What does the large white text on the side of the bus say?",
        ["cero emisiones"],
        "read",
    ),
    ("bus-destination", "bus.jpg", "What destination is shown on the front of the bus?", ["SEVILLA"], "read"),
    ("bus-colour", "bus.jpg", "What colour is the bus?", ["blue"], "color"),
    ("bus-present", "bus.jpg", "Is there a bus in the picture?", ["yes"], "detect"),
    ("bus-phone", "bus.jpg", "What is the phone number of the bus company?", [], "abstain"),
    # zidane.jpg: two men in dark suits at a football match, the one on the left shouting and pointing
    ("zidane-count", "zidane.jpg", "How many people are in the foreground?", ["2"], "count"),
    ("zidane-suit", "zidane.jpg", "What colour is the jacket of the man on the left?", ["black"], "color"),
    ("zidane-bus", "zidane.jpg", "Is there a bus in the picture?", ["no"], "detect"),
    ("zidane-sign", "zidane.jpg", "What does the sign in the picture say?", [], "abstain"),
    ("zidane-name", "zidane.jpg", "What is the name of the man on the right?", [], "abstain"),
]


def generate(root: Path) -> None:
    assets = files("ultralytics") / "assets"
    for name in ("bus.jpg", "zidane.jpg"):
        with (assets / name).open("rb") as src, (root / name).open("wb") as dst:
            shutil.copyfileobj(src, dst)
    write_cases(
        root,
        [{"id": i, "image": im, "question": q, "expect_any": e, "kind": k} for i, im, q, e, k in CASES],
    )
