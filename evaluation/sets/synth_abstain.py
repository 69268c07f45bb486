"""synth-abstain: questions the image cannot answer; the right reply is to say so.

Text-free busy scenes asked to be read, and signs and receipts asked for what they do not show.
"""

from __future__ import annotations

import random
from pathlib import Path

from evaluation.sets.folder import write_cases
from synthetic.render import busy_background, render_sign
from synthetic.varied import face_for, render_receipt_layout

VERSION = 1
SEED = 9300
SIGN_QUESTIONS = (
    "What is the phone number on the sign?",
    "What time does the place on the sign close?",
    "What is the website address on the sign?",
)
RECEIPT_QUESTIONS = ("What was the date of this purchase?", "What is the cashier's name on the receipt?")


def generate(root: Path) -> None:
    cases = []
    for k in range(4):
        im = busy_background((640, 480), random.Random(SEED + k))
        im.save(root / f"scene-{k}.png")
        q = "What does the sign say?" if k % 2 == 0 else "What is the price written in the picture?"
        cases.append(
            {
                "id": f"scene-{k}",
                "image": f"scene-{k}.png",
                "question": q,
                "expect_any": [],
                "kind": "abstain",
            }
        )
    for k in range(3):
        s = render_sign(SEED + 10 + k, face=face_for(SEED + k, bold_only=True))
        s.image.save(root / f"sign-{k}.png")
        cases.append(
            {
                "id": f"sign-{k}",
                "image": f"sign-{k}.png",
                "question": SIGN_QUESTIONS[k],
                "expect_any": [],
                "kind": "abstain",
            }
        )
    for k in range(2):
        r = render_receipt_layout(SEED + 20 + k, "far-right" if k else "centred-total")
        r.image.save(root / f"receipt-{k}.png")
        cases.append(
            {
                "id": f"receipt-{k}",
                "image": f"receipt-{k}.png",
                "question": RECEIPT_QUESTIONS[k],
                "expect_any": [],
                "kind": "abstain",
            }
        )
    write_cases(root, cases)
