"""Model configuration: which model, on which device, at which precision, within which memory budget.

Every field carries its help text so `frontends/cliargs.add_dataclass_args` can turn it into a flag.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class ModelConfig:
    model: str = field(
        default="auto",
        metadata={
            "help": "hub id, local path, an offline alias (smollm2, smollm2-llava, smollm2-llava-vitb16, "
            "tiny-llava, tiny-mllama), an http(s):// URL of an OpenAI-compatible server, or 'auto' "
            "(a real LLaVA-family model when a hub or cached weights are available, else smollm2-llava)"
        },
    )
    device: str = field(default="auto", metadata={"help": "cpu | cuda | cuda:N | auto (CUDA when available)"})
    quantization: str = field(
        default="auto",
        metadata={
            "help": "4bit (NF4, bf16 compute) | 8bit | none | auto (4bit on CUDA, none on CPU)",
            "choices": ["auto", "4bit", "8bit", "none"],
        },
    )
    dtype: str = field(
        default="auto",
        metadata={
            "help": "compute dtype: float32 | bfloat16 | float16 | auto (bf16 on CUDA, fp32 on CPU)",
            "choices": ["auto", "float32", "bfloat16", "float16"],
        },
    )
    memory_budget_gb: float | None = field(
        default=None,
        metadata={
            "help": "refuse to load a model whose estimate exceeds this (default: free GPU/RAM memory)"
        },
    )
    max_context: int = field(
        default=4096, metadata={"help": "longest prompt + answer, in tokens (sizes the KV estimate)"}
    )
    remote_api_key: str | None = field(
        default=None, metadata={"help": "API key for an http(s):// model server (else $OPENAI_API_KEY)"}
    )
    embed_cache_mb: int = field(
        default=512, metadata={"help": "in-memory image-embedding cache size in MiB (0 disables it)"}
    )
    embed_cache_disk: bool = field(
        default=False, metadata={"help": "also keep image embeddings on disk, surviving restarts"}
    )
    kv_cache_sessions: int = field(
        default=8, metadata={"help": "conversations whose KV cache is kept between turns (0 disables reuse)"}
    )
    kv_cache_mb: int = field(default=2048, metadata={"help": "memory bound of all kept KV caches, in MiB"})
    # Static shapes let a decode step be captured once as a CUDA graph and replayed per token (5-10x less
    # launch overhead on a GPU); on a CPU the growing dynamic cache is faster. Same tokens either way.
    decode: str = field(
        default="auto",
        metadata={
            "help": "KV cache and decode step: dynamic | static (preallocated to --max-context) | cuda-graph "
            "(static + a captured CUDA graph per step) | auto (cuda-graph on CUDA, dynamic on CPU)",
            "choices": ["auto", "dynamic", "static", "cuda-graph"],
        },
    )
