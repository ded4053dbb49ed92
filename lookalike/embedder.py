"""Image embedders: one interface (``load``, ``prepare``, ``embed``), one timm implementation.

The model call runs inside a towhee pipeline (``pipe.input -> map -> output``) built from our own
functions: towhee's hub operators download at run time and cannot work offline. Towhee stays behind
this interface; nothing else imports it.

The forward pass runs in torch or, on a CPU where its vectors match torch's, in ONNX Runtime
(``LOOKALIKE_RUNTIME``, see ``lookalike.runtime``); the towhee pipeline and this interface are the
same either way.

Vectors are L2-normalised float32, so inner product is cosine similarity.
"""

from __future__ import annotations

import hashlib
import logging
import math
import os
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol

import numpy as np
from PIL import Image

from lookalike.errors import LookalikeError
from lookalike.preprocess import BoundedTransform
from lookalike.rows import ModelTag
from lookalike.runtime import Runner, TorchRunner, choose_runner
from lookalike.settings import Settings
from lookalike.weights import missing_weights

log = logging.getLogger(__name__)


class Embedder(Protocol):
    """What every stage needs from a model."""

    tag: ModelTag

    @property
    def decode_size(self) -> int | None:
        """The shorter side images must keep when decoded (``decode_image(min_side=...)``): twice the
        model's resize size before its centre crop. ``None``: decode at full size (before ``load``,
        or with draft decoding turned off)."""
        ...

    def load(self) -> None: ...

    def prepare(self, image: Image.Image) -> Any:
        """Per-image preprocessing (thread-safe; runs in the decode threads)."""
        ...

    def embed_prepared(self, batch: Sequence[Any]) -> np.ndarray:
        """One model call for the whole batch; returns (n, dim) unit vectors."""
        ...

    def embed(self, images: Sequence[Image.Image]) -> np.ndarray: ...


class ModelLoadError(LookalikeError):
    """The model or its weights could not be loaded."""


def weights_tag(settings: Settings) -> str:
    """Names where the weights came from, so the index can refuse vectors of other weights."""
    if settings.weights is not None:
        path = Path(settings.weights).expanduser()
        if not path.is_file():
            raise ModelLoadError(f"LOOKALIKE_WEIGHTS={path} is not a file")
        return file_tag(path)
    return "timm-pretrained" if settings.pretrained else "random-init:seed0"


def file_tag(path: Path) -> str:
    """``file:<name>:<sha256[:12]>``: a checkpoint by name and content, so a copy elsewhere matches
    it and an edited file of the same name does not (``lookalike.targets`` finds files by it)."""
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return f"file:{path.name}:{digest.hexdigest()[:12]}"


DRAFT_MARGIN = 2  # JPEGs decode to at least this many times the model's resize size (see ``load``)


def resize_size(data_config: dict[str, Any]) -> int:
    """The side timm's eval transform resizes to before its centre crop (256 for a 224 crop at
    crop_pct 0.875). Decoding to at least this shorter side keeps that resize a pure downsample."""
    crop_pct = float(data_config.get("crop_pct") or 0.875)  # timm's DEFAULT_CROP_PCT
    return max(math.floor(side / crop_pct) for side in data_config["input_size"][-2:])


