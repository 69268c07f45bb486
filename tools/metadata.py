"""The metadata tool: what the file says about itself (size, format, EXIF orientation, time, camera, GPS).

Each fact is one finding of kind "metadata" with text "key: value" and the machine-readable value in
`extra`, so "when was this taken?" or "where?" can be answered and cited. Sizes are of the upright
image (after EXIF orientation), the frame every box in the project uses; the stored size is reported
too when the orientation swaps the sides.
"""

from __future__ import annotations

import io

from tools.base import Tool
from tools.evidence import Finding
from tools.images import ImageRef

# EXIF orientation values (TIFF 6.0 spec): how the stored pixels must be turned to be upright.
ORIENTATIONS = {
    1: "upright",
    2: "mirrored",
    3: "rotated 180°",
    4: "flipped vertically",
    5: "mirrored and rotated 90° counter-clockwise",
    6: "rotated 90° clockwise",
    7: "mirrored and rotated 90° clockwise",
    8: "rotated 90° counter-clockwise",
}


def gps_decimal(dms, ref) -> float | None:
    """EXIF (degrees, minutes, seconds) + 'N'/'S'/'E'/'W' -> signed decimal degrees."""
    try:
        d, m, s = (float(v) for v in dms)
    except (TypeError, ValueError, ZeroDivisionError):
        return None
    value = d + m / 60.0 + s / 3600.0
    if isinstance(ref, bytes):
        ref = ref.decode(errors="ignore")
    return round(-value if str(ref).strip().upper() in ("S", "W") else value, 6)


class MetadataTool(Tool):
    name = "metadata"
    description = (
        "Image file facts: size, format, colour mode, and EXIF orientation, timestamp, camera make and "
        "model, and GPS position (decimal degrees) when present."
    )
    inputs = {}
    evidence_prefix = "meta"
    timeout_s = 10.0

    def forward(self, image: ImageRef) -> list[Finding]:
        from PIL import Image

        w, h = image.size
        facts: list[tuple[str, object, str]] = [("size", [w, h], f"{w}x{h} pixels")]
        with Image.open(io.BytesIO(image.data)) as raw:
            fmt, mode, stored = raw.format, raw.mode, raw.size
        facts += [("format", fmt, str(fmt)), ("mode", mode, mode)]
        # How the file was read when it was not read whole: first page of N, decoded smaller.
        facts += [("decoding", note, note) for note in image.notes]
        exif = image.exif
        orient = exif.get("Orientation")
        if orient in ORIENTATIONS:
            facts.append(("orientation", orient, f"{orient} ({ORIENTATIONS[orient]})"))
            if tuple(stored) != (w, h):
                facts.append(("stored_size", list(stored), f"{stored[0]}x{stored[1]} pixels before rotation"))
        when = exif.get("DateTimeOriginal") or exif.get("DateTime")
        if when:
            facts.append(("timestamp", str(when), str(when)))
        make, model = (str(exif.get(k, "")).strip("\x00 ") for k in ("Make", "Model"))
        if make or model:
            camera = model if make and model.lower().startswith(make.lower()) else f"{make} {model}".strip()
            facts.append(("camera", {"make": make, "model": model}, camera))
        lat = gps_decimal(exif.get("GPSLatitude"), exif.get("GPSLatitudeRef", "N"))
        lon = gps_decimal(exif.get("GPSLongitude"), exif.get("GPSLongitudeRef", "E"))
        if lat is not None and lon is not None:
            facts.append(("gps", [lat, lon], f"{lat:.6f}, {lon:.6f}"))
            alt = exif.get("GPSAltitude")
            if alt is not None:
                try:
                    below = exif.get("GPSAltitudeRef") in (1, b"\x01")
                    alt_m = round(-float(alt) if below else float(alt), 1)
                    facts.append(("altitude", alt_m, f"{alt_m} m"))
                except (TypeError, ValueError, ZeroDivisionError):
                    pass
        return [
            Finding("metadata", f"{key}: {text}", 1.0, None, {"key": key, "value": value})
            for key, value, text in facts
        ]
