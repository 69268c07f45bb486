"""Build an Assistant from its two configs: the model (ModelConfig) and the loop (AssistantConfig).

Front ends call `build_assistant`; tests and benchmarks may pass an already-loaded `engine` or `runner`.
The image planner comes from `assistant.budget.planner_factory(engine, assistant_config)` when that
module provides one (the image-token budget), else every image of the turn goes in full.
"""

from __future__ import annotations

from assistant.session import Assistant, AssistantConfig


def build_runner(cfg: AssistantConfig, detector_weights: str | None = None):
    """The tool runner for this config, or None when tools are off."""
    if cfg.no_tools:
        return None
    from tools.base import ToolRunner
    from tools.registry import default_registry

    return ToolRunner(default_registry(enabled=cfg.tools, detector_weights=detector_weights))


def planner_factory():
    """The budget module's planner factory when there is one (it plugs into the ImagePlanner seam)."""
    try:
        from assistant import budget
    except ImportError:
        return None
    return getattr(budget, "planner_factory", None)


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
    return Assistant(engine, runner, assistant_cfg, planner_factory=planner_factory())
