"""Building the serving model: the timm backbone in torch, exported to ONNX and checked against torch.

``lookalike model export`` runs ``export_model``, as does the first load of a model with no export
where torch is installed (``lookalike.embedder``). The exported graph is checked on a probe batch:
its largest cosine distance to torch's features is stored in the tag, and a graph beyond
``MAX_COSINE_DISTANCE`` is tagged ``+onnx`` where it serves, so its vectors never mix with torch's.
The export lands in ``LOOKALIKE_MODEL_CACHE`` beside its tag (``lookalike.exported``), which is all a
torch-free install needs to serve.

This module imports torch when its functions run; nothing on the serving path imports it.
"""

from __future__ import annotations

import logging
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from lookalike.exported import Exported, ExportMissing, read_export, weights_tag, write_export
from lookalike.families import OPEN_CLIP, family
from lookalike.settings import Settings

log = logging.getLogger(__name__)

OPSET = 17
PROBE_BATCH = 4


PROBE_TEXTS = ("a photo of a dog", "two red cars parked in the snow", "x", "a diagram, in blue & white ink!")


def export_onnx(model: Any, example: Any, path: Path, input_name: str = "images") -> None:
    """torch's TorchScript-based exporter (it needs no onnxscript), opset 17, any batch size."""
    import warnings

    import torch

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the legacy exporter announces its deprecation
        torch.onnx.export(
            model,
            (example,),
            str(path),
            opset_version=OPSET,
            input_names=[input_name],
            output_names=["features"],
            dynamic_axes={input_name: {0: "batch"}, "features": {0: "batch"}},
            dynamo=False,
        )


def export_text(engine: Any, path: Path) -> float:
    """Export a CLIP model's text tower to ``path``; its largest cosine distance to torch's features
    on the probe texts."""
    import torch

    from lookalike.onnx_engine import OnnxRunner

    ids = engine.text.tokenizer.tokens(PROBE_TEXTS)
    export_onnx(engine.text_model, torch.from_numpy(ids), path, input_name="ids")
    return cosine_distance(OnnxRunner(path, 1)(ids), engine.text_forward(ids))


def cosine_distance(a: np.ndarray, b: np.ndarray) -> float:
    """The largest ``1 - cos`` between matching rows of two feature batches."""
    a = a / np.maximum(np.linalg.norm(a, axis=1, keepdims=True), 1e-12)
    b = b / np.maximum(np.linalg.norm(b, axis=1, keepdims=True), 1e-12)
    return float(np.max(1.0 - np.sum(a * b, axis=1)))


def probe_batch(input_size: tuple[int, ...]) -> np.ndarray:
    """A fixed batch of image-like inputs (smooth noise in normalised units), the same everywhere."""
    import torch

    gen = torch.Generator().manual_seed(0)
    coarse = torch.randn((PROBE_BATCH, input_size[0], 8, 8), generator=gen)
    smooth = torch.nn.functional.interpolate(coarse, size=input_size[1:], mode="bilinear", align_corners=False)
    return np.asarray(smooth.numpy(), dtype=np.float32)


def export_model(settings: Settings, *, force: bool = False) -> Exported:
    """The export of ``settings``' model and weights: the stored one (unless ``force``), else made
    now on the CPU in float32, checked against torch and stored. Raises ``ModelLoadError``."""
    if not force:  # before torch loads: a stored export is found in a fraction of a second
        try:
            return read_export(settings.model_cache, settings.model, weights_tag(settings))
        except ExportMissing:
            pass
    import torch

    from lookalike.onnx_engine import OnnxRunner
    from lookalike.torch_engine import TorchEngine

    engine = TorchEngine(settings.model_copy(update={"device": "cpu"}), threads=torch.get_num_threads())
    probe = probe_batch(tuple(engine.data_config["input_size"]))
    with tempfile.TemporaryDirectory(prefix="lookalike-export-") as tmp:
        path, text_path = Path(tmp) / "model.onnx", Path(tmp) / "text.onnx"
        export_onnx(engine.model, torch.from_numpy(probe), path)
        distance = cosine_distance(OnnxRunner(path, 1)(probe), engine.runner(probe))
        text: dict[str, Any] = {}
        if engine.text is not None:
            text_distance = export_text(engine, text_path)
            text = {"context_length": engine.text.tokenizer.context_length, "distance": text_distance}
            distance = max(distance, text_distance)  # one tag: both towers' vectors must match torch's
        exported = Exported(
            model=engine.tag.model, weights=engine.tag.weights, dim=engine.tag.dim, sha256="", onnx="",
            data_config=_jsonable(engine.data_config), distance=distance, made_with=_made_with(settings), text=text,
        )  # fmt: skip
        stored = write_export(settings.model_cache, path, exported, text_path if text else None, engine.vocab)
    log.info("exported %s (%s) to %s: cosine distance to torch %.1e",
             stored.model, stored.weights, stored.path, distance)  # fmt: skip
    return stored


def _version(package: str) -> str:
    from importlib.metadata import version

    return version(package)


def _made_with(settings: Settings) -> dict[str, str]:
    """The library versions the export came from, for the record."""
    import torch

    made = {"torch": torch.__version__, "timm": _version("timm"), "opset": str(OPSET)}
    if family(settings.model) == OPEN_CLIP:
        made["open_clip"] = _version("open_clip_torch")
    return made


def _jsonable(config: dict[str, Any]) -> dict[str, Any]:
    """timm's data config with tuples as lists (JSON has no tuples; ``spec_from_config`` reads both)."""
    return {k: list(v) if isinstance(v, tuple) else v for k, v in config.items()}
