"""Safe image input: decode once, normalise, bound the size, identify by content hash.

An `ImageRef` hashes the raw bytes without decoding them, so a cache lookup (tool results, image
embeddings) can hit before any pixel work is done. Decoding is lazy and happens once:
EXIF orientation applied (boxes are in pixels of the upright image), mode normalised to RGB,
pixel count bounded so a decompression bomb is refused with a clear message instead of eating RAM.
"""

from __future__ import annotations

import hashlib
import io
import threading
from dataclasses import dataclass, field
from pathlib import Path

from tools.errors import BadInputError

# 40 Mpx: above any phone photo, far below what would exhaust memory on a 24 GiB machine.
DEFAULT_MAX_PIXELS = 40_000_000
# Files larger than this are refused before reading them whole.
MAX_FILE_BYTES = 64 * 1024 * 1024


@dataclass
class ImageRef:
    """One input image: its bytes' hash (identity), where it came from, and its decoded pixels on demand."""

    data: bytes = field(repr=False)
    source: str = "<bytes>"
    max_pixels: int = DEFAULT_MAX_PIXELS
    sha256: str = ""
    _image: object = field(default=None, repr=False, compare=False)
    _exif: dict | None = field(default=None, repr=False, compare=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def __post_init__(self):
        if not self.sha256:
            self.sha256 = hashlib.sha256(self.data).hexdigest()

    @property
    def id(self) -> str:
        """Short content id used in traces and evidence (first 16 hex digits of sha256)."""
        return self.sha256[:16]

    @classmethod
    def from_path(cls, path: str | Path, max_pixels: int = DEFAULT_MAX_PIXELS) -> ImageRef:
        p = Path(path)
        if not p.exists():
            raise BadInputError(f"image not found: {p}")
        if not p.is_file():
            raise BadInputError(f"not a file: {p}")
        size = p.stat().st_size
        if size > MAX_FILE_BYTES:
            raise BadInputError(f"image file too large: {p} is {size} bytes (limit {MAX_FILE_BYTES})")
        return cls(data=p.read_bytes(), source=str(p), max_pixels=max_pixels)

    @classmethod
    def from_pil(cls, image, source: str = "<pil>") -> ImageRef:
        """Wrap an in-memory PIL image (encoded losslessly as PNG so the hash is stable)."""
        buf = io.BytesIO()
        image.save(buf, format="PNG")
        return cls(data=buf.getvalue(), source=source)

    @classmethod
    def coerce(cls, obj) -> ImageRef:
        """Accept an ImageRef, a path, raw bytes or a PIL image."""
        if isinstance(obj, ImageRef):
            return obj
        if isinstance(obj, (str, Path)):
            return cls.from_path(obj)
        if isinstance(obj, (bytes, bytearray)):
            return cls(data=bytes(obj))
        if hasattr(obj, "save") and hasattr(obj, "size"):
            return cls.from_pil(obj)
        raise BadInputError(f"cannot use {type(obj).__name__} as an image")

    @property
    def image(self):
        """The decoded, upright RGB PIL image (decoded once, thread-safe)."""
        if self._image is None:
            with self._lock:
                if self._image is None:
                    self._image, self._exif = _decode(self.data, self.source, self.max_pixels)
        return self._image

    @property
    def size(self) -> tuple[int, int]:
        return self.image.size

    @property
    def exif(self) -> dict:
        """Raw EXIF tags of the file as {tag name: value} (empty when none)."""
        self.image  # noqa: B018 - decoding fills _exif
        return self._exif or {}

    @property
    def format(self) -> str | None:
        from PIL import Image

        try:
            with Image.open(io.BytesIO(self.data)) as im:
                return im.format
        except Exception:
            return None


def _decode(data: bytes, source: str, max_pixels: int):
    from PIL import Image, ImageOps, UnidentifiedImageError

    try:
        im = Image.open(io.BytesIO(data))
    except UnidentifiedImageError:
        raise BadInputError(f"not an image (or an unsupported format): {source}") from None
    except Exception as e:
        raise BadInputError(f"cannot open image {source}: {e}") from None
    w, h = im.size
    if w * h > max_pixels:
        raise BadInputError(
            f"image too large: {source} is {w}x{h} = {w * h} pixels (limit {max_pixels}); downscale it first"
        )
    if w == 0 or h == 0:
        raise BadInputError(f"empty image: {source} is {w}x{h}")
    try:
        exif = _exif_dict(im)
        im = ImageOps.exif_transpose(im)
        if im.mode in ("RGBA", "LA", "PA") or (im.mode == "P" and "transparency" in im.info):
            rgba = im.convert("RGBA")
            bg = Image.new("RGB", rgba.size, (255, 255, 255))
            bg.paste(rgba, mask=rgba.split()[-1])
            im = bg
        else:
            im = im.convert("RGB")
        im.load()
    except Exception as e:
        raise BadInputError(f"corrupt image {source}: {e}") from None
    return im, exif


def _exif_dict(im) -> dict:
    from PIL import ExifTags

    try:
        raw = im.getexif()
    except Exception:
        return {}
    out = {}
    for tag, value in raw.items():
        out[ExifTags.TAGS.get(tag, str(tag))] = value
    for ifd_id in (ExifTags.IFD.Exif, ExifTags.IFD.GPSInfo):
        try:
            sub = raw.get_ifd(ifd_id)
        except Exception:
            continue
        names = ExifTags.GPSTAGS if ifd_id == ExifTags.IFD.GPSInfo else ExifTags.TAGS
        for tag, value in sub.items():
            key = names.get(tag, str(tag))
            out["GPS" + key if ifd_id == ExifTags.IFD.GPSInfo and not key.startswith("GPS") else key] = value
    return out
