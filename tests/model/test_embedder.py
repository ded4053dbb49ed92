"""The embedder with real timm models: decode size, draft decoding's vectors, runtimes, head widths.

Marked ``model``: these load timm networks and read the sample images and weights from ../shared
(a seeded random model stands in when the weights are missing); no servers. The data-config
arithmetic alone is in ``tests/unit/test_embedder.py``.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from lookalike.embedder import TimmEmbedder
from lookalike.imaging import decode_image
from lookalike.settings import Settings
from tests.helpers import WEIGHTS, dataset_images

pytestmark = pytest.mark.model


def model_settings(**overrides: object) -> Settings:
    """mobilenetv2_100 with the shared weights when present, else a seeded random model."""
    base: dict[str, object] = {
        "model": "mobilenetv2_100",
        "weights": str(WEIGHTS) if WEIGHTS.exists() else None,
        "pretrained": WEIGHTS.exists(),
    }
    base.update(overrides)
    return Settings(_env_file=None, **base)  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("model-cache")


@pytest.fixture(scope="module")
def embedder(cache: Path) -> Iterator[TimmEmbedder]:
    emb = TimmEmbedder(model_settings(runtime="torch", model_cache=cache))
    emb.load()
    yield emb


def test_decode_size_is_the_models_resize_size(embedder: TimmEmbedder) -> None:
    assert embedder.decode_size == 512  # mobilenetv2_100: 224 crop at crop_pct 0.875 -> 256, twice that


def test_decode_size_is_none_before_load_and_when_turned_off() -> None:
    assert TimmEmbedder(model_settings()).decode_size is None
    off = TimmEmbedder(model_settings(draft_decode=False, runtime="torch"))
    off.load()
    assert off.decode_size is None


def test_drafted_and_full_decodes_give_the_same_vectors(embedder: TimmEmbedder) -> None:
    photos = []
    for i, path in enumerate(dataset_images(4)):
        big = Image.open(path).convert("RGB").resize((4032, 3024) if i % 2 == 0 else (3024, 4032))
        buf = io.BytesIO()
        big.save(buf, "JPEG", quality=90)
        photos.append(buf.getvalue())
    full = embedder.embed([decode_image(p) for p in photos])
    drafted_images = [decode_image(p, min_side=embedder.decode_size) for p in photos]
    assert all(max(im.size) <= 1008 for im in drafted_images)  # they really were drafted (1/4 of 4032)
    drafted = embedder.embed(drafted_images)
    cosines = np.sum(full * drafted, axis=1)
    assert cosines.min() >= 0.99, cosines


def test_auto_runtime_keeps_torchs_vectors_and_tag(embedder: TimmEmbedder, cache: Path) -> None:
    """On a CPU with onnxruntime installed, auto picks ONNX Runtime; its vectors are torch's, so the
    collection's tag is unchanged and existing collections keep working."""
    auto = TimmEmbedder(model_settings(runtime="auto", model_cache=cache))
    auto.load()
    assert embedder.runtime == "torch"
    assert auto.runtime == "onnx"
    assert auto.tag == embedder.tag
    images = [decode_image(p.read_bytes(), min_side=256) for p in dataset_images(9)]
    cosines = np.sum(auto.embed(images) * embedder.embed(images), axis=1)  # 9: two forward passes
    assert cosines.min() >= 1 - 1e-3, cosines


def test_a_model_with_a_head_after_pooling_records_the_width_it_outputs(cache: Path) -> None:
    """mobilenetv3's conv_head widens 288 pooled features to 1024: the tag (the collection's dim) says 1024."""
    emb = TimmEmbedder(
        model_settings(
            model="mobilenetv3_small_050", weights=None, pretrained=False, runtime="torch", model_cache=cache
        )
    )
    emb.load()
    vectors = emb.embed([Image.new("RGB", (64, 48), (200, 30, 30))])
    assert vectors.shape == (1, emb.tag.dim) == (1, 1024)
