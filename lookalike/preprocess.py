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

The transform is read from the model's data config (resize rule, crop, filter, mean and std, as
timm's ``transforms_imagenet_eval`` builds them) and ends in numpy, so serving needs neither torch
nor torchvision nor timm (``tests/model`` checks it against timm's own transform).

An image whose crop would cover fewer than ``MIN_CROP_PIXELS`` source pixels on a side is refused
(``ImageTooThin``): the model would see one or two pixels stretched over its whole input, a flat colour
that is near every other flat image. ``docs/images.md`` states the rule.
"""

from __future__ import annotations

import functools
import logging
import math
from dataclasses import dataclass
from typing import Any

import numpy as np
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


DRAFT_MARGIN = 2  # JPEGs decode to at least this many times the model's resize size (``decode_size``)


def resize_size(data_config: dict[str, Any]) -> int:
    """The side timm's eval transform resizes to before its centre crop (256 for a 224 crop at
    crop_pct 0.875). Decoding to at least this shorter side keeps that resize a pure downsample."""
    crop_pct = float(data_config.get("crop_pct") or DEFAULT_CROP_PCT)
    return max(math.floor(side / crop_pct) for side in data_config["input_size"][-2:])


def decode_size(data_config: dict[str, Any], draft_decode: bool) -> int | None:
    """The shorter side images are decoded to for this model (``decode_image(min_side=...)``).

    Twice the resize size: at 1x (a 12 MP photo decoded at 1/8), hit@1 on the 12 MP eval set fell
    0.02 below full decoding; at 2x (1/4) every measure stays within 0.005 of it."""
    return DRAFT_MARGIN * resize_size(data_config) if draft_decode else None


INTERPOLATIONS = {  # timm's names for PIL's filters (``timm.data.transforms.str_to_interp_mode``)
    "nearest": Image.Resampling.NEAREST,
    "bilinear": Image.Resampling.BILINEAR,
    "bicubic": Image.Resampling.BICUBIC,
    "box": Image.Resampling.BOX,
    "hamming": Image.Resampling.HAMMING,
    "lanczos": Image.Resampling.LANCZOS,
}
DEFAULT_CROP_PCT = 0.875  # timm's, when a data config leaves crop_pct out


@dataclass(frozen=True)
class Spec:
    """What timm's eval transform does for one data config, in plain numbers.

    ``resize``: ``shorter`` (torchvision's ``Resize(int)``: shorter side to ``scale[0]``), ``squash``
    (``Resize((h, w))``) or ``keep-ratio`` (timm's ``ResizeKeepRatio``, shorter side fitted);
    ``scale`` and ``crop`` are (height, width), as timm counts; ``mean``/``std`` normalise per channel."""

    resize: str
    scale: tuple[int, int]
    crop: tuple[int, int]
    interpolation: str
    mean: tuple[float, float, float]
    std: tuple[float, float, float]

    @property
    def resample(self) -> int:
        return int(INTERPOLATIONS[self.interpolation])


def spec_from_config(config: dict[str, Any]) -> Spec | None:
    """The ``Spec`` of ``timm.data.create_transform(**config)`` (``transforms_imagenet_eval``), or
    ``None`` for a transform we do not reproduce (crop mode ``border``, trimmed borders, an unknown or
    random interpolation)."""
    crop_mode = config.get("crop_mode") or "center"
    interpolation = str(config.get("interpolation") or "bilinear")
    if crop_mode not in ("center", "squash") or config.get("crop_border_pixels") or interpolation not in INTERPOLATIONS:
        return None
    crop_h, crop_w = (int(v) for v in config["input_size"][-2:])
    crop_pct = float(config.get("crop_pct") or DEFAULT_CROP_PCT)
    scale = (math.floor(crop_h / crop_pct), math.floor(crop_w / crop_pct))
    resize = "squash" if crop_mode == "squash" else "shorter" if scale[0] == scale[1] else "keep-ratio"
    mean = tuple(float(v) for v in config["mean"])
    std = tuple(float(v) for v in config["std"])
    return Spec(resize, scale, (crop_h, crop_w), interpolation, mean, std)  # type: ignore[arg-type]


def resized_size(spec: Spec, image_size: Size) -> Size:
    """The (width, height) the spec's resize gives an image of ``image_size``, computed without
    resizing anything: torchvision's shorter-side rule (the longer side truncated, as it does), a
    squash to both sides, or timm's ``ResizeKeepRatio.get_params`` (rounded, shorter side fitted)."""
    width, height = image_size
    if spec.resize == "squash":
        return spec.scale[1], spec.scale[0]
    if spec.resize == "keep-ratio":
        ratio = min(height / spec.scale[0], width / spec.scale[1])
        return round(width / ratio), round(height / ratio)
    short, long = (width, height) if width <= height else (height, width)
    new_short, new_long = spec.scale[0], int(spec.scale[0] * long / short)
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
    """timm's eval transform, with its resize and centre crop done as one bounded crop-and-resample,
    and ``ToTensor`` + ``Normalize`` done in numpy: a float32 (3, h, w) array, with no torch.

    Built from a data config alone (``from_config``). A transform of another shape (crop mode
    ``border``, trimmed borders) is not reproduced: ``bounded`` is False, and only the torch
    runtime, which can run timm's own transform (``transform``), serves such a model."""

    def __init__(self, config: dict[str, Any]) -> None:
        self.config = dict(config)
        self.spec = spec_from_config(config)
        self.bounded = self.spec is not None
        if self.spec is not None:
            self._mean = np.asarray(self.spec.mean, dtype=np.float32)
            self._std = np.asarray(self.spec.std, dtype=np.float32)

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> BoundedTransform:
        """The transform for a data config (``resolve_data_config``); it needs no model and no torch."""
        bounded = cls(config)
        if not bounded.bounded:
            log.warning("preprocessing for data config %s runs as timm builds it, not bounded", config)
        return bounded

    @functools.cached_property
    def transform(self) -> Any:
        """timm's own eval transform for the config (imports torch and timm): the reference the
        tests compare with, and what the torch runtime runs where ``bounded`` is False."""
        from timm.data import create_transform

        return create_transform(**self.config)

    def plan(self, image: Image.Image) -> Crop | None:
        """The crop the model would see of ``image``; ``None`` where the transform runs as timm's."""
        if self.spec is None:
            return None
        return centre_crop(image.size, resized_size(self.spec, image.size), (self.spec.crop[1], self.spec.crop[0]))

    def __call__(self, image: Image.Image) -> np.ndarray:
        """The model's input for ``image``: float32 (3, h, w). Raises ``ImageTooThin``."""
        crop = self.plan(image)
        if crop is None or self.spec is None:
            return np.asarray(self.transform(image).numpy(), dtype=np.float32)
        if crop.span < MIN_CROP_PIXELS:
            width, height = image.size
            raise ImageTooThin(
                f"image is {width}x{height}: too thin to search with: the model's centre crop would cover "
                f"{crop.box[2] - crop.box[0]:.1f}x{crop.box[3] - crop.box[1]:.1f} of its pixels "
                f"(at least {MIN_CROP_PIXELS}x{MIN_CROP_PIXELS} needed)"
            )
        pixels = np.asarray(resample_crop(image, crop, self.spec.resample), dtype=np.float32)
        # torchvision's to_tensor (x / 255) and Normalize ((x - mean) / std), in float32 as it computes them
        pixels = (pixels / np.float32(255.0) - self._mean) / self._std
        return np.ascontiguousarray(pixels.transpose(2, 0, 1))
