"""The torch engine: a timm backbone driven through towhee, for GPUs and for building exports.

An ``open_clip:<arch>`` model (``lookalike.clip_engine``) runs here the same way: its image tower
in the backbone's place, and its text tower beside it (``text``) for search by words.

The model call runs inside a towhee pipeline (``pipe.input -> map -> output``) built from our own
functions: towhee's hub operators download at run time and cannot work offline. Towhee stays behind
this module; nothing else imports it. Images are prepared as on the ONNX path
(``lookalike.preprocess``), so both engines see the same input. ``LOOKALIKE_RUNTIME=torch`` serves
with it; ``lookalike.runtime`` exports it to ONNX.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from lookalike.exported import ModelLoadError, weights_tag
from lookalike.families import OPEN_CLIP, family
from lookalike.preprocess import BoundedTransform, decode_size
from lookalike.rows import ModelTag
from lookalike.settings import Settings
from lookalike.text_tower import TextTower
from lookalike.weights import missing_weights

log = logging.getLogger(__name__)


class TorchRunner:
    """The model in torch, channels-last (oneDNN/cuDNN pick their fast kernels for that layout): a
    float32 batch ``(n, 3, h, w)`` (numpy or a CPU tensor) in, raw features ``(n, dim)`` out."""

    name = "torch"

    def __init__(self, model: Any, device: str, half: bool) -> None:
        self.model, self.device, self.half = model, device, half

    def tensor(self, batch: Any) -> Any:
        """The raw features as a CPU float tensor."""
        import torch

        x = torch.from_numpy(np.ascontiguousarray(batch)) if isinstance(batch, np.ndarray) else batch
        x = x.to(self.device).contiguous(memory_format=torch.channels_last)
        if self.half:
            x = x.half()
        with torch.inference_mode():
            return self.model(x).float().cpu()

    def __call__(self, batch: Any) -> np.ndarray:
        return np.asarray(self.tensor(batch).numpy())


def create_model(settings: Settings) -> Any:
    """The timm backbone without its classifier, from a checkpoint, timm's hub or seeded random."""
    import timm
    import torch

    name = settings.model
    if settings.weights is None and settings.pretrained:
        missing = missing_weights(name)  # offline: fail now, not after a minute of retries
        if missing is not None:
            raise ModelLoadError(missing)
    hint = "" if settings.weights else " (offline? set LOOKALIKE_WEIGHTS to a local checkpoint)"
    try:
        if settings.weights is not None:
            overlay = {"file": str(Path(settings.weights).expanduser())}
            return timm.create_model(name, pretrained=True, num_classes=0, pretrained_cfg_overlay=overlay)
        if settings.pretrained:
            return timm.create_model(name, pretrained=True, num_classes=0)
        torch.manual_seed(0)  # the same random model in every process
        return timm.create_model(name, pretrained=False, num_classes=0)
    except RuntimeError as exc:
        if "Unknown model" in str(exc) or "Unknown model" in repr(exc):
            raise ModelLoadError(f"timm has no model named {name!r}") from exc
        raise ModelLoadError(f"could not load {name}: {exc}") from exc
    except (OSError, ValueError) as exc:
        raise ModelLoadError(f"could not load weights for {name}: {exc}{hint}") from exc
    except Exception as exc:  # hub/network errors come in many library-specific types
        raise ModelLoadError(f"could not load {name}: {type(exc).__name__}: {exc}{hint}") from exc


class TorchEngine:
    """A loaded timm model: ``prepare`` per image (thread-safe), ``embed_prepared`` per batch."""

    name = "torch"

    def __init__(self, settings: Settings, threads: int) -> None:
        import torch
        from timm.data import resolve_data_config

        torch.set_num_threads(threads)
        device = settings.device
        if device == "auto":
            device = "cuda" if torch.cuda.is_available() else "cpu"
        self.device, half = device, device.startswith("cuda")
        weights = weights_tag(settings)
        self.text: TextTower | None = None
        self.text_model: Any = None
        self.vocab: Path | None = None  # the text tower's BPE vocabulary (the export copies it)
        if family(settings.model) == OPEN_CLIP:
            model, self.data_config, dim = self._clip(settings, device, half)
        else:
            model = create_model(settings)
            self.data_config = dict(resolve_data_config({}, model=model))
            # a model with a head after pooling (mobilenetv3's conv_head) outputs head_hidden_size, not num_features
            dim = int(getattr(model, "head_hidden_size", None) or model.num_features)
        # channels-last lets oneDNN (CPU) and cuDNN pick their fast convolution kernels: mobilenetv2
        # runs about twice as fast on 2 CPU cores with the same outputs
        model.eval().to(device).to(memory_format=torch.channels_last)
        if half:
            model.half()
        self.model = model
        self.transform = BoundedTransform.from_config(self.data_config)
        self.decode_size = decode_size(self.data_config, settings.draft_decode)
        self.runner = TorchRunner(model, device, half)
        self.tag = ModelTag(model=settings.model, weights=weights, dim=dim)
        self.step = settings.infer_batch or (0 if half or device != "cpu" else 8)
        self._lock = threading.Lock()
        self._pipeline: Any = None  # built at the first batch: an export never needs towhee

    def _clip(self, settings: Settings, device: str, half: bool) -> tuple[Any, dict[str, Any], int]:
        """An open_clip model: its image tower (returned, as timm's backbone is) and its text tower."""
        from lookalike.clip_engine import load_clip
        from lookalike.clip_tokenizer import ClipTokenizer

        parts = load_clip(settings)
        self.text_model = parts.text.to(device)
        if half:
            self.text_model.half()
        tokenizer = ClipTokenizer(parts.vocab, parts.context_length, settings.model)
        self.text = TextTower(tokenizer, self.text_forward, parts.dim)
        self.vocab = parts.vocab
        return parts.image, dict(parts.data_config), parts.dim

    @property
    def has_text(self) -> bool:
        return self.text is not None

    def text_forward(self, ids: np.ndarray) -> np.ndarray:
        """Token ids (n, context) int64 in, raw text features (n, dim) out."""
        import torch

        with torch.inference_mode():
            out = self.text_model(torch.from_numpy(np.ascontiguousarray(ids)).to(self.device))
        return np.asarray(out.float().cpu().numpy())

    def _build_pipeline(self) -> Any:
        import warnings

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            from towhee import pipe

        def forward(batch: list[Any]) -> np.ndarray:  # a plain function: towhee deep-copies its DAG
            return self._forward(batch)

        return pipe.input("batch").map("batch", "vectors", forward).output("vectors")

    def prepare(self, image: Image.Image) -> np.ndarray:
        return self.transform(image)

    def embed_prepared(self, batch: Sequence[Any]) -> np.ndarray:
        if not batch:
            return np.zeros((0, self.tag.dim), dtype=np.float32)
        with self._lock:  # one model call at a time: it already uses every core
            if self._pipeline is None:
                self._pipeline = self._build_pipeline()
            (vectors,) = self._pipeline(list(batch)).get()
        return np.asarray(vectors, dtype=np.float32)

    def _forward(self, batch: list[Any]) -> np.ndarray:
        import torch

        step = self.step or len(batch)
        out = []
        # on a CPU, activations of more than a few images spill out of the caches: 8 at a time
        # runs about twice as fast per image as 32 at once
        for i in range(0, len(batch), step):
            features = self.runner.tensor(np.stack(batch[i : i + step]))
            out.append(torch.nn.functional.normalize(features, dim=1))
        return torch.cat(out).numpy()
