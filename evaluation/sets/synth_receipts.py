"""synth-receipts: receipts laid out as real ones are (prices far right, two columns, centred totals),
in every installed face, with photo effects; totals and item prices are asked.
"""

from __future__ import annotations

import random
from pathlib import Path

from evaluation.sets.folder import write_cases
from synthetic.varied import LAYOUTS, effects_for, photograph, render_receipt_layout

VERSION = 1
SEED = 9200


def generate(root: Path) -> None:
    cases = []
    for k in range(6):
        seed = SEED + k
        layout = LAYOUTS[k % len(LAYOUTS)]
        r = render_receipt_layout(seed, layout)
        im = photograph(r.image, random.Random(seed), effects_for(seed))
        name = f"receipt-{k:02d}.jpg"
        im.save(root / name, quality=92)
        cases.append(
            {
                "id": f"total-{k:02d}",
                "image": name,
                "question": "What is the total?",
                "expect_any": [r.total],
                "kind": "read",
            }
        )
        item, price = r.items[random.Random(seed).randrange(len(r.items))]
        cases.append(
            {
                "id": f"item-{k:02d}",
                "image": name,
                "question": f"How much does the {item.lower()} cost?",
                "expect_any": [price],
                "kind": "read",
            }
        )
    write_cases(root, cases)
