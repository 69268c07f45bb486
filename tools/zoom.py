"""The zoom tool: crop a region with a margin, upscale it, and read it again.

Small text that OCR misses on the whole image is often readable once it is a few times larger. The crop
is read by the OCR tool with the same engines (by default the neural engine and Tesseract, fused).
Zoom returns one "crop" finding for the region it looked at, plus the OCR findings read in the
upscaled crop with their boxes mapped back to pixels of the original image
(`tools.evidence.crop_to_original`), so a word found by zooming is cited in the same frame as
everything else. `crop()` is also usable on its own, e.g. to show a model the enlarged region.
"""

from __future__ import annotations

from PIL import Image

from tools.base import Tool
from tools.errors import BadInputError, ToolError
from tools.evidence import Box, Finding, clip_box, crop_to_original
from tools.images import ImageRef

# Auto scale aims the crop's longer side at this many pixels, within [1, MAX_SCALE].
AUTO_TARGET_SIDE = 1000
MAX_SCALE = 4.0


def crop(image: Image.Image, box: Box, margin: float = 0.1, scale: float | None = None):
    """(upscaled crop, crop box in original pixels, scale used). `margin` is a fraction of the box size."""
    x0, y0, x1, y1 = box
    mx, my = (x1 - x0) * margin, (y1 - y0) * margin
    cx0, cy0, cx1, cy1 = (round(v) for v in clip_box((x0 - mx, y0 - my, x1 + mx, y1 + my), image.size))
    if cx1 - cx0 < 1 or cy1 - cy0 < 1:
        raise BadInputError(f"zoom box {list(box)} lies outside the {image.width}x{image.height} image")
    if scale is None:
        scale = min(MAX_SCALE, max(1.0, AUTO_TARGET_SIDE / max(cx1 - cx0, cy1 - cy0)))
    region = image.crop((cx0, cy0, cx1, cy1))
    size = (max(1, round((cx1 - cx0) * scale)), max(1, round((cy1 - cy0) * scale)))
    # The real scale per axis differs from `scale` by rounding only; use the x one for mapping back.
    return region.resize(size, Image.Resampling.LANCZOS), (cx0, cy0, cx1, cy1), size[0] / (cx1 - cx0)


class ZoomTool(Tool):
    name = "zoom"
    description = (
        "Look closer at a region: crop it with a margin, enlarge it and read the text in it again. "
        "Use for small or distant text, or a second look at part of the image."
    )
    inputs = {
        "box": {"type": "box", "description": "The region to enlarge."},
        "margin": {
            "type": "number",
            "description": "Context added on each side, as a fraction of the box size.",
            "default": 0.1,
            "minimum": 0,
            "maximum": 2,
        },
        "scale": {
            "type": "number",
            "description": "Enlargement factor; empty = automatic (up to 4x).",
            "default": None,
            "minimum": 1,
            "maximum": 8,
        },
        "ocr": {"type": "boolean", "description": "Read the text in the enlarged crop.", "default": True},
        "engine": {
            "type": "string",
            "description": "OCR engine for the crop, as the ocr tool's: 'auto' (both, fused), 'tesseract', 'rapid'.",
            "default": "auto",
            "enum": ["auto", "tesseract", "rapid"],
        },
    }
    version = "2"  # the crop is read by the fused OCR (neural engine + Tesseract)
    evidence_prefix = "zoom"
    timeout_s = 60.0

    def __init__(self, ocr: Tool | None = None):
        super().__init__()
        self._ocr = ocr  # the OCR tool that reads the crop; the project's OCRTool unless given

    def setup(self) -> None:
        if self._ocr is None:
            try:
                from tools.ocr import OCRTool
            except ImportError as e:
                raise ToolError("zoom", f"it needs the OCR tool (tools/ocr.py): {e}") from None
            self._ocr = OCRTool()

    def forward(self, image: ImageRef, box, margin=0.1, scale=None, ocr=True, engine="auto") -> list[Finding]:
        up, cbox, used = crop(image.image, box, margin, scale)
        extra = {"scale": round(used, 4), "size": list(up.size), "margin": margin}
        found = [
            Finding("crop", f"region {','.join(str(v) for v in cbox)} enlarged {used:.1f}x", 1.0, cbox, extra)
        ]
        if not ocr:
            return found
        for f in self._ocr(ImageRef.from_pil(up, source=f"{image.source}#zoom"), engine=engine):
            mapped = None
            if f.box is not None:
                mapped = clip_box(crop_to_original(f.box, cbox[:2], used), image.size)
            found.append(Finding(f.kind, f.text, f.confidence, mapped, {**f.extra, "via": "zoom"}))
        return found
