"""The bad-image zoo: every kind of file users drop into a bucket, made on the fly.

``VALID`` ones must be indexed (EXIF applied); ``INVALID`` ones must be dead-lettered with a reason.
"""

from __future__ import annotations

import io
import zlib
from collections.abc import Callable

import numpy as np
from PIL import Image

from tests.helpers import dataset_images


def _photo(size: tuple[int, int] | None = None) -> Image.Image:
    img = Image.open(dataset_images(1)[0]).convert("RGB")
    return img.resize(size) if size else img


def _save(img: Image.Image, fmt: str, **kw: object) -> bytes:
    buf = io.BytesIO()
    img.save(buf, fmt, **kw)
    return buf.getvalue()


def jpeg() -> bytes:
    return _save(_photo(), "JPEG", quality=90)


def exif_rotated() -> bytes:
    """Stored sideways with EXIF orientation 6 (rotate 90° clockwise to view), as phones do."""
    img = _photo().transpose(Image.Transpose.ROTATE_90)
    exif = Image.Exif()
    exif[0x0112] = 6
    return _save(img, "JPEG", quality=90, exif=exif.tobytes())


def cmyk() -> bytes:
    return _save(_photo().convert("CMYK"), "JPEG", quality=90)


def png16() -> bytes:
    arr = (np.asarray(_photo().convert("L"), dtype=np.uint16) * 257).astype("<u2")
    img = Image.fromarray(arr)
    assert img.mode.startswith("I;16"), img.mode
    return _save(img, "PNG")


def rgba() -> bytes:
    img = _photo().convert("RGBA")
    img.putalpha(200)
    return _save(img, "PNG")


def palette_transparent() -> bytes:
    img = _photo().convert("P", palette=Image.Palette.ADAPTIVE, colors=64)
    img.info["transparency"] = 0
    return _save(img, "PNG", transparency=0)


def animated_gif() -> bytes:
    frames = [_photo((160, 120)).convert("P"), _photo((160, 120)).rotate(20).convert("P")]
    return _save(frames[0], "GIF", save_all=True, append_images=frames[1:], duration=100, loop=0)


def animated_webp() -> bytes:
    frames = [_photo((160, 120)), _photo((160, 120)).rotate(20)]
    return _save(frames[0], "WEBP", save_all=True, append_images=frames[1:], duration=100)


def huge_dimensions() -> bytes:
    """Valid and large: 6000x4500 (27 MP), under the pixel limit."""
    return _save(_photo((6000, 4500)), "JPEG", quality=70)


def truncated() -> bytes:
    return jpeg()[:2000]


def corrupt() -> bytes:
    data = bytearray(jpeg())
    data[200:4000] = b"\x00" * 3800
    return bytes(data[: len(data) // 2])


def zero_bytes() -> bytes:
    return b""


def text_as_jpg() -> bytes:
    return b"this is not an image, just text with a .jpg name\n" * 20


def decompression_bomb() -> bytes:
    """A 1-bit PNG of 30000x30000 (900 MP) that compresses to a few kB."""
    width = height = 30000
    raw = zlib.compress(b"".join(b"\x00" + b"\x00" * (width // 8) for _ in range(height)), 9)

    def chunk(tag: bytes, data: bytes) -> bytes:
        return len(data).to_bytes(4, "big") + tag + data + zlib.crc32(tag + data).to_bytes(4, "big")

    ihdr = width.to_bytes(4, "big") + height.to_bytes(4, "big") + bytes([1, 0, 0, 0, 0])
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", raw) + chunk(b"IEND", b"")


VALID: dict[str, Callable[[], bytes]] = {
    "zoo/exif_rotated.jpg": exif_rotated,
    "zoo/cmyk.jpg": cmyk,
    "zoo/sixteen_bit.png": png16,
    "zoo/alpha.png": rgba,
    "zoo/palette.png": palette_transparent,
    "zoo/animated.gif": animated_gif,
    "zoo/animated.webp": animated_webp,
    "zoo/huge.jpg": huge_dimensions,
}

INVALID: dict[str, Callable[[], bytes]] = {
    "zoo/truncated.jpg": truncated,
    "zoo/corrupt.jpg": corrupt,
    "zoo/zero.jpg": zero_bytes,
    "zoo/text.jpg": text_as_jpg,
    "zoo/bomb.png": decompression_bomb,
}
