"""The bad-image zoo: every kind of file users drop into a bucket, made on the fly.

``VALID`` ones must be indexed (EXIF applied); ``INVALID`` ones must be dead-lettered with a reason.
"""

from __future__ import annotations

import io
import zlib
from collections.abc import Callable

import numpy as np
from PIL import Image, ImageDraw, ImageFilter


def scene(size: tuple[int, int] | None = None) -> Image.Image:
    """A drawn 500x375 landscape (sky, ground, sun, tree, house) with sensor-like noise.

    Made here rather than read from ../shared so the unit tier needs nothing. It has an up and a
    down, as a photo does: with the shared weights its vector and its 90°-turned copy's score about
    0.79 (a real sample photo: 0.66), so the integration tier's "EXIF applied" check (> 0.97) still
    tells a turned image from an upright one.
    """
    w, h = 500, 375
    y = np.linspace(0, 1, h)[:, None, None]
    sky = np.array([70, 130, 220]) * (1 - y) + np.array([200, 225, 250]) * y
    ground = np.array([60, 140, 50]) * (1 - y) + np.array([110, 80, 40]) * y
    arr = np.where(np.arange(h)[:, None, None] < int(h * 0.6), sky, ground) * np.ones((1, w, 1))
    arr = arr + np.random.default_rng(7).normal(0, 12, (h, w, 3))
    img = Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8))
    draw = ImageDraw.Draw(img)
    draw.ellipse((40, 30, 110, 100), fill=(255, 220, 60))  # sun
    draw.rectangle((260, 150, 400, 260), fill=(180, 60, 50))  # house, roof, door
    draw.polygon([(250, 150), (330, 80), (410, 150)], fill=(90, 40, 30))
    draw.rectangle((310, 200, 345, 260), fill=(60, 40, 20))
    draw.rectangle((140, 170, 155, 260), fill=(90, 60, 30))  # tree
    draw.ellipse((105, 110, 190, 190), fill=(30, 110, 40))
    img = img.filter(ImageFilter.GaussianBlur(0.8))
    return img.resize(size) if size else img


def _save(img: Image.Image, fmt: str, **kw: object) -> bytes:
    buf = io.BytesIO()
    img.save(buf, fmt, **kw)
    return buf.getvalue()


def jpeg() -> bytes:
    return _save(scene(), "JPEG", quality=90)


def exif_rotated() -> bytes:
    """Stored sideways with EXIF orientation 6 (rotate 90° clockwise to view), as phones do."""
    img = scene().transpose(Image.Transpose.ROTATE_90)
    exif = Image.Exif()
    exif[0x0112] = 6
    return _save(img, "JPEG", quality=90, exif=exif.tobytes())


def cmyk() -> bytes:
    return _save(scene().convert("CMYK"), "JPEG", quality=90)


def png16() -> bytes:
    arr = (np.asarray(scene().convert("L"), dtype=np.uint16) * 257).astype("<u2")
    img = Image.fromarray(arr)
    assert img.mode.startswith("I;16"), img.mode
    return _save(img, "PNG")


def rgba() -> bytes:
    img = scene().convert("RGBA")
    img.putalpha(200)
    return _save(img, "PNG")


def palette_transparent() -> bytes:
    img = scene().convert("P", palette=Image.Palette.ADAPTIVE, colors=64)
    img.info["transparency"] = 0
    return _save(img, "PNG", transparency=0)


def animated_gif() -> bytes:
    frames = [scene((160, 120)).convert("P"), scene((160, 120)).rotate(20).convert("P")]
    return _save(frames[0], "GIF", save_all=True, append_images=frames[1:], duration=100, loop=0)


def animated_webp() -> bytes:
    frames = [scene((160, 120)), scene((160, 120)).rotate(20)]
    return _save(frames[0], "WEBP", save_all=True, append_images=frames[1:], duration=100)


def huge_dimensions() -> bytes:
    """Valid and large: 6000x4500 (27 MP), under the pixel limit."""
    return _save(scene((6000, 4500)), "JPEG", quality=70)


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
