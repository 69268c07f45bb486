"""The model core: one interface over Hugging Face image-text-to-text models, whatever their fusion.

`load_engine(ModelConfig)` returns an `Engine` (see `types.py`) that the rest of the code uses:
image token costs, streaming generation with stats, and (inside) the embedding and KV caches.
Prefix family (LLaVA, LLaVA-NeXT, LLaVA-OneVision) and cross-attention family (Mllama) are hidden
behind it, as are remote OpenAI-compatible servers.
"""
