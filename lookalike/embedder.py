"""Image embedders: one interface (``load``, ``prepare``, ``embed``), one class that picks the engine.

Two engines give the same vectors (``LOOKALIKE_RUNTIME``):

* ``onnx`` (``lookalike.onnx_engine``): the exported model in ONNX Runtime, images prepared with
  PIL and numpy. It imports no torch, timm, torchvision or towhee: the serving install has none.
* ``torch`` (``lookalike.torch_engine``): the timm model in torch, through towhee; for GPUs, and
  what builds the export (``lookalike.runtime``).

``auto`` serves with ONNX Runtime unless torch can use a GPU here. The export comes from
``LOOKALIKE_MODEL_CACHE`` (``lookalike.exported``); where there is none yet and torch is installed,
the first load makes it; where torch is missing, loading fails with the command that makes it.

Vectors are L2-normalised float32, so inner product is cosine similarity. An ``open_clip:<arch>``
model also embeds text into the same space (``embed_texts``: search by words, issue 24).
"""

from __future__ import annotations

import importlib.util
import logging
import os
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol

import numpy as np
from PIL import Image

from lookalike.errors import NoTextTower
from lookalike.exported import (
    EXPORT_COMMAND,
    Exported,
    ExportMissing,
    ModelLoadError,
    file_tag,
    read_export,
    weights_tag,
)
from lookalike.preprocess import DRAFT_MARGIN, BoundedTransform, resize_size
from lookalike.rows import ModelTag
from lookalike.settings import Settings
from lookalike.text_search import images_only
from lookalike.text_tower import TextTower

__all__ = ["DRAFT_MARGIN", "Embedder", "ModelLoadError", "TimmEmbedder", "file_tag", "resize_size", "weights_tag"]

log = logging.getLogger(__name__)
NVIDIA_DRIVER = Path("/proc/driver/nvidia/version")  # present where an NVIDIA GPU driver is loaded


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


def torch_installed() -> bool:
    """Whether torch and timm can be imported here (asked without importing them: 500 MB)."""
    return all(importlib.util.find_spec(name) is not None for name in ("torch", "timm"))


def wants_torch(settings: Settings) -> bool:
    """``auto``: torch where it is installed and may use a GPU (a CUDA device set, or ``auto`` with
    an NVIDIA driver loaded; ``torch.cuda`` then decides); ONNX Runtime on the CPU otherwise."""
    if settings.runtime != "auto":
        return settings.runtime == "torch"
    gpu = settings.device.startswith("cuda") or (settings.device == "auto" and NVIDIA_DRIVER.exists())
    return gpu and torch_installed()


def find_export(settings: Settings) -> Exported:
    """The export to serve, made now if torch is here to make it. Raises ``ModelLoadError``."""
    try:
        return read_export(settings.model_cache, settings.model, weights_tag(settings))
    except ExportMissing:
        if not torch_installed():
            raise
    from lookalike.runtime import export_model

    log.info("no exported %s yet: exporting it (once; `%s` does it ahead)", settings.model, EXPORT_COMMAND)
    return export_model(settings)


class TimmEmbedder:
    """A timm backbone (classifier removed, global pooled features), served by the engine
    ``LOOKALIKE_RUNTIME`` picks; the name stays for every caller that builds one from settings."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.model_name = settings.model
        self.tag = ModelTag(model=settings.model, weights="", dim=0)
        self._engine: Any = None
        self._lock = threading.Lock()

    def load(self) -> None:
        with self._lock:
            if self._engine is None:
                self._engine = self._open()
                self.tag = self._engine.tag
        log.info(
            "model %s loaded (%s, dim %d, runtime %s)", self.model_name, self.tag.weights, self.tag.dim, self.runtime
        )

    def _open(self) -> Any:
        threads = self.settings.threads or os.cpu_count() or 1
        if not wants_torch(self.settings):
            try:
                exported = find_export(self.settings)
            except ModelLoadError:
                raise
            except Exception as exc:  # the exporter and ONNX Runtime raise many types
                if self.settings.runtime == "onnx":
                    raise ModelLoadError(f"cannot export {self.model_name}: {type(exc).__name__}: {exc}") from exc
                log.warning("cannot export %s (%s: %s); serving with torch", self.model_name, type(exc).__name__, exc)
                return self._torch(threads)
            if not (exported.differs and self.settings.runtime == "auto"):
                from lookalike.onnx_engine import OnnxEngine

                return OnnxEngine(exported, threads, self.settings.draft_decode, self.settings.infer_batch)
            if not torch_installed():
                raise ModelLoadError(
                    f"{exported.path} gives other vectors than torch (cosine distance {exported.distance:.1e}); "
                    "install torch to serve with it, or set LOOKALIKE_RUNTIME=onnx to serve these (tagged +onnx)"
                )
            log.warning("the export of %s differs from torch (%.1e): serving torch", self.model_name, exported.distance)
        return self._torch(threads)

    def _torch(self, threads: int) -> Any:
        if not torch_installed():
            raise ModelLoadError("the torch runtime needs torch and timm: pip install '.[model]' (or use onnx)")
        from lookalike.torch_engine import TorchEngine

        return TorchEngine(self.settings, threads)

    @property
    def decode_size(self) -> int | None:
        return self._engine.decode_size if self._engine is not None else None

    @property
    def transform(self) -> BoundedTransform:
        """The engine's preprocessing (``lookalike.preprocess``)."""
        assert self._engine is not None, "load() first"
        return self._engine.transform

    def prepare(self, image: Image.Image) -> Any:
        """The model's input for one image, in work and memory bounded by the model's input size
        (``lookalike.preprocess``). Raises ``ImageTooThin`` (a ``BadImage``) for a crop of a few pixels."""
        assert self._engine is not None, "load() first"
        return self._engine.prepare(image)

    def embed_prepared(self, batch: Sequence[Any]) -> np.ndarray:
        assert self._engine is not None, "load() first"
        if not batch:
            return np.zeros((0, self.tag.dim), dtype=np.float32)
        return np.asarray(self._engine.embed_prepared(batch), dtype=np.float32)

    def embed(self, images: Sequence[Image.Image]) -> np.ndarray:
        return self.embed_prepared([self.prepare(im) for im in images])

    @property
    def has_text(self) -> bool:
        """Whether the model embeds text into its image space (an ``open_clip:<arch>`` model, loaded)."""
        return self._engine is not None and bool(self._engine.has_text)

    def _text(self) -> TextTower:
        assert self._engine is not None, "load() first"
        tower: TextTower | None = self._engine.text
        if tower is None:
            raise NoTextTower(images_only(self.model_name))
        return tower

    def check_text(self, text: str) -> None:
        """``BadText`` for text the text tower cannot read whole; ``NoTextTower`` for an image model."""
        self._text().check(text)

    def embed_texts(self, texts: Sequence[str]) -> np.ndarray:
        """(n, dim) unit vectors for ``texts``, in the space ``embed`` puts images in."""
        return self._text().embed(texts)

    @property
    def runtime(self) -> str:
        """The engine that runs the forward pass: ``torch`` or ``onnx``."""
        return str(self._engine.name) if self._engine is not None else "none"

    @property
    def runner(self) -> Any:
        """The forward pass alone (float32 batch in, raw features out), for model-only timing."""
        assert self._engine is not None, "load() first"
        return self._engine.runner
