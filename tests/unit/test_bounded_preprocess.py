"""Preparing an image costs what the model's input costs, whatever the image's shape (issue 26).

timm's eval transform resized the shorter side first: a 143-byte 20000x1 PNG became 5,120,000x256
(6 GB, 17 s). ``lookalike.preprocess`` resamples only the crop the model sees. These tests build the
transform from a data config alone (mobilenetv2_100's, and others), with no model and no weights.
Memory is measured as the rise of this process's peak RSS (Linux ``/proc``), not with tracemalloc,
which does not see Pillow's or torch's buffers. Nothing here is timed: the bench measures speed.
"""

from __future__ import annotations

import ctypes
import io
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from lookalike.imaging import BadImage, decode_image
from lookalike.preprocess import MIN_CROP_PIXELS, BoundedTransform, ImageTooThin

MEAN, STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
# mobilenetv2_100's pretrained data config (timm.data.resolve_data_config), the default model's
DEFAULT = {"input_size": (3, 224, 224), "interpolation": "bicubic", "mean": MEAN, "std": STD,
           "crop_pct": 0.875, "crop_mode": "center"}  # fmt: skip
OTHERS = {
    "crop_pct 1.0, 256": {**DEFAULT, "input_size": (3, 256, 256), "crop_pct": 1.0},
    "crop_pct 0.95, bilinear": {**DEFAULT, "crop_pct": 0.95, "interpolation": "bilinear"},
    "non-square input": {**DEFAULT, "input_size": (3, 224, 320), "crop_pct": 0.9},
    "squash": {**DEFAULT, "crop_mode": "squash"},
}
ISSUE_SHAPES = [(20000, 1), (1, 20000), (60000, 2)]  # the issue's three images
THIN_BUT_ACCEPTED = [(20000, 10), (10, 20000), (60000, 12)]  # the same, just over the rule
FORMATS = ["PNG", "GIF", "WEBP", "TIFF", "JPEG"]
MAX_SIDE = {"WEBP": 16383, "JPEG": 65500}  # the formats' own limits
PER_IMAGE_MB = 100  # the issue's bound for one image, decode included
BATCH_MB = 48  # 32 prepared worst-case images: 19 MB of float32 tensors plus a few MB of buffers


@pytest.fixture(scope="module")
def transform() -> BoundedTransform:
    bounded = BoundedTransform.from_config(DEFAULT)
    assert bounded.bounded
    return bounded


