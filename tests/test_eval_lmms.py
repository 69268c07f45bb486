"""The lmms-eval adapter, through lmms-eval's own model registry and entry point, on a small local task in
lmms-eval's request format, with the offline model. Skipped where lmms-eval is not installed (it is not a
dependency of the project: `pip install --no-deps lmms-eval loguru pytz` is enough for this test)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

pytest.importorskip("lmms_eval.api.model", reason="lmms-eval is not installed")

# Run in a fresh interpreter from a neutral folder: the registry reads entry points once at import, and a
# stale *.egg-info in the checkout would shadow the installed distribution's entry points.
SCRIPT = r"""
import json, sys
from lmms_eval.api.instance import Instance
import lmms_eval.models as registry
from synthetic.render import render_receipt, render_sign

cls = registry.get_model("grounded_vlm")
model = cls.create_from_arg_string("model=smollm2-llava,device=cpu,max_new_tokens=32")
receipt, sign = render_receipt(3), render_sign(2)
docs = [
    {"image": receipt.image, "question": "What is the total?", "answers": [receipt.total]},
    {"image": sign.image, "question": "What does the sign say?", "answers": [" ".join(sign.lines)]},
]
model.task_dict = {"local_vqa": {"test": docs}}
doc_to_visual = lambda doc: [doc["image"].convert("RGB")]
reqs = [
    Instance("generate_until", (d["question"] + "\nAnswer the question using a single word or phrase.",
             {"until": ["\n"], "max_new_tokens": 32}, doc_to_visual, i, "local_vqa", "test"), idx=0,
             metadata={"task": "local_vqa", "doc_id": i, "repeats": 1})
    for i, d in enumerate(docs)
]
out = model.generate_until(reqs)
print(json.dumps({"class": cls.__name__, "out": out, "answers": [d["answers"] for d in docs],
                  "names": registry.list_available_models(include_aliases=True)}))
"""


def test_adapter_through_lmms_eval_registry(local_model_dirs, tmp_path):
    p = subprocess.run(
        [sys.executable, "-c", SCRIPT], cwd=tmp_path, capture_output=True, text=True, timeout=600
    )
    assert p.returncode == 0, p.stderr[-3000:]
    got = json.loads(p.stdout.strip().splitlines()[-1])
    assert got["class"] == "GroundedVLM"
    assert {"grounded_vlm", "grounded-vlm"} <= set(got["names"])
    # Short answers, as a benchmark scorer wants them: the receipt total and the sign's words.
    for out, answers in zip(got["out"], got["answers"], strict=True):
        assert out.strip() and "[ocr:" not in out
        assert any(a.lower() in out.lower() for a in answers), (out, answers)


def test_adapter_refuses_loglikelihood():
    from evaluation.lmms_adapter import GroundedVLM

    m = GroundedVLM(assistant=object())
    with pytest.raises(NotImplementedError, match="generate_until"):
        m.loglikelihood([])
