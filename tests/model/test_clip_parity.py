"""Both towers of an open_clip model give open_clip's own vectors, in both runtimes (issue 24).

The reference is open_clip itself: ``create_model`` (seed 0, as the project makes a random model),
its eval ``image_transform`` and its ``tokenize``. The project's ``TimmEmbedder`` prepares images
with ``lookalike.preprocess`` (no torch), tokenizes with ``lookalike.clip_tokenizer`` and runs
either torch or the ONNX export, whose text tower and vocabulary must be in the export folder so a
torch-free install can read them. ``ViT-S-32`` with random weights: no weights exist offline, and
parity does not depend on them.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from lookalike.embedder import TimmEmbedder
from lookalike.errors import BadText, NoTextTower
from lookalike.exported import read_export
from lookalike.settings import Settings
from tests.helpers import REPO

pytestmark = pytest.mark.model

ARCH = "ViT-S-32"
MODEL = f"open_clip:{ARCH}"
TEXTS = ["a photo of a dog", "Two RED cars, parked in the snow!", "naïve café 日本語", "x"]
MIN_COS = 0.9999


def _images() -> list[Image.Image]:
    rng = np.random.default_rng(0)
    sizes = [(500, 375), (224, 224), (90, 400), (640, 481)]
    return [Image.fromarray(rng.integers(0, 255, (h, w, 3), dtype=np.uint8)).resize((w, h)) for w, h in sizes]


@pytest.fixture(scope="module")
def cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("clip-cache")


def _embedder(cache: Path, runtime: str) -> TimmEmbedder:
    settings = Settings(_env_file=None, model=MODEL, pretrained=False, model_cache=cache, runtime=runtime)  # type: ignore[call-arg]
    embedder = TimmEmbedder(settings)
    embedder.load()
    return embedder


@pytest.fixture(scope="module")
def reference() -> Iterator[tuple[np.ndarray, np.ndarray]]:
    open_clip = pytest.importorskip("open_clip")
    import torch

    torch.manual_seed(0)
    model = open_clip.create_model(ARCH).eval()
    preprocess = open_clip.image_transform(model.visual.image_size, is_train=False)
    with torch.no_grad():
        images = model.encode_image(torch.stack([preprocess(im) for im in _images()]), normalize=True)
        texts = model.encode_text(open_clip.tokenize(TEXTS), normalize=True)
    yield images.numpy(), texts.numpy()


@pytest.mark.parametrize("runtime", ["torch", "onnx"])
def test_each_runtime_gives_open_clips_vectors(
    runtime: str, cache: Path, reference: tuple[np.ndarray, np.ndarray]
) -> None:
    embedder = _embedder(cache, runtime)
    assert embedder.runtime == runtime and embedder.has_text
    assert (embedder.tag.model, embedder.tag.weights, embedder.tag.dim) == (MODEL, "random-init:seed0", 384)
    images, texts = embedder.embed(_images()), embedder.embed_texts(TEXTS)
    assert images.shape == (4, 384) and texts.shape == (4, 384)
    assert np.sum(images * reference[0], axis=1).min() > MIN_COS
    assert np.sum(texts * reference[1], axis=1).min() > MIN_COS
    # one text alone is the same vector as in a batch (no padding leaks between rows)
    assert float(embedder.embed_texts([TEXTS[1]])[0] @ texts[1]) > 0.99999


def test_the_export_carries_the_text_tower_and_its_vocabulary(cache: Path) -> None:
    _embedder(cache, "onnx")
    exported = read_export(cache, MODEL, "random-init:seed0")
    assert exported.text_path is not None and exported.text_path.is_file()
    assert exported.vocab_path is not None and exported.vocab_path.name.endswith(".txt.gz")
    assert exported.text["context_length"] == 77 and exported.distance < 1e-3
    assert "open_clip" in exported.made_with


def test_text_too_long_is_refused_with_the_count_and_the_limit(cache: Path) -> None:
    embedder = _embedder(cache, "onnx")
    fits = "seventy five words " * 25
    assert len(embedder._engine.text.tokenizer.encode(fits)) == 75  # the most that fits
    embedder.check_text(fits)
    with pytest.raises(BadText, match=r"the text is 78 tokens; open_clip:ViT-S-32 reads at most 75"):
        embedder.embed_texts(["a photo of a dog", "word " * 78])
    with pytest.raises(BadText, match="empty"):
        embedder.check_text("   ")


def test_an_image_model_says_it_has_no_text_tower(tmp_path: Path) -> None:
    from tests.unit.test_runtime import settings, store_tiny

    store_tiny(tmp_path / "cache", tmp_path)
    embedder = TimmEmbedder(settings(tmp_path / "cache"))
    embedder.load()
    assert not embedder.has_text
    with pytest.raises(NoTextTower, match="embeds images only: search by words needs a CLIP model"):
        embedder.embed_texts(["a dog"])


CHILD = """
import json, sys
from pathlib import Path
from lookalike.embedder import TimmEmbedder
from lookalike.settings import Settings
emb = TimmEmbedder(Settings(_env_file=None, model=sys.argv[2], pretrained=False, model_cache=Path(sys.argv[1]),
                            runtime="onnx"))  # what a GPU host would not pick by itself
emb.load()
from PIL import Image
emb.embed([Image.new("RGB", (64, 48), (200, 30, 30))])
images_only = emb._engine._text is None  # as in a worker: the text graph is not loaded for images
v = emb.embed_texts(["a photo of a dog"])
print(json.dumps({"runtime": emb.runtime, "vector": v[0].tolist(), "lazy": images_only and emb.has_text,
                  "heavy": sorted(m for m in ("torch", "open_clip", "timm", "towhee") if m in sys.modules)}))
"""


def test_a_torch_free_process_searches_by_words_from_the_export(
    cache: Path, reference: tuple[np.ndarray, np.ndarray]
) -> None:
    _embedder(cache, "onnx")  # the export exists
    out = subprocess.run(
        [sys.executable, "-c", CHILD, str(cache), MODEL], capture_output=True, text=True, timeout=120, cwd=REPO
    )
    assert out.returncode == 0, out.stderr[-2000:]
    got = json.loads(out.stdout.strip().splitlines()[-1])
    assert got["runtime"] == "onnx" and got["heavy"] == [] and got["lazy"]
    assert float(np.asarray(got["vector"]) @ reference[1][0]) > MIN_COS
