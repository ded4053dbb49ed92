"""Decoding untrusted bytes into an RGB image, or a clear reason why not.

Users drop anything into a bucket: truncated files, zero bytes, text named ``.jpg``, decompression
bombs, CMYK, 16-bit, palettes with transparency, animations, phone photos with EXIF rotation. Each
either becomes a sensible upright RGB image or raises ``BadImage`` with a reason for the dead letters.
"""

from __future__ import annotations

import io
import warnings

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from lookalike.errors import BadInput

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".gif", ".webp", ".bmp", ".tif", ".tiff"}


class BadImage(BadInput):
    """The bytes are not a usable image."""


def decode_image(data: bytes, max_pixels: int = 80_000_000, min_side: int | None = None) -> Image.Image:
    """Decode to an upright RGB image. Raises ``BadImage``.

    ``min_side`` lets the JPEG decoder scale down by 1/2, 1/4 or 1/8 while decoding (DCT scaling), as
    long as the shorter side stays at least ``min_side``: a 12-megapixel phone photo decodes about
    seven times faster, and a model that resizes to 256 px anyway sees nearly the same pixels. Pass
    the model's resize size (``Embedder.decode_size``) so its transform still only downsamples. The
    request is square, so the guarantee holds whatever the EXIF orientation turns afterwards. Other
    formats, and ``None``, decode at full size. The pixel limit applies to the stored size.
    """
    if not data:
        raise BadImage("zero-byte object")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            img = Image.open(io.BytesIO(data))
            width, height = img.size
            if width <= 0 or height <= 0:
                raise BadImage("image has no pixels")
            if width * height > max_pixels:
                raise BadImage(f"image is {width}x{height}, over the {max_pixels}-pixel limit (decompression bomb?)")
            if min_side and img.format == "JPEG":
                img.draft("RGB", (min_side, min_side))
            img.seek(0)  # animated GIF/WebP/APNG: the first frame stands for the object
            img.load()
            upright = ImageOps.exif_transpose(img) or img
            return _to_rgb(upright)
    except BadImage:
        raise
    except UnidentifiedImageError:
        raise BadImage("not an image (unrecognised format)") from None
    except Image.DecompressionBombError as exc:
        raise BadImage(f"decompression bomb: {exc}") from None
    except Image.DecompressionBombWarning as exc:
        raise BadImage(f"decompression bomb: {exc}") from None
    except (OSError, SyntaxError, ValueError, EOFError) as exc:
        raise BadImage(f"corrupt or truncated image: {exc}") from None
    except MemoryError:
        raise BadImage("image too large to decode") from None


GENERIC_TYPES = frozenset({"", "binary/octet-stream", "application/octet-stream"})


def content_type_of(data: bytes, declared: str | None) -> str:
    """The object's declared content type, or the image format's MIME type when it declares none.

    S3 stores ``binary/octet-stream`` for an upload that named no type (and moto notifies before it
    records the type that was named), so a generic type is replaced by what the bytes are.
    """
    if declared and declared.lower() not in GENERIC_TYPES:
        return declared
    try:
        with Image.open(io.BytesIO(data)) as img:  # reads the header only
            mime = Image.MIME.get(img.format or "")
    except Exception:
        mime = None
    return mime or declared or ""


def _to_rgb(img: Image.Image) -> Image.Image:
    mode = img.mode
    if mode in ("I;16", "I;16L", "I;16B", "I;16N", "I", "F"):
        arr = np.asarray(img, dtype=np.float32)
        top = 65535.0 if mode.startswith("I;16") else max(float(arr.max()), 1.0)
        arr = np.clip(arr / top * 255.0, 0, 255).astype(np.uint8)
        return Image.fromarray(arr, "L").convert("RGB")
    if mode == "P":
        img = img.convert("RGBA") if "transparency" in img.info else img.convert("RGB")
        mode = img.mode
    if mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        rgba = img.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    if mode != "RGB":
        return img.convert("RGB")
    return img


def image_jpeg(image: Image.Image, px: int, square: bool = False, quality: int = 82) -> bytes:
    """``image`` fitted into ``px`` x ``px`` (or centre-cropped to that square, for an even grid),
    as JPEG bytes: small enough for any page."""
    if square:
        small = ImageOps.fit(image, (px, px))
    else:
        small = image.copy()
        small.thumbnail((px, px))
    out = io.BytesIO()
    small.convert("RGB").save(out, format="JPEG", quality=quality)
    return out.getvalue()


def thumbnail_bytes(data: bytes, px: int = 256, max_pixels: int = 80_000_000, square: bool = False) -> bytes:
    """A thumbnail of untrusted bytes (the dashboard's grid, the API's ``/image``). Raises
    ``BadImage``; JPEGs decode at reduced size, so a 12-megapixel photo stays cheap."""
    return image_jpeg(decode_image(data, max_pixels=max_pixels, min_side=px), px, square=square)
