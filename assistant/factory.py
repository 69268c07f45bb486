"""Build an Assistant from its two configs: the model (ModelConfig) and the loop (AssistantConfig).

Front ends call `build_assistant`; tests and benchmarks may pass an already-loaded `engine` or `runner`.
Every conversation plans its images with the image-token budget planner (`Assistant`'s default).
"""

from __future__ import annotations

from assistant.session import Assistant, AssistantConfig
from tools.cache import ToolCache
from tools.paths import cache_dir
from tools.registry import default_registry
from tools.runner import ToolRunner


def build_runner(cfg: AssistantConfig) -> ToolRunner | None:
    """The tool runner for this config (its detector weights, a disk cache when asked), or None when
    tools are off."""
    if cfg.no_tools:
        return None
    registry = default_registry(enabled=cfg.tools, detector_weights=cfg.detector_weights)
    cache = ToolCache(disk_dir=cache_dir("tool-results")) if cfg.tool_cache_disk else None
    return ToolRunner(registry, cache=cache)


def build_assistant(
    model_cfg=None, assistant_cfg: AssistantConfig | None = None, engine=None, runner=None
) -> Assistant:
    """Load the engine (unless given), the tools and the planner; nothing runs until the first turn."""
    from assistant.core import load_engine

    assistant_cfg = assistant_cfg or AssistantConfig()
    if engine is None:
        engine = load_engine(model_cfg)
    if runner is None:
        runner = build_runner(assistant_cfg)
    return Assistant(engine, runner, assistant_cfg)
