"""Bounded preprocessing: timm's eval transform, computed only on the part of the image the model sees.

timm's eval transform resizes the shorter side to ``input / crop_pct`` (256 for a 224 model) and then
cuts the centre crop the model takes. Done literally, a 143-byte 20000x1 PNG becomes a 5,120,000x256
image (5 GB, 17 s) before the crop throws 99.99 % of it away, and the worker is OOM-killed, which no
exception handler can contain. Here the crop is computed first, as a box in the source image's own
pixels, and only that box is resampled: a horizontal pass over the rows the crop needs, then a
vertical pass, the order Pillow uses for the whole image, with the same filter and scale, so normal
images give the same vectors (cosine >= 0.9999, ``tests/model``). No intermediate is larger than the
model's input width times the rows the crop spans (under the shorter side): the work and memory follow
the model's input size, not the image's shape.

An image whose crop would cover fewer than ``MIN_CROP_PIXELS`` source pixels on a side is refused
(``ImageTooThin``): the model would see one or two pixels stretched over its whole input, a flat colour
that is near every other flat image. ``docs/images.md`` states the rule.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from typing import Any

from PIL import Image

from lookalike.imaging import BadImage

log = logging.getLogger(__name__)

MIN_CROP_PIXELS = 8  # the crop must cover at least this many source pixels across, both ways
FILTER_REACH = 3  # source pixels a resampling filter reaches at scale 1 (Lanczos: 3, bicubic: 2)

Size = tuple[int, int]  # (width, height), as PIL counts
Box = tuple[float, float, float, float]  # (left, top, right, bottom) in source pixels


class ImageTooThin(BadImage):
    """The model's centre crop would cover too few of the image's pixels to mean anything."""


@dataclass(frozen=True)
class Crop:
    """What resize-then-centre-crop keeps of one image: ``box`` in the source's pixels, which
    becomes an image of ``size`` (the model's input)."""

    box: Box
    size: Size

    @property
    def span(self) -> float:
        """The crop's narrower side, in source pixels: what the model's whole input is made from."""
        return min(self.box[2] - self.box[0], self.box[3] - self.box[1])


def modelled(step: Any) -> bool:
    """Whether ``resized_size`` knows what this resize step does: torchvision's ``Resize`` (no
    ``max_size``) and timm's ``ResizeKeepRatio`` without randomness, with one interpolation."""
    from timm.data.transforms import ResizeKeepRatio
    from torchvision import transforms

    if not isinstance(getattr(step, "interpolation", None), transforms.InterpolationMode):
        return False
    if isinstance(step, transforms.Resize):
        return step.max_size is None
    return isinstance(step, ResizeKeepRatio) and not step.random_scale_prob and not step.random_aspect_prob


def resized_size(step: Any, image: Image.Image) -> Size:
    """The size a ``modelled`` resize step gives ``image``, computed without resizing anything.

    ``Resize`` to one side follows torchvision's shorter-side rule (the longer side truncated, as it
    does); to two sides, it squashes; timm's ``ResizeKeepRatio`` says itself."""
    from timm.data.transforms import ResizeKeepRatio

    if isinstance(step, ResizeKeepRatio):
        new_h, new_w = ResizeKeepRatio.get_params(image, step.size, step.longest)
        return int(new_w), int(new_h)
    size = [step.size] if isinstance(step.size, int) else list(step.size)
    if len(size) == 2:
        return int(size[1]), int(size[0])
    width, height = image.size
    short, long = (width, height) if width <= height else (height, width)
    new_short, new_long = int(size[0]), int(int(size[0]) * long / short)
    return (new_short, new_long) if width <= height else (new_long, new_short)


def centre_crop(image_size: Size, resized: Size, crop: Size) -> Crop | None:
    """The box that ``CenterCrop(crop)`` after a resize to ``resized`` keeps, mapped back onto the
    source; ``None`` when the crop is larger than the resized image (torchvision would pad)."""
    (width, height), (new_w, new_h), (crop_w, crop_h) = image_size, resized, crop
    if crop_w > new_w or crop_h > new_h:
        return None
    left = round((new_w - crop_w) / 2.0)  # torchvision's rounding (half to even)
    top = round((new_h - crop_h) / 2.0)
    sx, sy = width / new_w, height / new_h
    box = (left * sx, top * sy, min((left + crop_w) * sx, width), min((top + crop_h) * sy, height))
    return Crop(box, crop)


def resample_crop(image: Image.Image, crop: Crop, resample: int) -> Image.Image:
    """``crop.box`` of ``image`` resampled to ``crop.size``, in two one-axis passes.

    First the horizontal pass, over only the rows the vertical pass will read (whole source rows at
    scale 1, so Pillow's vertical step there is an exact copy, whichever order it picks); then the
    vertical pass. One ``resize(box=...)`` call would let Pillow run the vertical pass first, and its
    rounding between passes then moves the vectors (cosine 0.9998 on the sample set)."""
    x0, y0, x1, y1 = crop.box
    out_w, out_h = crop.size
    reach = FILTER_REACH * max((y1 - y0) / out_h, 1.0) + 2
    first = max(0, math.floor(y0 - reach))
    last = min(image.height, math.ceil(y1 + reach))
    rows = image.resize((out_w, last - first), resample, box=(x0, first, x1, last))
    return rows.resize((out_w, out_h), resample, box=(0, y0 - first, out_w, y1 - first))


class BoundedTransform:
    """timm's eval transform, with its resize and centre crop done as one bounded crop-and-resample.

    Built from the ``Compose`` that ``timm.data.create_transform`` returns. A transform of another
    shape (crop modes ``border``, trimmed borders, random interpolation) is run as it is: its resize
    already scales the longer side, or it is not one we can reproduce; ``bounded`` says which."""

    def __init__(self, transform: Any) -> None:
        from torchvision import transforms

        self.transform = transform
        steps = list(getattr(transform, "transforms", []))
        self.bounded = len(steps) >= 2 and modelled(steps[0]) and isinstance(steps[1], transforms.CenterCrop)
        self._resize = steps[0] if self.bounded else None
        self._crop: Size = (int(steps[1].size[1]), int(steps[1].size[0])) if self.bounded else (0, 0)
        self._tail = transforms.Compose(steps[2:]) if self.bounded else None

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> BoundedTransform:
        """The eval transform timm builds for a data config (``resolve_data_config``), bounded. It
        needs no model: the unit tests build one from a config alone."""
        from timm.data import create_transform

        bounded = cls(create_transform(**config))
        if not bounded.bounded:
            log.warning("preprocessing for data config %s runs as timm builds it, not bounded", config)
        return bounded

    def plan(self, image: Image.Image) -> Crop | None:
        """The crop the model would see of ``image``; ``None`` where the transform runs as it is."""
        if self._resize is None:
            return None
        return centre_crop(image.size, resized_size(self._resize, image), self._crop)

    def __call__(self, image: Image.Image) -> Any:
        """The model's input tensor for ``image``. Raises ``ImageTooThin``."""
        from torchvision.transforms.functional import pil_modes_mapping

        crop = self.plan(image)
        if crop is None or self._resize is None or self._tail is None:
            return self.transform(image)
        if crop.span < MIN_CROP_PIXELS:
            width, height = image.size
            raise ImageTooThin(
                f"image is {width}x{height}: too thin to search with: the model's centre crop would cover "
                f"{crop.box[2] - crop.box[0]:.1f}x{crop.box[3] - crop.box[1]:.1f} of its pixels "
                f"(at least {MIN_CROP_PIXELS}x{MIN_CROP_PIXELS} needed)"
            )
        resample = pil_modes_mapping[self._resize.interpolation]
        return self._tail(resample_crop(image, crop, resample))
