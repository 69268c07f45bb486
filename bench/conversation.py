"""What the cache and GPU benchmarks' conversations are made of: real photos as JPEG bytes, the same
pixels under fresh bytes (a real embedding-cache miss), chat messages, and a `generate` streamer that
notes when each token arrives.
"""

from __future__ import annotations

import io
import time
from pathlib import Path


class TokenClock:
    """A `generate` streamer that only notes when each new token arrives (the first `put` is the prompt)."""

    def __init__(self):
        self.times: list[float] = []
        self._prompt_seen = False

    def put(self, value):
        if self._prompt_seen:
            self.times.append(time.perf_counter())
        self._prompt_seen = True

    def end(self):
        pass


def real_photos() -> list[bytes]:
    """Two real photos (shipped with ultralytics) as JPEG bytes."""
    import ultralytics
    from PIL import Image

    assets = Path(ultralytics.__file__).parent / "assets"
    out = []
    for name in ("bus.jpg", "zidane.jpg"):
        with Image.open(assets / name) as im:
            out.append(jpeg_bytes(im.convert("RGB"), b""))
    return out


def jpeg_bytes(image, comment: bytes) -> bytes:
    buf = io.BytesIO()
    image.save(buf, format="JPEG", quality=92, comment=comment)
    return buf.getvalue()


def fresh_bytes(photo: bytes, tag: str) -> bytes:
    """The same pixels under new bytes (a JPEG comment): a real embedding-cache miss, no engine internals."""
    from PIL import Image

    with Image.open(io.BytesIO(photo)) as im:
        return jpeg_bytes(im.convert("RGB"), tag.encode())


def user_message(text: str, n_images: int) -> dict:
    """A user chat message: `n_images` image slots, then the text."""
    if not n_images:
        return {"role": "user", "content": text}
    return {"role": "user", "content": [{"type": "image"}] * n_images + [{"type": "text", "text": text}]}
