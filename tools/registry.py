"""The built-in tool set, registered explicitly (see `default_registry`)."""

from __future__ import annotations

from tools.base import ToolRegistry


def default_registry(enabled: list[str] | None = None, detector_weights: str | None = None) -> ToolRegistry:
    """A registry with the built-in tools (or the `enabled` subset). Nothing heavy loads here."""
    from tools.color import ColorTool
    from tools.detector import DetectorTool
    from tools.metadata import MetadataTool
    from tools.ocr import OCRTool
    from tools.zoom import ZoomTool

    reg = ToolRegistry()
    for tool in (OCRTool(), DetectorTool(weights=detector_weights), ZoomTool(), ColorTool(), MetadataTool()):
        if enabled is None or tool.name in enabled:
            reg.register(tool)
    return reg