def scene(size: tuple[int, int], seed: int = 0) -> Image.Image:
    """Smooth colour noise with some edges: a photo's statistics, without the sample set."""
    rng = np.random.default_rng(seed)
    coarse = Image.fromarray(rng.integers(0, 256, (12, 16, 3), dtype=np.uint8)).resize(size, Image.Resampling.BICUBIC)
    arr = np.asarray(coarse).copy()
    arr[:: max(size[1] // 7, 1)] = 255  # thin bright lines: where resampling order shows
    return Image.fromarray(arr)


def encoded(size: tuple[int, int], fmt: str) -> bytes:
    width, height = (min(side, MAX_SIDE.get(fmt, side)) for side in size)
    image = Image.new("RGB", (width, height), (200, 30, 30))
    buf = io.BytesIO()
    image.save(buf, fmt)
    return buf.getvalue()


def status_mb(field: str) -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    raise KeyError(field)


@contextmanager
def peak_rise() -> Iterator[list[float]]:
    """Yields a list that gets the rise of peak RSS (MB) over the block, once it has run. The C heap's
    free pages are handed back first, so that reusing them does not hide what the block needs."""
    with suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    try:
        Path("/proc/self/clear_refs").write_text("5")  # resets VmHWM to the current RSS
    except OSError:
        pytest.skip("peak RSS cannot be reset here (needs Linux /proc/self/clear_refs)")
    base, rise = status_mb("VmRSS"), []
    yield rise
    rise.append(status_mb("VmHWM") - base)


@contextmanager
def resized_sizes(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[tuple[int, int]]]:
    """Records the size of every image ``Image.resize`` makes inside the block."""
    sizes: list[tuple[int, int]] = []
    real: Callable[..., Image.Image] = Image.Image.resize

    def recording(self: Image.Image, *args: Any, **kwargs: Any) -> Image.Image:
        out = real(self, *args, **kwargs)
        sizes.append(out.size)
        return out

    with monkeypatch.context() as m:
        m.setattr(Image.Image, "resize", recording)
        yield sizes


@pytest.mark.parametrize("name", ["default", *OTHERS])
@pytest.mark.parametrize("size", [(500, 333), (333, 500), (256, 256), (1000, 700), (120, 90), (257, 1999)])
def test_ordinary_images_prepare_as_timm_does(name: str, size: tuple[int, int]) -> None:
    """The same tensor as timm's own transform but for rounding in a few pixels (the model test
    checks the vectors on the sample set)."""
    bounded = BoundedTransform.from_config(DEFAULT if name == "default" else OTHERS[name])
    assert bounded.bounded
    image = scene(size)
    ours, timms = bounded(image), bounded.transform(image).numpy()  # timm's is a torch tensor
    assert ours.shape == timms.shape
    diff = np.abs(ours - timms)
    assert float(diff.max()) <= 0.05, float(diff.max())  # 2 levels of 255, over the std
    assert float(diff.mean()) <= 1e-3, float(diff.mean())


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("size", ISSUE_SHAPES)
def test_the_issues_images_are_refused_in_every_format(
    transform: BoundedTransform, fmt: str, size: tuple[int, int]
) -> None:
    data = encoded(size, fmt)
    with peak_rise() as rise, pytest.raises(ImageTooThin) as info:
        transform(decode_image(data, min_side=512))
    assert rise[0] < PER_IMAGE_MB, rise
    reason = str(info.value)
    assert "too thin to search with" in reason and f"at least {MIN_CROP_PIXELS}x{MIN_CROP_PIXELS}" in reason
    assert "\n" not in reason and isinstance(info.value, BadImage)  # a dead letter's, the API's and the CLI's line


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("size", THIN_BUT_ACCEPTED)
def test_thin_images_over_the_rule_prepare_in_bounded_memory(
    transform: BoundedTransform, monkeypatch: pytest.MonkeyPatch, fmt: str, size: tuple[int, int]
) -> None:
    image = decode_image(encoded(size, fmt), min_side=512)
    with peak_rise() as rise, resized_sizes(monkeypatch) as sizes:
        prepared = transform(image)
    assert tuple(prepared.shape) == (3, 224, 224)
    assert rise[0] < PER_IMAGE_MB, rise
    assert max(w * h for w, h in sizes) <= 224 * 224  # no intermediate larger than the model's input


@pytest.mark.parametrize("size", [(4032, 3024), (3024, 4032), (9000, 300), (300, 9000)])
def test_intermediates_never_exceed_the_crop_width_times_the_shorter_side(
    transform: BoundedTransform, monkeypatch: pytest.MonkeyPatch, size: tuple[int, int]
) -> None:
    """A large undrafted image (PNG, TIFF): the horizontal pass holds 224 columns of the rows the crop
    spans, under the shorter side; timm's way held 256 x the longer side, or the whole resize."""
    with resized_sizes(monkeypatch) as sizes:
        transform(Image.new("RGB", size, (10, 200, 30)))
    assert max(w * h for w, h in sizes) <= 224 * (min(size) + 16), sizes


@pytest.mark.parametrize("size", [(1, 1), (9, 9), (20000, 9), (9, 20000)])
def test_crops_of_a_few_pixels_are_refused_and_ten_pixels_pass(
    transform: BoundedTransform, size: tuple[int, int]
) -> None:
    with pytest.raises(ImageTooThin, match=f"image is {size[0]}x{size[1]}: too thin"):
        transform(Image.new("RGB", size))
    assert tuple(transform(Image.new("RGB", (10, 10))).shape) == (3, 224, 224)


def worst_cases() -> list[Image.Image]:
    """Decoded images at the edges of what the header checks and the rule let through."""
    shapes = [((65535, 10), "PNG"), ((10, 65535), "PNG"), ((16383, 10), "WEBP"), ((65535, 10), "GIF"),
              ((10, 65535), "TIFF"), ((65500, 10), "JPEG"), ((4000, 3000), "PNG")]  # fmt: skip
    decoded = [decode_image(encoded(size, fmt), min_side=512) for size, fmt in shapes]
    return [decoded[i % len(decoded)] for i in range(32)]


def test_a_batch_of_32_worst_case_images_prepares_under_the_stated_peak(transform: BoundedTransform) -> None:
    """Before, each one of these alone resized to up to 1,677,696x256 (1.7 GB) before its crop."""
    images = worst_cases()
    transform(images[0])  # first-call allocations are not the batch's
    with peak_rise() as rise:
        batch = [transform(image) for image in images]
    assert len(batch) == 32 and all(tuple(p.shape) == (3, 224, 224) for p in batch)
    assert rise[0] < BATCH_MB, f"peak RSS rose {rise[0]:.1f} MB preparing 32 worst-case images"
