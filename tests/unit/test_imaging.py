"""Decoding the zoo: valid images become upright RGB, invalid ones raise BadImage with a reason."""

from __future__ import annotations

import io

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
    buf = io.BytesIO()
    rgba.save(buf, "PNG")
    assert np.asarray(decode_image(buf.getvalue())).min() == 255


def test_animation_uses_first_frame() -> None:
    img = decode_image(zoo.animated_gif())
    assert img.size == (160, 120)


# ---------------------------------------------------------------- draft decoding (phone photos)
@pytest.fixture(scope="module")
def photo_12mp() -> Image.Image:
    """A 4032x3024 phone photo made from the zoo's scene. Its sides are whole 16-pixel blocks, as a
    phone's are, so a turned copy drafts to exactly the same pixels (with partial blocks the turn
    moves the padding to the other edge: a shift under one drafted pixel)."""
    return zoo.scene((4032, 3024))


def _jpeg(img: Image.Image, orientation: int | None = None) -> bytes:
    exif = Image.Exif()
    if orientation is not None:
        from infra.bench.photos import ORIENTATIONS

        img = img.transpose(ORIENTATIONS[orientation])
        exif[0x0112] = orientation
    buf = io.BytesIO()
    img.save(buf, "JPEG", quality=90, exif=exif.tobytes())
    return buf.getvalue()


def test_12mp_jpeg_is_drafted_to_just_above_the_target(photo_12mp: Image.Image) -> None:
    data = _jpeg(photo_12mp)
    full = decode_image(data)
    drafted = decode_image(data, min_side=256)
    assert full.size == photo_12mp.size
    assert min(drafted.size) >= 256  # the model's resize still only downsamples
    assert min(drafted.size) < 2 * 256  # the largest DCT scale that keeps that: 1/8 here
    assert drafted.width * drafted.height * 32 < full.width * full.height
    assert drafted.mode == "RGB"


@pytest.mark.parametrize("orientation", [6, 8, 3])
def test_exif_rotated_photos_come_out_upright_at_the_right_size(photo_12mp: Image.Image, orientation: int) -> None:
    upright = decode_image(_jpeg(photo_12mp), min_side=256)
    rotated = decode_image(_jpeg(photo_12mp, orientation), min_side=256)
    assert rotated.size == upright.size  # stored sideways, drafted, then turned upright
    assert min(rotated.size) >= 256
    diff = np.abs(np.asarray(rotated, dtype=np.int16) - np.asarray(upright, dtype=np.int16)).mean()
    assert diff < 2  # only JPEG re-encoding noise: an unturned or mis-turned image differs far more


def test_min_side_larger_than_the_image_decodes_full_size() -> None:
    data = zoo.jpeg()
    assert decode_image(data, min_side=256).size == decode_image(data).size
    assert decode_image(data, min_side=4096).size == decode_image(data).size


def test_png_is_not_drafted(photo_12mp: Image.Image) -> None:
    img = photo_12mp.resize((1600, 1200))
    buf = io.BytesIO()
    img.save(buf, "PNG")
    assert decode_image(buf.getvalue(), min_side=256).size == (1600, 1200)


def test_pixel_limit_applies_to_the_stored_size(photo_12mp: Image.Image) -> None:
    with pytest.raises(BadImage, match="pixel limit"):
        decode_image(_jpeg(photo_12mp), max_pixels=1_000_000, min_side=256)


@pytest.mark.parametrize("name", sorted(zoo.VALID))
def test_valid_images_still_decode_with_draft(name: str) -> None:
    full = decode_image(zoo.VALID[name]())
    drafted = decode_image(zoo.VALID[name](), min_side=256)
    assert drafted.mode == "RGB"
    assert min(drafted.size) >= min(256, *full.size)
    assert drafted.width / drafted.height == pytest.approx(full.width / full.height, rel=0.02)
