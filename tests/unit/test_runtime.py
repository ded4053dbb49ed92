"""Choosing the forward-pass engine: torch, or ONNX Runtime where it gives torch's vectors."""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from lookalike.runtime import (
    MAX_COSINE_DISTANCE,
    Choice,
    TorchRunner,
    choose_runner,
    cosine_distance,
    export_onnx,
    probe_batch,
)

INPUT = (3, 32, 32)


def tiny_model(seed: int = 0) -> torch.nn.Module:
    """A small conv net with the backbone's shape contract: images in, pooled features out."""
    torch.manual_seed(seed)
    model = torch.nn.Sequential(
        torch.nn.Conv2d(3, 8, 3, padding=1),
        torch.nn.BatchNorm2d(8),
        torch.nn.ReLU(),
        torch.nn.AdaptiveAvgPool2d(1),
        torch.nn.Flatten(),
    )
    return model.eval()


def choose(runtime: str, tmp_path: Path, model: torch.nn.Module | None = None, **kw: Any) -> Choice:
    model = model if model is not None else tiny_model()
    return choose_runner(
        runtime,
        model_name="tiny",
        model=model,
        torch_runner=TorchRunner(model, kw.pop("device", "cpu"), False),
        input_size=INPUT,
        cache_dir=tmp_path / "cache",
        threads=1,
        **kw,
    )


def counting_export(calls: list[int]) -> Any:
    def export(model: Any, example: Any, path: Path) -> None:
        calls.append(1)
        export_onnx(model, example, path)

    return export


def failing_export(model: Any, example: Any, path: Path) -> None:
    raise RuntimeError("exporter broke")


def other_weights_export(model: Any, example: Any, path: Path) -> None:
    """Exports a different network: ONNX Runtime then answers with other vectors than torch."""
    export_onnx(tiny_model(seed=1), example, path)


def test_cosine_distance() -> None:
    a = np.array([[1.0, 0.0], [0.0, 2.0]])
    assert cosine_distance(a, a * 3) == pytest.approx(0.0, abs=1e-9)
    assert cosine_distance(a, np.array([[1.0, 0.0], [2.0, 0.0]])) == pytest.approx(1.0)


def test_torch_is_used_when_asked(tmp_path: Path) -> None:
    calls: list[int] = []
    choice = choose("torch", tmp_path, export=counting_export(calls))
    assert choice.runner.name == "torch" and not choice.differs
    assert not calls  # nothing exported


def test_auto_uses_onnx_when_it_matches_and_caches_the_export(tmp_path: Path) -> None:
    calls: list[int] = []
    model = tiny_model()
    choice = choose("auto", tmp_path, model, export=counting_export(calls))
    assert choice.runner.name == "onnx" and not choice.differs
    probe = probe_batch(INPUT)
    with torch.inference_mode():
        want = model(probe).numpy()
    assert cosine_distance(choice.runner(probe).numpy(), want) <= MAX_COSINE_DISTANCE
    assert choice.runner(probe[:1]).shape == (1, 8)  # any batch size
    again = choose("auto", tmp_path, model, export=counting_export(calls))
    assert again.runner.name == "onnx"
    assert len(calls) == 1  # the second load reused the cached file
    (cached,) = (tmp_path / "cache").glob("tiny-*.onnx")
    assert cached.stat().st_mode & 0o044 == 0o044  # readable by the other users of a shared cache


def test_other_weights_get_their_own_export(tmp_path: Path) -> None:
    calls: list[int] = []
    choose("auto", tmp_path, tiny_model(0), export=counting_export(calls))
    choose("auto", tmp_path, tiny_model(2), export=counting_export(calls))
    assert len(calls) == 2


def test_auto_falls_back_to_torch_when_export_fails(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="lookalike.runtime"):
        choice = choose("auto", tmp_path, export=failing_export)
    assert choice.runner.name == "torch"
    assert "exporter broke" in choice.reason
    assert [r.getMessage() for r in caplog.records if "using torch" in r.getMessage()]
    assert not list((tmp_path / "cache").glob("*"))  # no half-written file left behind


def test_auto_falls_back_to_torch_without_onnxruntime(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # what an environment without it raises
    choice = choose("auto", tmp_path)
    assert choice.runner.name == "torch"
    assert "ImportError" in choice.reason or "ModuleNotFoundError" in choice.reason


def test_auto_keeps_torch_when_vectors_differ(tmp_path: Path) -> None:
    choice = choose("auto", tmp_path, export=other_weights_export)
    assert choice.runner.name == "torch" and not choice.differs
    assert "differ" in choice.reason


def test_onnx_when_asked_is_used_even_if_it_differs_and_says_so(tmp_path: Path) -> None:
    choice = choose("onnx", tmp_path, export=other_weights_export)
    assert choice.runner.name == "onnx" and choice.differs


def test_onnx_when_asked_but_impossible_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(RuntimeError, match="exporter broke"):
        choose("onnx", tmp_path, export=failing_export)


def test_auto_on_a_gpu_keeps_torch(tmp_path: Path) -> None:
    calls: list[int] = []
    choice = choose("auto", tmp_path, device="cuda", export=counting_export(calls))
    assert choice.runner.name == "torch" and not calls


def test_unknown_runtime_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="unknown runtime"):
        choose("tensorrt", tmp_path)
