"""The model core: one interface over Hugging Face image-text-to-text models, whatever their fusion.

`load_engine(ModelConfig)` returns an `Engine` (see `types.py`) that the rest of the code uses:
image token costs, streaming generation with stats, and (inside) the embedding and KV caches.
Prefix family (LLaVA, LLaVA-NeXT, LLaVA-OneVision) and cross-attention family (Mllama) are hidden
behind it, as are remote OpenAI-compatible servers.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from assistant.core.config import ModelConfig
    from assistant.core.types import Engine

__all__ = ["load_engine", "resolve_model"]


def resolve_model(cfg: ModelConfig) -> tuple[str, str]:
    """(hub id or local path, note saying what was chosen and why; empty when the user named it)."""
    from assistant.core.loader import resolve_model as _resolve

    return _resolve(cfg)


def load_engine(cfg: ModelConfig | None = None) -> Engine:
    """Load the configured model and return its Engine (a RemoteEngine for an http(s):// model)."""
    from assistant.core.config import ModelConfig

    cfg = cfg or ModelConfig()
    if cfg.model.startswith(("http://", "https://")):
        import os

        from assistant.core.remote import RemoteEngine

        base_url, _, model = cfg.model.partition("#")
        api_key = cfg.remote_api_key or os.environ.get("OPENAI_API_KEY")
        return RemoteEngine(base_url=base_url, model=model or None, api_key=api_key)
    from assistant.core.engine import LocalEngine
    from assistant.core.loader import load_model

    return LocalEngine(load_model(cfg), cfg)
