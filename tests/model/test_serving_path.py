"""The serving path: the embedder serves an export with no torch, timm, torchvision or towhee (issue 20).

A fresh interpreter loads a tiny exported model through ``TimmEmbedder`` (as workers, the API,
``lookalike search`` and the dashboard build it), prepares and embeds images, and reports what it
imported. The export is made here with torch (``tests/unit/test_runtime.py``'s tiny net); the child
never needs it. No weights are read, but the embedder is the model tier's (``tests/unit/test_unit_tier.py``).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from lookalike.embedder import TimmEmbedder
from lookalike.exported import EXPORT_COMMAND, MAX_COSINE_DISTANCE, ExportMissing, ModelLoadError
from lookalike.settings import Settings
from tests.helpers import PYTHON, REPO, WEIGHTS
from tests.unit.test_runtime import TAG_WEIGHTS, settings, store_tiny

pytestmark = pytest.mark.model

# an image model's serving path reads no words either: the tokenizer's ftfy and regex stay out
HEAVY = ("torch", "torchvision", "timm", "towhee", "open_clip", "ftfy", "regex")
CHILD = """
import json, sys
from pathlib import Path
from PIL import Image
from lookalike.embedder import TimmEmbedder
from lookalike.settings import Settings
import consumers.runner, dashboard.api.app, infra.cli  # the entry points' own imports, too

emb = TimmEmbedder(Settings(_env_file=None, model="tiny", pretrained=False, model_cache=Path(sys.argv[1])))
emb.load()
vectors = emb.embed([Image.new("RGB", (500, 375), (90, 120, 30)), Image.new("RGB", (64, 300), (9, 9, 200))])
print(json.dumps({"runtime": emb.runtime, "shape": list(vectors.shape), "norm": float((vectors**2).sum(1).max()),
                  "heavy": sorted(m for m in %r if m in sys.modules)}))
"""


def test_serving_an_export_imports_no_torch(tmp_path: Path) -> None:
    store_tiny(tmp_path / "cache", tmp_path)
    out = subprocess.run(
        [sys.executable, "-c", CHILD % (HEAVY,), str(tmp_path / "cache")],
        capture_output=True, text=True, timeout=120, cwd=Path(__file__).resolve().parents[2],
    )  # fmt: skip
    assert out.returncode == 0, out.stderr[-2000:]
    got = json.loads(out.stdout.strip().splitlines()[-1])
    assert got["runtime"] == "onnx" and got["shape"] == [2, 8]
    assert abs(got["norm"] - 1.0) < 1e-5
    assert got["heavy"] == [], f"the serving path imported {got['heavy']}"


def test_without_torch_a_missing_export_is_an_error_not_a_download(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "torch", None)  # what an install without torch finds
    with pytest.raises(ExportMissing, match=EXPORT_COMMAND):
        TimmEmbedder(settings(tmp_path / "cache", runtime="auto")).load()
    assert not (tmp_path / "cache").exists()
    with pytest.raises(ModelLoadError, match=r"torch runtime needs torch and timm: pip install '\.\[model\]'"):
        TimmEmbedder(settings(tmp_path / "cache", runtime="torch")).load()


def test_vectors_that_differ_from_torch_are_tagged_when_onnx_is_asked_for(tmp_path: Path) -> None:
    store_tiny(tmp_path / "cache", tmp_path, distance=10 * MAX_COSINE_DISTANCE)
    emb = TimmEmbedder(settings(tmp_path / "cache", runtime="onnx"))
    emb.load()
    assert emb.runtime == "onnx" and emb.tag.weights == f"{TAG_WEIGHTS}+onnx"


def test_model_export_builds_once_and_the_serving_path_finds_it(tmp_path: Path) -> None:
    """``lookalike model export`` with the shared weights (a seeded random model without them):
    stored beside its tag, kept on a second run; then served from it."""
    env = {**os.environ, "LOOKALIKE_MODEL_CACHE": str(tmp_path), "LOOKALIKE_MODEL": "mobilenetv2_100",
           "LOOKALIKE_WEIGHTS": str(WEIGHTS) if WEIGHTS.exists() else "",
           "LOOKALIKE_PRETRAINED": "true" if WEIGHTS.exists() else "false"}  # fmt: skip

    def export() -> dict[str, object]:
        out = subprocess.run(
            [PYTHON, "-m", "infra.cli", "model", "export", "--json"],
            capture_output=True, text=True, timeout=300, cwd=REPO, env=env,
        )  # fmt: skip
        assert out.returncode == 0, out.stderr[-2000:]
        return dict(json.loads(out.stdout.strip().splitlines()[-1]))

    first = export()
    assert first["model"] == "mobilenetv2_100" and first["dim"] == 1280
    assert float(str(first["cosine_distance_to_torch"])) <= MAX_COSINE_DISTANCE
    path = Path(str(first["path"]))
    made = path.stat().st_mtime_ns
    assert export() == first and path.stat().st_mtime_ns == made  # kept, not made again
    emb = TimmEmbedder(Settings(_env_file=None, model_cache=tmp_path, **{  # type: ignore[arg-type]
        "weights": env["LOOKALIKE_WEIGHTS"] or None, "pretrained": WEIGHTS.exists()}))  # fmt: skip
    emb.load()
    assert emb.runtime == "onnx" and (emb.tag.weights, emb.tag.dim) == (first["weights"], 1280)
