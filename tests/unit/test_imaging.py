"""Decoding the zoo: valid images become upright RGB, invalid ones raise BadImage with a reason."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from lookalike.imaging import BadImage, decode_image
from tests import zoo


@pytest.mark.parametrize("name", sorted(zoo.VALID))
def test_valid_images_decode_to_rgb(name: str) -> None:
    img = decode_image(zoo.VALID[name]())
    assert img.mode == "RGB"
    assert img.width > 0 and img.height > 0


@pytest.mark.parametrize("name", sorted(zoo.INVALID))
def test_invalid_images_raise_bad_image(name: str) -> None:
    with pytest.raises(BadImage) as info:
        decode_image(zoo.INVALID[name]())
    assert str(info.value)


def test_exif_orientation_is_applied() -> None:
    upright = decode_image(zoo.jpeg())
    rotated = decode_image(zoo.exif_rotated())
    assert rotated.size == upright.size  # stored sideways, shown upright
    diff = np.abs(np.asarray(rotated, dtype=np.int16) - np.asarray(upright, dtype=np.int16)).mean()
    assert diff < 8  # only JPEG re-encoding noise


def test_bomb_reason_names_the_limit() -> None:
    with pytest.raises(BadImage, match=r"pixel limit|decompression bomb"):
        decode_image(zoo.decompression_bomb())


def test_pixel_limit_is_configurable() -> None:
    with pytest.raises(BadImage, match="pixel limit"):
        decode_image(zoo.jpeg(), max_pixels=1000)


def test_sixteen_bit_keeps_its_contrast() -> None:
    img = decode_image(zoo.png16())
    arr = np.asarray(img)
    assert arr.max() > 200 and arr.min() < 60  # not clipped to white, not crushed to black


def test_transparent_pixels_become_white() -> None:
    rgba = Image.new("RGBA", (4, 4), (0, 0, 0, 0))
    import io

    buf = io.BytesIO()
    rgba.save(buf, "PNG")
    assert np.asarray(decode_image(buf.getvalue())).min() == 255


def test_animation_uses_first_frame() -> None:
    img = decode_image(zoo.animated_gif())
    assert img.size == (160, 120)
