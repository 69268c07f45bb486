"""Safe image input: decode once, normalise, bound the size, identify by content hash.

An `ImageRef` hashes the raw bytes without decoding them, so a cache lookup (tool results, image
embeddings) can hit before any pixel work is done. Decoding is lazy and happens once:
EXIF orientation applied (boxes are in pixels of the upright image), every PIL mode normalised to 8-bit
RGB (16-bit and float greyscale scaled, not clipped; transparency over white; CMYK, LAB, palettes),
the declared pixel count bounded so a decompression bomb is refused with a clear message instead of
eating RAM. An image above `MAX_DECODE_PIXELS` is decoded smaller: a JPEG by the decoder's own DCT
scaling (`Image.draft`: the full-size raster never exists), anything else reduced right after
loading; its frame (and so every box) is then the decoded size, and `notes` say so, as they say when
a multi-page or animated file is read from its first frame only.

A conversation does not read such a file from its first frame only: `pages` makes each page of a
multi-page file (TIFF, MPO, PDF) and each distinct frame of an animated one (GIF, WebP, APNG) an image
of its own, named in its `source` ("scan.tif, page 2 of 3"), so "what does page two say?" is asked of
page two. At most `MAX_PAGES` are read (frames evenly spread over an animation, the first pages of a
document), and the names of those read say how many there were.
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
# Larger images are decoded at 1/k of their size (k an integer): 16 Mpx keeps 4096x4096 and every
# phone photo whole, while a 633-byte JPEG declaring 6300x6300 never becomes a 120 MB raster.
# A constant, so one file always decodes to the same frame (tool caches key on its bytes).
MAX_DECODE_PIXELS = 16_000_000
# The most pages or frames of one file a conversation reads as images of their own.
MAX_PAGES = 8


@dataclass
class ImageRef:
    """One input image: its bytes' hash (identity), where it came from, and its decoded pixels on demand."""

    data: bytes = field(repr=False)
    source: str = "<bytes>"
    max_pixels: int = DEFAULT_MAX_PIXELS
    sha256: str = ""
    _image: object = field(default=None, repr=False, compare=False)
    _exif: dict | None = field(default=None, repr=False, compare=False)
    # What a reader of the evidence should know about the decode (downscaled, first page of N), or [].
    notes: list[str] = field(default_factory=list, repr=False, compare=False)
    original_size: tuple[int, int] | None = field(default=None, repr=False, compare=False)
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
                    self._image, self._exif, self.original_size, self.notes = _decode(
                        self.data, self.source, self.max_pixels
                    )
        return self._image

    def decoded_pixels(self) -> int:
        """Pixels the decoded image will have, read from the header alone (nothing is decoded)."""
        if self._image is not None:
            return self._image.size[0] * self._image.size[1]
        im = _open(self.data, self.source)
        with im:
            w, h = im.size
        _check_declared(w, h, self.source, self.max_pixels)
        k = _reduction(w, h)
        return -(-w // k) * -(-h // k)

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


def pages(ref: ImageRef) -> list[ImageRef]:
    """A multi-page or animated file as one ImageRef per page or distinct frame (at most `MAX_PAGES`,
    within the file's pixel limit taken together); any other image as `[ref]`."""
    from PIL import ImageOps

    im = _open(ref.data, ref.source)
    with im:
        n = int(getattr(im, "n_frames", 1) or 1)
        if n <= 1:
            return [ref]
        document = im.format in ("TIFF", "MPO", "PDF")
        kind = "page" if document else "frame"
        if n <= MAX_PAGES or document:
            picked = list(range(min(n, MAX_PAGES)))
        else:  # an animation: frames spread over it, its first and last among them
            picked = sorted({round(i * (n - 1) / (MAX_PAGES - 1)) for i in range(MAX_PAGES)})
        out, last, total = [], None, 0
        for i in picked:
            try:
                im.seek(i)
                w, h = im.size
                _check_declared(w, h, f"{ref.source} {kind} {i + 1}", ref.max_pixels)
                total += w * h
                if out and total > ref.max_pixels:
                    break  # the pages together would pass the file's pixel limit
                frame = _to_rgb(ImageOps.exif_transpose(im.copy()))
            except BadInputError:
                raise
            except Exception as e:
                raise BadInputError(f"corrupt image {ref.source} ({kind} {i + 1}): {_one_line(e)}") from None
            if frame.size[0] * frame.size[1] > MAX_DECODE_PIXELS:
                frame = frame.reduce(_reduction(*frame.size))
            raw = frame.tobytes()
            if raw == last:
                continue  # an animation holding still: the same picture is read once
            last = raw
            read = "" if len(picked) == n else f"; {len(picked)} of its {n} {kind}s read"
            out.append(ImageRef.from_pil(frame, f"{ref.source}, {kind} {i + 1} of {n}{read}"))
    return out


def pages_pixels(ref: ImageRef) -> int:
    """At most the pixels `pages(ref)` decodes, read from the header (a request's pixel budget counts
    every page it will read, not the first alone)."""
    first = ref.decoded_pixels()
    im = _open(ref.data, ref.source)
    with im:
        n = int(getattr(im, "n_frames", 1) or 1)
    return first if n <= 1 else min(first * min(n, MAX_PAGES), max(first, ref.max_pixels))


def _open(data: bytes, source: str):
    from PIL import Image, UnidentifiedImageError

    try:
        return Image.open(io.BytesIO(data))
    except UnidentifiedImageError:
        raise BadInputError(f"not an image (or an unsupported format): {source}") from None
    except Exception as e:
        raise BadInputError(f"cannot open image {source}: {_one_line(e)}") from None


def _check_declared(w: int, h: int, source: str, max_pixels: int) -> None:
    if w * h > max_pixels:
        raise BadInputError(
            f"image too large: {source} is {w}x{h} = {w * h} pixels (limit {max_pixels}); downscale it first"
        )
    if w == 0 or h == 0:
        raise BadInputError(f"empty image: {source} is {w}x{h}")


def _reduction(w: int, h: int) -> int:
    """The integer factor an image of w x h is decoded smaller by (1: full size)."""
    k = 1
    while -(-w // k) * -(-h // k) > MAX_DECODE_PIXELS:
        k *= 2
    return k


def _decode(data: bytes, source: str, max_pixels: int):
    """bytes -> (upright 8-bit RGB image, EXIF dict, declared size, notes)."""
    from PIL import ImageOps

    im = _open(data, source)
    w, h = im.size
    _check_declared(w, h, source, max_pixels)
    notes = []
    try:
        frames = int(getattr(im, "n_frames", 1) or 1)
        if frames > 1:
            kind = "pages" if im.format in ("TIFF", "MPO", "PDF") else "frames"
            notes.append(f"{im.format} file with {frames} {kind}: only the first is read")
        exif = _exif_dict(im)
        k = _reduction(w, h)
        if k > 1 and im.format == "JPEG":
            # DCT scaling inside the decoder (1/2, 1/4, 1/8): the full raster is never built.
            im.draft(im.mode, (-(-w // k), -(-h // k)))
        im = _to_rgb(ImageOps.exif_transpose(im))
        if im.size[0] * im.size[1] > MAX_DECODE_PIXELS:
            im = im.reduce(max(2, round(max(im.size) / -(-max(w, h) // k))))
        if k > 1:
            notes.append(f"decoded at {im.size[0]}x{im.size[1]} from {w}x{h} pixels; boxes are in that frame")
        im.load()
    except BadInputError:
        raise
    except Exception as e:
        raise BadInputError(f"corrupt image {source}: {_one_line(e)}") from None
    return im, exif, (w, h), notes


def _to_rgb(im):
    """Any PIL mode -> 8-bit RGB: high bit depths scaled (never clipped), transparency over white."""
    from PIL import Image

    if im.mode in ("I;16", "I;16L", "I;16B", "I;16N", "I", "F"):
        im = Image.fromarray(_to_8bit(im), "L")
    elif im.mode == "LAB":
        from PIL import ImageCms

        lab, srgb = ImageCms.createProfile("LAB"), ImageCms.createProfile("sRGB")
        im = ImageCms.applyTransform(im, ImageCms.buildTransform(lab, srgb, "LAB", "RGB"))
    if im.mode in ("RGBA", "LA", "PA", "La", "RGBa") or (im.mode == "P" and "transparency" in im.info):
        rgba = im.convert("RGBA")
        bg = Image.new("RGB", rgba.size, (255, 255, 255))
        bg.paste(rgba, mask=rgba.getchannel("A"))
        return bg
    if im.mode == "1":
        im = im.convert("L")
    return im if im.mode == "RGB" else im.convert("RGB")


def _to_8bit(im):
    """A single-channel 16-bit, 32-bit integer or float image as uint8, scaled by its bit depth.

    Integers: by the smallest common depth holding the data (8, 10, 12, 14, 16 or 32 bits), so a
    12-bit scan is not left near black; floats in 0-1 or 0-255 as such; anything else (negative
    values, odd ranges) stretched from its minimum to its maximum.
    """
    import numpy as np

    a = np.asarray(im).astype(np.float64)
    a = np.nan_to_num(a, nan=0.0, posinf=0.0, neginf=0.0)
    lo, hi = (float(a.min()), float(a.max())) if a.size else (0.0, 0.0)
    if im.mode == "F" and lo >= 0 and hi <= 1.0:
        top = 1.0
    elif lo >= 0 and hi <= 255:
        top = 255.0
    elif lo >= 0 and im.mode != "F":
        bits = next(b for b in (10, 12, 14, 16, 32) if hi < 2**b)
        top = float(2**bits - 1)
    else:
        a, top = a - lo, (hi - lo) or 1.0
    return np.clip(np.rint(a * (255.0 / top)), 0, 255).astype(np.uint8)


def _one_line(e: Exception) -> str:
    return " ".join(str(e).split())[:300] or type(e).__name__


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
