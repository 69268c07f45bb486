"""The metadata tool reports size, format and EXIF facts (orientation, time, camera, GPS in decimal degrees)."""

from __future__ import annotations

import io

import pytest
from PIL import ExifTags, Image

from tools.images import ImageRef
from tools.metadata import MetadataTool, gps_decimal


def _jpeg_with_exif(orientation=6, gps=True) -> bytes:
    im = Image.new("RGB", (64, 48), (200, 30, 30))  # stored landscape; orientation 6 makes it portrait
    exif = Image.Exif()
    exif[ExifTags.Base.Make] = "Canon"
    exif[ExifTags.Base.Model] = "Canon EOS 5D"
    exif[ExifTags.Base.Orientation] = orientation
    exif[ExifTags.Base.DateTime] = "2024:05:01 12:30:00"
    exif.get_ifd(ExifTags.IFD.Exif)[ExifTags.Base.DateTimeOriginal] = "2024:05:01 12:29:59"
    if gps:
        g = exif.get_ifd(ExifTags.IFD.GPSInfo)
        g[ExifTags.GPS.GPSLatitudeRef] = "S"
        g[ExifTags.GPS.GPSLatitude] = (33.0, 51.0, 54.0)
        g[ExifTags.GPS.GPSLongitudeRef] = "E"
        g[ExifTags.GPS.GPSLongitude] = (151.0, 12.0, 36.0)
        g[ExifTags.GPS.GPSAltitude] = 58.5
    buf = io.BytesIO()
    im.save(buf, "JPEG", exif=exif)
    return buf.getvalue()


def _facts(data: bytes) -> dict:
    found = MetadataTool()(ImageRef(data))
    assert all(
        f.kind == "metadata" and f.box is None and f.text.startswith(f.extra["key"] + ": ") for f in found
    )
    return {f.extra["key"]: f.extra["value"] for f in found}


def test_exif_facts_with_gps_as_decimal_degrees():
    facts = _facts(_jpeg_with_exif())
    assert facts["size"] == [48, 64]  # upright: the EXIF rotation swapped the sides
    assert facts["stored_size"] == [64, 48]
    assert facts["format"] == "JPEG" and facts["mode"] == "RGB"
    assert facts["orientation"] == 6
    assert facts["timestamp"] == "2024:05:01 12:29:59"  # the original capture time wins
    assert facts["camera"] == {"make": "Canon", "model": "Canon EOS 5D"}
    lat, lon = facts["gps"]
    assert lat == pytest.approx(-33.865, abs=1e-4) and lon == pytest.approx(151.21, abs=1e-4)  # Sydney
    assert facts["altitude"] == 58.5


def test_a_plain_png_has_only_file_facts():
    buf = io.BytesIO()
    Image.new("L", (10, 20)).save(buf, "PNG")
    assert _facts(buf.getvalue()) == {"size": [10, 20], "format": "PNG", "mode": "L"}


def test_gps_decimal_signs_and_junk():
    assert gps_decimal((48, 51, 29.52), b"N") == pytest.approx(48.8582)
    assert gps_decimal((2, 17, 40.2), "W") == pytest.approx(-2.2945)
    assert gps_decimal(None, "N") is None
