"""The open_clip family in torch: both towers of ``open_clip:<arch>``, for the torch engine and the export.

A CLIP model embeds images and text into one space (issue 24). Its image tower takes the place a
timm backbone holds everywhere else: the same ``prepare`` (open_clip's eval transform, a shorter-side
bicubic resize and a centre crop, is timm's with ``crop_pct`` 1.0, so ``lookalike.preprocess`` runs
it without torch), the same batched forward pass, the same export. Its text tower is the second
graph the export writes, read through ``lookalike.clip_tokenizer`` with the vocabulary the export
carries, so a torch-free install searches by words as well.

Weights, as for timm: ``LOOKALIKE_WEIGHTS`` (a checkpoint file open_clip can load), else open_clip's
first pretrained tag for the architecture (downloaded by open_clip; online only), else a seeded
random model (``LOOKALIKE_PRETRAINED=false``: plumbing tests). This module imports torch and
open_clip when its functions run; nothing on the serving path imports it.
"""

from __future__ import annotations

import logging
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lookalike.exported import ModelLoadError
from lookalike.families import clip_arch
from lookalike.settings import Settings

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ClipParts:
    """One loaded CLIP model, split into what the engines run."""

    image: Any  # torch module: images (n, 3, h, w) -> raw features (n, dim)
    text: Any  # torch module: token ids (n, context) int64 -> raw features (n, dim)
    data_config: dict[str, Any]  # timm-style, for lookalike.preprocess
    dim: int
    context_length: int
    vocab: Path  # open_clip's BPE vocabulary (bpe_simple_vocab_16e6.txt.gz)
    pretrained_tag: str  # the open_clip tag the weights came from ("" for a file or random init)


def _towers() -> tuple[type, type]:
    """The two wrappers, as ``torch.nn.Module`` classes (built here: torch is imported late)."""
    import torch

    class ImageTower(torch.nn.Module):
        def __init__(self, model: Any) -> None:
            super().__init__()
            self.visual = model.visual

        def forward(self, images: Any) -> Any:
            return self.visual(images)

    class TextTower(torch.nn.Module):
        def __init__(self, model: Any) -> None:
            super().__init__()
            self.model = model

        def forward(self, ids: Any) -> Any:
            return self.model.encode_text(ids)

    return ImageTower, TextTower


def _create(arch: str, settings: Settings) -> tuple[Any, str]:
    """open_clip's model for ``arch`` and the pretrained tag used. Raises ``ModelLoadError``."""
    import open_clip
    import torch

    if arch not in open_clip.list_models():
        raise ModelLoadError(f"open_clip has no model config named {arch!r} (open_clip.list_models() lists them)")
    tag = ""
    try:
        if settings.weights is not None:
            source = str(Path(settings.weights).expanduser())
        elif settings.pretrained:
            tags = open_clip.list_pretrained_tags_by_model(arch)
            if not tags:
                raise ModelLoadError(f"open_clip has no pretrained weights for {arch}; set LOOKALIKE_WEIGHTS")
            source = tag = tags[0]
        else:
            torch.manual_seed(0)  # the same random model in every process
            source = None
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            model = open_clip.create_model(arch, pretrained=source, device="cpu")
    except ModelLoadError:
        raise
    except Exception as exc:  # checkpoint loading and hub downloads raise many library types
        hint = "" if settings.weights else " (offline? set LOOKALIKE_WEIGHTS to a local open_clip checkpoint)"
        raise ModelLoadError(f"could not load {settings.model}: {type(exc).__name__}: {exc}{hint}") from exc
    return model.eval(), tag


def data_config(model: Any) -> dict[str, Any]:
    """open_clip's eval preprocessing as a timm data config: a shorter-side resize to the input size
    and a centre crop of it (``crop_pct`` 1.0), with the model's mean, std and interpolation."""
    cfg = dict(getattr(model.visual, "preprocess_cfg", {}) or {})
    size = cfg.get("size", model.visual.image_size)
    height, width = (size, size) if isinstance(size, int) else size
    if cfg.get("resize_mode", "shortest") != "shortest":
        raise ModelLoadError(f"open_clip resize mode {cfg.get('resize_mode')!r} is not supported (only 'shortest')")
    return {
        "input_size": (3, int(height), int(width)),
        "interpolation": str(cfg.get("interpolation", "bicubic")),
        "mean": tuple(float(v) for v in cfg["mean"]),
        "std": tuple(float(v) for v in cfg["std"]),
        "crop_pct": 1.0,
        "crop_mode": "center",
    }


def load_clip(settings: Settings) -> ClipParts:
    """Both towers of ``settings.model`` (``open_clip:<arch>``), on the CPU, in eval mode."""
    from open_clip.tokenizer import default_bpe

    try:
        arch = clip_arch(settings.model)
    except ValueError as exc:
        raise ModelLoadError(str(exc)) from None
    model, tag = _create(arch, settings)
    image_tower, text_tower = _towers()
    dim = int(model.visual.output_dim)
    log.info("open_clip %s loaded (%s, dim %d)", arch, tag or settings.weights or "random init", dim)
    return ClipParts(
        image=image_tower(model).eval(),
        text=text_tower(model).eval(),
        data_config=data_config(model),
        dim=dim,
        context_length=int(model.context_length),
        vocab=Path(default_bpe()),
        pretrained_tag=tag,
    )
