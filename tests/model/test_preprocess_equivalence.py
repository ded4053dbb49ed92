"""Bounded preprocessing gives the vectors timm's own transform gave, with the real weights (issue 26).

``TimmEmbedder.prepare`` now resamples only the crop the model sees (``lookalike.preprocess``);
before, it ran timm's transform (resize the shorter side, then crop), which is still there as
``BoundedTransform.transform``. On 100 sample images and on 12-megapixel photos made by
``infra.bench.photos`` (decoded drafted, as the worker does, and at full size) the two give the same
vectors to cosine >= 0.9999. Both runtimes take the same prepared arrays. The serving path (ONNX
Runtime, preprocessing in PIL and numpy, no torch) gives torch's vectors with timm's own transform
to cosine >= 0.9999 on all 100 sample images (issue 20). Marked ``model``: real weights from ../shared.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from infra.bench.photos import make_photo
from lookalike.embedder import TimmEmbedder
from lookalike.imaging import decode_image
from lookalike.preprocess import BoundedTransform, ImageTooThin
from lookalike.settings import Settings
from tests.helpers import WEIGHTS, dataset_images

pytestmark = [
    pytest.mark.model,
    pytest.mark.skipif(not WEIGHTS.exists(), reason=f"needs the real weights at {WEIGHTS}"),
]
MIN_COSINE = 0.9999


def loaded(runtime: str, cache: Path) -> TimmEmbedder:
    settings = Settings(_env_file=None, weights=str(WEIGHTS), pretrained=True, runtime=runtime, model_cache=cache)  # type: ignore[call-arg]
    emb = TimmEmbedder(settings.model_copy(update={"model": "mobilenetv2_100"}))
    emb.load()
    return emb


@pytest.fixture(scope="module")
def cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("model-cache")


@pytest.fixture(scope="module")
def embedder(cache: Path) -> Iterator[TimmEmbedder]:
    yield loaded("torch", cache)


def cosines(embedder: TimmEmbedder, images: list[Image.Image]) -> np.ndarray:
    """Per image, the cosine between the bounded vector and timm's transform's vector."""
    transform = embedder.transform
    assert isinstance(transform, BoundedTransform) and transform.bounded
    before = embedder.embed_prepared([transform.transform(im).numpy() for im in images])
    after = embedder.embed_prepared([embedder.prepare(im) for im in images])
    return np.sum(before * after, axis=1)


def test_the_sample_set_keeps_its_vectors(embedder: TimmEmbedder) -> None:
    images = [decode_image(p.read_bytes(), min_side=embedder.decode_size) for p in dataset_images(100)]
    got = cosines(embedder, images)
    assert got.min() >= MIN_COSINE, np.sort(got)[:5]


def test_twelve_megapixel_photos_keep_their_vectors(embedder: TimmEmbedder, tmp_path: Path) -> None:
    images = []
    for i, src in enumerate(dataset_images(4)):
        dest = tmp_path / f"photo{i}.jpg"
        make_photo(src, dest, megapixels=12.0, quality=90, orientation=6 if i == 3 else None)
        data = dest.read_bytes()
        images += [decode_image(data, min_side=embedder.decode_size), decode_image(data)]
    assert max(max(im.size) for im in images) >= 4000  # the full decodes really are 12 MP
    got = cosines(embedder, images)
    assert got.min() >= MIN_COSINE, got


def test_both_runtimes_use_the_same_bounded_preparation(embedder: TimmEmbedder, cache: Path) -> None:
    onnx = loaded("onnx", cache)
    assert onnx.runtime == "onnx" and isinstance(onnx.transform, BoundedTransform) and onnx.transform.bounded
    image = decode_image(dataset_images(1)[0].read_bytes(), min_side=onnx.decode_size)
    assert bool((onnx.prepare(image) == embedder.prepare(image)).all())
    for emb in (embedder, onnx):
        with pytest.raises(ImageTooThin, match="image is 20000x1: too thin"):
            emb.embed([Image.new("RGB", (20000, 1), (200, 30, 30))])


def test_the_serving_path_gives_torchs_vectors_with_timms_transform(embedder: TimmEmbedder, cache: Path) -> None:
    """ONNX Runtime on the numpy preparation vs torch on timm's own transform, built here from timm's
    data config for the model: every image of the 100-image sample set, decoded as the worker does."""
    from timm.data import create_transform, resolve_data_config

    timms = create_transform(**resolve_data_config({}, model=embedder._engine.model))
    onnx = loaded("onnx", cache)
    images = [decode_image(p.read_bytes(), min_side=onnx.decode_size) for p in dataset_images(100)]
    reference = embedder.embed_prepared([timms(im).numpy() for im in images])
    got = np.sum(onnx.embed(images) * reference, axis=1)
    assert got.min() >= MIN_COSINE, np.sort(got)[:5]
