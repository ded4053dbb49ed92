"""Which engine runs the model's forward pass: torch, or ONNX Runtime exported from the same module.

ONNX Runtime's CPU kernels run mobilenetv2 two to three times faster than torch on two cores. It is
used only where it gives the same vectors: the exported graph is checked against torch on a probe
batch at load, and ``auto`` keeps torch when the cosine distance exceeds ``MAX_COSINE_DISTANCE``,
when onnxruntime is not installed, when export fails, or on a GPU. Exports are cached on disk, keyed
by model, weights (a hash of the state dict), torch version and opset, so a worker starts once slow.

A runner takes a CPU float32 batch ``(n, 3, h, w)`` and returns the raw features ``(n, dim)``;
normalisation stays with the embedder.
"""

from __future__ import annotations

import hashlib
import logging
import os
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np

log = logging.getLogger(__name__)

OPSET = 17
MAX_COSINE_DISTANCE = 1e-3
PROBE_BATCH = 4
EXPORT_VERSION = 1  # bump when the export recipe changes, so old cache files are not reused


class Runner(Protocol):
    """One forward pass of the backbone."""

    name: str

    def __call__(self, batch: Any) -> Any: ...


class TorchRunner:
    """The model in torch, channels-last (oneDNN/cuDNN pick their fast kernels for that layout)."""

    name = "torch"

    def __init__(self, model: Any, device: str, half: bool) -> None:
        self.model, self.device, self.half = model, device, half

    def __call__(self, batch: Any) -> Any:
        import torch

        x = batch.to(self.device).contiguous(memory_format=torch.channels_last)
        if self.half:
            x = x.half()
        with torch.inference_mode():
            return self.model(x).float().cpu()


class OnnxRunner:
    """An exported graph in ONNX Runtime's CPU provider, with ``threads`` intra-op threads."""

    name = "onnx"

    def __init__(self, path: Path, threads: int) -> None:
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.log_severity_level = 3  # warnings about unused initialisers are noise here
        # idle pool threads would otherwise spin after every run, taking the cores that decode
        # threads, torch and the local servers share on a small machine
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        self.session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        self.input = self.session.get_inputs()[0].name

    def __call__(self, batch: Any) -> Any:
        import torch

        x = np.ascontiguousarray(batch.numpy(), dtype=np.float32)
        return torch.from_numpy(self.session.run(None, {self.input: x})[0])


Exporter = Callable[[Any, Any, Path], None]


def export_onnx(model: Any, example: Any, path: Path) -> None:
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
            input_names=["images"],
            output_names=["features"],
            dynamic_axes={"images": {0: "batch"}, "features": {0: "batch"}},
            dynamo=False,
        )


@dataclass(frozen=True)
class Choice:
    """The runner to use, and whether its vectors differ from torch's (then the tag must say so)."""

    runner: Runner
    differs: bool = False
    reason: str = ""


def cache_key(model_name: str, model: Any) -> str:
    """Model, exact weights, torch version and export recipe: any change means a new export."""
    import torch

    digest = hashlib.sha256(f"{model_name}|{torch.__version__}|{OPSET}|{EXPORT_VERSION}".encode())
    for name, tensor in model.state_dict().items():
        digest.update(name.encode())
        digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()[:16]


def cosine_distance(a: np.ndarray, b: np.ndarray) -> float:
    """The largest ``1 - cos`` between matching rows of two feature batches."""
    a = a / np.maximum(np.linalg.norm(a, axis=1, keepdims=True), 1e-12)
    b = b / np.maximum(np.linalg.norm(b, axis=1, keepdims=True), 1e-12)
    return float(np.max(1.0 - np.sum(a * b, axis=1)))


def probe_batch(input_size: tuple[int, int, int]) -> Any:
    """A fixed batch of image-like inputs (smooth noise in normalised units), the same everywhere."""
    import torch

    gen = torch.Generator().manual_seed(0)
    coarse = torch.randn((PROBE_BATCH, input_size[0], 8, 8), generator=gen)
    return torch.nn.functional.interpolate(coarse, size=input_size[1:], mode="bilinear", align_corners=False)


def onnx_file(model_name: str, model: Any, cache_dir: Path, example: Any, export: Exporter) -> Path:
    """The cached export, made (atomically: concurrent workers may race) if missing."""
    path = cache_dir.expanduser() / f"{model_name.replace('/', '_')}-{cache_key(model_name, model)}.onnx"
    if path.is_file():
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.stem}.", suffix=".onnx")
    os.close(fd)
    try:
        export(model, example, Path(tmp))
        os.chmod(tmp, 0o644)  # mkstemp makes it private; other users of a shared cache read it too
        os.replace(tmp, path)
    finally:
        Path(tmp).unlink(missing_ok=True)
    return path


def choose_runner(
    runtime: str,
    *,
    model_name: str,
    model: Any,
    torch_runner: TorchRunner,
    input_size: tuple[int, int, int],
    cache_dir: Path,
    threads: int,
    export: Exporter = export_onnx,
) -> Choice:
    """``torch``: torch. ``onnx``: ONNX Runtime (``RuntimeError`` if it cannot run; ``differs`` set
    when its vectors are off). ``auto``: ONNX Runtime on a CPU when it matches torch, else torch."""
    if runtime not in ("auto", "torch", "onnx"):
        raise ValueError(f"unknown runtime {runtime!r}: use auto, torch or onnx")
    if runtime == "torch":
        return Choice(torch_runner)
    if runtime == "auto" and torch_runner.device != "cpu":
        return Choice(torch_runner, reason=f"{torch_runner.device}: torch")
    probe = probe_batch(input_size)
    try:
        path = onnx_file(model_name, model, cache_dir, probe, export)
        onnx = OnnxRunner(path, threads)
        distance = cosine_distance(onnx(probe).numpy(), torch_runner(probe).numpy())
    except Exception as exc:  # ImportError, exporter and ORT errors come in many types
        if runtime == "onnx":
            raise RuntimeError(f"ONNX Runtime cannot run {model_name}: {type(exc).__name__}: {exc}") from exc
        reason = f"ONNX Runtime unavailable for {model_name} ({type(exc).__name__}: {exc}); using torch"
        log.warning(reason.splitlines()[0])
        return Choice(torch_runner, reason=reason)
    if distance <= MAX_COSINE_DISTANCE:
        return Choice(onnx, reason=f"ONNX Runtime matches torch (cosine distance {distance:.1e})")
    reason = f"ONNX Runtime vectors differ from torch's (cosine distance {distance:.1e} > {MAX_COSINE_DISTANCE})"
    if runtime == "onnx":
        log.warning("%s; using it as asked, the model tag records the runtime", reason)
        return Choice(onnx, differs=True, reason=reason)
    log.warning("%s; using torch", reason)
    return Choice(torch_runner, reason=reason)