class TimmEmbedder:
    """A timm backbone (classifier removed, global pooled features) driven through towhee."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.model_name = settings.model
        self.tag = ModelTag(model=settings.model, weights="", dim=0)
        self._model: Any = None
        self._transform: Any = None
        self._pipeline: Any = None
        self._device = "cpu"
        self._half = False
        self._lock = threading.Lock()
        self._decode_size: int | None = None
        self._runner: Runner | None = None

    def load(self) -> None:
        if self._model is not None:
            return
        import torch
        from timm.data import resolve_data_config

        threads = self.settings.threads or os.cpu_count() or 1
        torch.set_num_threads(threads)
        device = self.settings.device
        if device == "auto":
            device = "cuda" if torch.cuda.is_available() else "cpu"
        self._device = device
        self._half = device.startswith("cuda")
        tag = weights_tag(self.settings)
        model = self._create_model()
        # channels-last lets oneDNN (CPU) and cuDNN pick their fast convolution kernels: mobilenetv2
        # runs about twice as fast on 2 CPU cores with the same outputs
        model.eval().to(device).to(memory_format=torch.channels_last)
        if self._half:
            model.half()
        config = resolve_data_config({}, model=model)
        # timm's resize-then-crop, done on the crop alone: a 20000x1 PNG must not become 5,120,000x256 first
        self._transform = BoundedTransform.from_config(config)
        # twice the resize size: at 1x (a 12 MP photo decoded at 1/8), hit@1 on the 12 MP eval set
        # fell 0.02 below full decoding; at 2x (1/4) every measure stays within 0.005 of it
        self._decode_size = DRAFT_MARGIN * resize_size(config) if self.settings.draft_decode else None
        choice = choose_runner(
            self.settings.runtime,
            model_name=self.model_name,
            model=model,
            torch_runner=TorchRunner(model, device, self._half),
            input_size=tuple(config["input_size"]),
            cache_dir=self.settings.model_cache,
            threads=threads,
        )
        self._runner = choice.runner
        self._model = model
        if choice.differs:  # other vectors than torch's: never mix them into a torch-made collection
            tag = f"{tag}+{choice.runner.name}"
        # a model with a head after pooling (mobilenetv3's conv_head) outputs head_hidden_size, not num_features
        dim = int(getattr(model, "head_hidden_size", None) or model.num_features)
        self.tag = ModelTag(model=self.model_name, weights=tag, dim=dim)
        self._pipeline = self._build_pipeline()
        log.info(
            "model %s loaded on %s (%s, dim %d, %d threads, runtime %s)",
            self.model_name, device, tag, self.tag.dim, threads, self._runner.name,
        )  # fmt: skip

    def _create_model(self) -> Any:
        """The timm backbone without its classifier, from a checkpoint, timm's hub or seeded random."""
        import timm
        import torch

        if self.settings.weights is None and self.settings.pretrained:
            missing = missing_weights(self.model_name)  # offline: fail now, not after a minute of retries
            if missing is not None:
                raise ModelLoadError(missing)
        try:
            if self.settings.weights is not None:
                return timm.create_model(
                    self.model_name,
                    pretrained=True,
                    num_classes=0,
                    pretrained_cfg_overlay={"file": str(Path(self.settings.weights).expanduser())},
                )
            elif self.settings.pretrained:
                return timm.create_model(self.model_name, pretrained=True, num_classes=0)
            else:
                torch.manual_seed(0)  # the same random model in every process
                return timm.create_model(self.model_name, pretrained=False, num_classes=0)
        except RuntimeError as exc:
            if "Unknown model" in str(exc) or "Unknown model" in repr(exc):
                raise ModelLoadError(f"timm has no model named {self.model_name!r}") from exc
            raise ModelLoadError(f"could not load {self.model_name}: {exc}") from exc
        except (OSError, ValueError) as exc:
            hint = "" if self.settings.weights else " (offline? set LOOKALIKE_WEIGHTS to a local checkpoint)"
            raise ModelLoadError(f"could not load weights for {self.model_name}: {exc}{hint}") from exc
        except Exception as exc:  # hub/network errors come in many library-specific types
            hint = "" if self.settings.weights else " (offline? set LOOKALIKE_WEIGHTS to a local checkpoint)"
            raise ModelLoadError(f"could not load {self.model_name}: {type(exc).__name__}: {exc}{hint}") from exc

    @property
    def decode_size(self) -> int | None:
        return self._decode_size

    def _build_pipeline(self) -> Any:
        import warnings

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            from towhee import pipe

        def forward(batch: list[Any]) -> np.ndarray:  # a plain function: towhee deep-copies its DAG
            return self._forward(batch)

        return pipe.input("batch").map("batch", "vectors", forward).output("vectors")

    def prepare(self, image: Image.Image) -> Any:
        """The model's input for one image, in work and memory bounded by the model's input size
        (``lookalike.preprocess``). Raises ``ImageTooThin`` (a ``BadImage``) for a crop of a few pixels."""
        assert self._transform is not None, "load() first"
        return self._transform(image)

    def embed_prepared(self, batch: Sequence[Any]) -> np.ndarray:
        if not batch:
            return np.zeros((0, self.tag.dim), dtype=np.float32)
        with self._lock:  # one model call at a time: it already uses every core
            (vectors,) = self._pipeline(list(batch)).get()
        return np.asarray(vectors, dtype=np.float32)

    def embed(self, images: Sequence[Image.Image]) -> np.ndarray:
        return self.embed_prepared([self.prepare(im) for im in images])

    @property
    def runtime(self) -> str:
        """The engine that runs the forward pass: ``torch`` or ``onnx`` (see ``lookalike.runtime``)."""
        return self._runner.name if self._runner is not None else "none"

    @property
    def runner(self) -> Runner:
        """The forward pass alone (CPU tensor batch in, raw features out), for model-only timing."""
        assert self._runner is not None, "load() first"
        return self._runner

    def _forward(self, batch: list[Any]) -> np.ndarray:
        import torch

        assert self._runner is not None, "load() first"
        step = self.settings.infer_batch or (len(batch) if self._device != "cpu" else 8)
        out = []
        with torch.inference_mode():
            # on a CPU, activations of more than a few images spill out of the caches: 8 at a time
            # runs about twice as fast per image as 32 at once
            for i in range(0, len(batch), step):
                features = self._runner(torch.stack(batch[i : i + step]))
                out.append(torch.nn.functional.normalize(features, dim=1))
        return torch.cat(out).numpy()
