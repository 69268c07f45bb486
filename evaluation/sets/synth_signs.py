"""synth-signs: street signs in every installed face, with photo effects, one or several per question.

Twelve single-sign questions ("What does the sign say?") and four about one sign among two or three
images ("What does the sign in image 2 say?"). Seeded: the same set every time.
"""

from __future__ import annotations

import random
from pathlib import Path

from evaluation.sets.folder import write_cases
from synthetic.render import SIGN_TEXTS, render_sign
from synthetic.varied import effects_for, face_for, photograph

VERSION = 1
SEED = 9100
QUESTIONS = ("What does the sign say?", "What is written on the sign?", "Read the sign.")


def _sign(k: int, root: Path) -> tuple[str, str]:
    seed = SEED + k
    text = SIGN_TEXTS[(k * 5) % len(SIGN_TEXTS)]
    s = render_sign(seed, text=text, face=face_for(seed), size=(800, 600), font_px=(20, 44), tilt=4.0)
    im = photograph(s.image, random.Random(seed), effects_for(seed))
    name = f"sign-{k:02d}.jpg"
    im.save(root / name, quality=92)
    return name, text


def generate(root: Path) -> None:
    cases = []
    for k in range(12):
        name, text = _sign(k, root)
        cases.append(
            {
                "id": f"sign-{k:02d}",
                "image": name,
                "question": QUESTIONS[k % 3],
                "expect_any": [text],
                "kind": "read",
            }
        )
    for q in range(4):
        n = 2 + q % 2
        signs = [_sign(100 + q * 3 + j, root) for j in range(n)]
        pick = (q % n) + 1
        cases.append(
            {
                "id": f"multi-{q}",
                "image": [name for name, _ in signs],
                "question": f"What does the sign in image {pick} say?",
                "expect_any": [signs[pick - 1][1]],
                "kind": "read",
            }
        )
    write_cases(root, cases)
