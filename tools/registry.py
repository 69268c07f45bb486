"""The built-in tool set, registered explicitly (see `default_registry`).

Tool classes are looked up by name and imported only when asked for, so listing or building one tool
never imports the others (and a tool whose optional package is missing breaks only itself).
"""

from __future__ import annotations

import importlib

from tools.base import Tool, ToolRegistry
from tools.errors import BadInputError

# tool name -> (module, class); the order is the order tools are offered to a model.
BUILTIN_TOOLS = {
    "ocr": ("tools.ocr", "OCRTool"),
    "detect": ("tools.detector", "DetectorTool"),
    "classify": ("tools.classify", "ClassifyTool"),
    "zoom": ("tools.zoom", "ZoomTool"),
    "color": ("tools.color", "ColorTool"),
    "arrows": ("tools.arrows", "ArrowTool"),
    "metadata": ("tools.metadata", "MetadataTool"),
}


def tool_class(name: str) -> type[Tool]:
    """The class of a built-in tool, imported on demand."""
    try:
        module, cls = BUILTIN_TOOLS[name]
    except KeyError:
        raise BadInputError(f"unknown tool {name!r}; available: {sorted(BUILTIN_TOOLS)}") from None
    return getattr(importlib.import_module(module), cls)


def default_registry(enabled: list[str] | None = None, detector_weights: str | None = None) -> ToolRegistry:
    """A registry with the built-in tools (or the `enabled` subset). Nothing heavy loads here."""
    names = list(BUILTIN_TOOLS) if enabled is None else list(enabled)
    unknown = [n for n in names if n not in BUILTIN_TOOLS]
    if unknown:
        raise BadInputError(f"unknown tool(s) {unknown}; available: {sorted(BUILTIN_TOOLS)}")
    reg = ToolRegistry()
    for name in BUILTIN_TOOLS:  # registry order stays the canonical order whatever `enabled` says
        if name in names:
            cls = tool_class(name)
            reg.register(cls(weights=detector_weights) if name == "detect" else cls())
    return reg
