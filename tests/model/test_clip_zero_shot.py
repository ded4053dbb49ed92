"""Zero-shot retrieval with real CLIP weights: what the random-init tests cannot show.

No CLIP weights can be downloaded on the development machine, so this runs only where someone
points ``LOOKALIKE_CLIP_WEIGHTS`` at a real open_clip checkpoint (``LOOKALIKE_CLIP_MODEL`` names its
architecture, ``ViT-B-32`` unless set). For each class of the sample set, "a photo of a {name}"
is embedded by the project's text tower and compared with every training image embedded by its
image tower, the way the index compares them. Same-class images must come up in the top 10.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tests.helpers import SHARED

pytestmark = pytest.mark.model

WEIGHTS = os.environ.get("LOOKALIKE_CLIP_WEIGHTS", "")
ARCH = os.environ.get("LOOKALIKE_CLIP_MODEL", "ViT-B-32")
TRAIN = SHARED / "datasets" / "reverse_image_search" / "train"
K = 10
MIN_CLASSES_FOUND = 0.9  # classes with a same-class image in their top 10 (ViT-B-32 on ImageNet: top-1 ~0.63)
MIN_PRECISION = 0.5  # mean share of the top 10 that is of the class


def _samples() -> tuple[list[Path], list[str]]:
    paths = sorted(TRAIN.glob("*/*.JPEG"))
    return paths, [p.parent.name for p in paths]


@pytest.mark.skipif(not WEIGHTS, reason="set LOOKALIKE_CLIP_WEIGHTS to a real open_clip checkpoint to run it")
def test_a_photo_of_each_class_finds_that_class(tmp_path: Path) -> None:
    from lookalike.embedder import TimmEmbedder
    from lookalike.settings import Settings

    if not TRAIN.is_dir():
        pytest.skip(f"no sample set at {TRAIN}")
    settings = Settings(
        _env_file=None, model=f"open_clip:{ARCH}", weights=Path(WEIGHTS), pretrained=True, model_cache=tmp_path
    )  # type: ignore[call-arg]
    embedder = TimmEmbedder(settings)
    embedder.load()
    paths, labels = _samples()
    images = np.concatenate(
        [embedder.embed([Image.open(p).convert("RGB") for p in paths[i : i + 32]]) for i in range(0, len(paths), 32)]
    )
    classes = sorted(set(labels))
    texts = embedder.embed_texts([f"a photo of a {name.replace('_', ' ')}" for name in classes])
    top = np.argsort(-(texts @ images.T), axis=1)[:, :K]
    hits = np.array([[labels[j] == name for j in row] for name, row in zip(classes, top, strict=True)])
    found, precision = float(hits.any(axis=1).mean()), float(hits.mean())
    print(f"{ARCH} ({Path(WEIGHTS).name}): classes found in the top {K}: {found:.3f}, precision@{K}: {precision:.3f}")
    assert found >= MIN_CLASSES_FOUND, (found, precision)
    assert precision >= MIN_PRECISION, (found, precision)
