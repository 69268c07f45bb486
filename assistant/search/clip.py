"""CLIP image embeddings as one more search modality (transformers' CLIP classes).

Where a model hub is reachable (or a CLIP model sits in a local folder), `index --clip-model NAME`
stores one L2-normalised image embedding per image, and search ranks images by the cosine similarity
of the query's CLIP text embedding. No CLIP weights ship in any package here, so the offline default has
no CLIP modality; the tests run this path with a tiny random CLIP built from config.
"""

from __future__ import annotations

import threading

from tools.images import ImageRef


class ClipEmbedder:
    """A CLIP model and its processor, loaded on first use; image and text embeddings as float lists."""

    def __init__(self, model: str):
        self.name = model
        self._model = None
        self._processor = None
        self._lock = threading.Lock()

    def _load(self):
        if self._model is None:
            with self._lock:
                if self._model is None:
                    from transformers import CLIPModel, CLIPProcessor

                    self._processor = CLIPProcessor.from_pretrained(self.name)
                    self._model = CLIPModel.from_pretrained(self.name).eval()
        return self._model, self._processor

    @staticmethod
    def _unit(features) -> list[float]:
        import torch

        if not isinstance(features, torch.Tensor):  # transformers 5 returns the output, pooled + projected
            features = features.pooler_output
        return torch.nn.functional.normalize(features.float(), dim=-1)[0].tolist()

    def image(self, image: ImageRef) -> list[float]:
        import torch

        model, processor = self._load()
        with self._lock, torch.inference_mode():
            inputs = processor(images=image.image.convert("RGB"), return_tensors="pt")
            return self._unit(model.get_image_features(pixel_values=inputs["pixel_values"]))

    def text(self, text: str) -> list[float]:
        import torch

        model, processor = self._load()
        with self._lock, torch.inference_mode():
            inputs = processor(text=[text], return_tensors="pt", padding=True, truncation=True)
            return self._unit(
                model.get_text_features(
                    input_ids=inputs["input_ids"], attention_mask=inputs["attention_mask"]
                )
            )
