"""The exported model: stored beside its tag and checksum, refused when missing, corrupt or mismatched.

A tiny conv net stands in for the backbone (images in, pooled features out): torch exports it here
(the test tier has torch), and everything after that is the serving path's own code. Serving it
through the embedder, in a process without torch, is ``tests/model/test_serving_path.py``.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from lookalike.embedder import wants_torch
from lookalike.exported import (
    EXPORT_COMMAND,
    MAX_COSINE_DISTANCE,
    Exported,
    ExportMissing,
    ModelLoadError,
    export_folder,
    read_export,
    write_export,
)
from lookalike.onnx_engine import OnnxRunner
from lookalike.runtime import cosine_distance, export_onnx, probe_batch
from lookalike.settings import Settings

INPUT = (3, 32, 32)
CONFIG = {"input_size": [3, 32, 32], "interpolation": "bicubic", "mean": [0.485, 0.456, 0.406],
          "std": [0.229, 0.224, 0.225], "crop_pct": 0.875, "crop_mode": "center"}  # fmt: skip
TAG_WEIGHTS = "random-init:seed0"  # what Settings(pretrained=False) is tagged


def tiny_model(seed: int = 0) -> torch.nn.Module:
    torch.manual_seed(seed)
    model = torch.nn.Sequential(
        torch.nn.Conv2d(3, 8, 3, padding=1),
        torch.nn.BatchNorm2d(8),
        torch.nn.ReLU(),
        torch.nn.AdaptiveAvgPool2d(1),
        torch.nn.Flatten(),
    )
    return model.eval()


def store_tiny(cache: Path, tmp: Path, *, seed: int = 0, distance: float = 0.0, model: str = "tiny") -> Exported:
    """Export the tiny net and store it as ``lookalike.runtime.export_model`` does."""
    path = tmp / f"tiny-{seed}.onnx"
    export_onnx(tiny_model(seed), torch.from_numpy(probe_batch(INPUT)), path)
    record = Exported(
        model=model, weights=TAG_WEIGHTS, dim=8, sha256="", onnx="", data_config=CONFIG, distance=distance
    )
    return write_export(cache, path, record)


def settings(cache: Path, runtime: str = "onnx", **kw: object) -> Settings:
    return Settings(_env_file=None, model="tiny", pretrained=False, model_cache=cache, runtime=runtime, **kw)  # type: ignore[arg-type]


def test_cosine_distance() -> None:
    a = np.array([[1.0, 0.0], [0.0, 2.0]])
    assert cosine_distance(a, a * 3) == pytest.approx(0.0, abs=1e-9)
    assert cosine_distance(a, np.array([[1.0, 0.0], [2.0, 0.0]])) == pytest.approx(1.0)


def test_the_export_gives_torchs_features_at_any_batch_size(tmp_path: Path) -> None:
    stored = store_tiny(tmp_path / "cache", tmp_path)
    probe = probe_batch(INPUT)
    with torch.inference_mode():
        want = tiny_model()(torch.from_numpy(probe)).numpy()
    runner = OnnxRunner(stored.path, threads=1)
    assert cosine_distance(runner(probe), want) <= MAX_COSINE_DISTANCE
    assert runner(probe[:1]).shape == (1, 8)


def test_an_export_is_stored_beside_its_tag_and_read_back(tmp_path: Path) -> None:
    stored = store_tiny(tmp_path / "cache", tmp_path)
    assert stored.folder == export_folder(tmp_path / "cache", "tiny", TAG_WEIGHTS)
    tag = json.loads((stored.folder / "tag.json").read_text())
    assert (tag["model"], tag["weights"], tag["dim"]) == ("tiny", TAG_WEIGHTS, 8)
    assert stored.onnx == f"model-{tag['sha256'][:16]}.onnx"  # named by content: never rewritten in place
    assert stored.path.stat().st_mode & 0o044 == 0o044  # readable by the other users of a shared cache
    assert read_export(tmp_path / "cache", "tiny", TAG_WEIGHTS) == stored
    assert not [p for p in stored.folder.iterdir() if p.name.startswith(".")]  # no temporary left


def test_a_missing_export_names_the_command_that_makes_it(tmp_path: Path) -> None:
    with pytest.raises(ExportMissing, match=EXPORT_COMMAND) as info:
        read_export(tmp_path, "tiny", TAG_WEIGHTS)
    assert str(export_folder(tmp_path, "tiny", TAG_WEIGHTS)) in str(info.value)


def test_a_corrupt_export_is_refused_with_both_checksums(tmp_path: Path) -> None:
    stored = store_tiny(tmp_path / "cache", tmp_path)
    data = bytearray(stored.path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    stored.path.write_bytes(bytes(data))
    with pytest.raises(ModelLoadError, match="is corrupt") as info:
        read_export(tmp_path / "cache", "tiny", TAG_WEIGHTS)
    said = str(info.value)
    assert stored.sha256[:16] in said and f"{EXPORT_COMMAND} --force" in said
    stored.path.unlink()
    with pytest.raises(ModelLoadError, match="is missing"):
        read_export(tmp_path / "cache", "tiny", TAG_WEIGHTS)


def test_an_export_tagged_for_other_weights_is_refused_naming_both(tmp_path: Path) -> None:
    stored = store_tiny(tmp_path / "cache", tmp_path)
    tag_file = stored.folder / "tag.json"
    tag_file.write_text(json.dumps({**json.loads(tag_file.read_text()), "weights": "file:other.pth:0123456789ab"}))
    with pytest.raises(ModelLoadError, match=re.escape("tagged tiny with weights file:other.pth:0123456789ab")) as info:
        read_export(tmp_path / "cache", "tiny", TAG_WEIGHTS)
    assert f"but tiny with weights {TAG_WEIGHTS} was asked" in str(info.value)
    tag_file.write_text("{not json")
    with pytest.raises(ModelLoadError, match="unreadable"):
        read_export(tmp_path / "cache", "tiny", TAG_WEIGHTS)


def test_auto_picks_torch_only_for_a_gpu(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert not wants_torch(settings(tmp_path, runtime="auto", device="cpu"))
    assert wants_torch(settings(tmp_path, runtime="auto", device="cuda:0"))
    assert wants_torch(settings(tmp_path, runtime="torch"))
    assert not wants_torch(settings(tmp_path, runtime="onnx", device="cuda"))
    monkeypatch.setitem(sys.modules, "torch", None)
    assert not wants_torch(settings(tmp_path, runtime="auto", device="cuda"))  # no torch: ONNX Runtime
