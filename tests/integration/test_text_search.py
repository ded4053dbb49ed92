"""Search by words end to end on the real local stack (issue 24).

Thirty sample images are indexed by the default timm model through the real pipeline, then
``reindex`` moves the index to ``open_clip:ViT-S-32`` (randomly initialised: offline). The API, in
process with its lifespan, then answers ``POST /v1/search/text``; the test recomputes the text's vector
on its own with open_clip in torch and checks the answer against the vectors Milvus stores: the
results are the k rows with the largest inner product, best first, and a prefix keeps only its
keys. The image search keeps working on the same index, and ``lookalike search --text`` (the model
here) agrees with the API.

A random CLIP puts every image near every other (cosine ~0.93) and every text near none (~0.005),
so the scores are close together: orders are compared up to ``TOL``, the gap the engines (ONNX or
torch, float32 in Milvus) may open between two computations of one score.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest

from tests.conftest import Pipeline, open_pipeline
from tests.helpers import dataset_images, free_port, wait_for

pytestmark = [pytest.mark.integration, pytest.mark.model]

CLIP = "open_clip:ViT-S-32"
ARCH = "ViT-S-32"
TOKEN = "test-api-token"
N_IMAGES = 30
TEXT = "a photo of a dog on the grass"
TOL = 1e-4


def key_of(i: int) -> str:
    return f"{'a' if i % 2 else 'b'}/{i:02d}.jpg"


@pytest.fixture(scope="module")
def clip_index(servers: dict[str, str], embedder: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pipeline]:
    """The sample indexed by the default model, then reindexed to the CLIP model; always torn down."""
    pytest.importorskip("open_clip", reason="search by words needs open_clip: pip install '.[model]'")
    from infra.reindex import build

    with open_pipeline(servers, embedder, tmp_path_factory.mktemp("text-search"), api_token=TOKEN) as p:
        p.start_worker()
        for i, path in enumerate(dataset_images(N_IMAGES)):
            p.store.put_file(p.settings.bucket, key_of(i), path, "image/jpeg")
        want = {f"{p.settings.bucket}/{key_of(i)}" for i in range(N_IMAGES)}
        wait_for(lambda: set(p.indexed()) == want, 180, interval=0.5, what="the sample indexed")
        p.stop_workers()  # a timm worker would refuse to write into the CLIP version anyway
        summary = build.reindex(p.settings, CLIP, None, False, progress=False)  # type: ignore[arg-type]
        assert (summary.model, summary.vectors) == (CLIP, N_IMAGES)
        yield p


@pytest.fixture(scope="module")
def client(clip_index: Pipeline, embedder: Any) -> Iterator[Any]:
    """The API over the CLIP index; given the configured (timm) model, it loads the index's own."""
    from fastapi.testclient import TestClient

    from dashboard.api.app import create_app

    with TestClient(create_app(clip_index.settings, embedder=embedder), raise_server_exceptions=False) as c:  # type: ignore[arg-type]
        c.headers["Authorization"] = f"Bearer {TOKEN}"
        yield c


def text_vector(text: str) -> np.ndarray:
    """The text's unit vector, from open_clip in torch, built as the project builds a random CLIP."""
    import open_clip
    import torch

    torch.manual_seed(0)
    model = open_clip.create_model(ARCH, pretrained=None)
    model.eval()
    with torch.no_grad():
        v = model.encode_text(open_clip.get_tokenizer(ARCH)([text]))[0].numpy().astype(np.float64)
    return v / np.linalg.norm(v)


def stored_scores(p: Pipeline, vector: np.ndarray) -> dict[str, float]:
    """key -> inner product of the vector Milvus stores for it (the alias's target now) with ``vector``."""
    from lookalike.index import VectorIndex

    idx = VectorIndex(p.settings)  # type: ignore[arg-type]
    try:
        idx.follow()  # reads what the alias's target holds, whatever model made it
        rows = idx.get([f"{p.settings.bucket}/{key_of(i)}" for i in range(N_IMAGES)], with_vectors=True)  # type: ignore[attr-defined]
    finally:
        idx.close()
    assert len(rows) == N_IMAGES
    return {r["id"].split("/", 1)[1]: float(np.dot(np.asarray(r["vector"], dtype=np.float64), vector)) for r in rows}


def assert_top_k(results: list[dict[str, Any]], scores: dict[str, float], k: int) -> None:
    """``results`` are the ``k`` best of ``scores`` best first, each with its score (up to ``TOL``)."""
    assert len(results) == k
    got = [r["key"] for r in results]
    for r in results:
        assert r["score"] == pytest.approx(scores[r["key"]], abs=TOL), r
    assert all(scores[a] >= scores[b] - TOL for a, b in itertools.pairwise(got)), got
    left_out = [s for key, s in scores.items() if key not in got]
    assert not left_out or min(scores[key] for key in got) >= max(left_out) - TOL


def test_words_find_the_rows_nearest_the_text_vector_and_a_prefix_holds(client: Any, clip_index: Pipeline) -> None:
    assert client.get("/healthz").json()["model"] == CLIP  # the index's model, not the configured one
    scores = stored_scores(clip_index, text_vector(TEXT))
    response = client.post("/v1/search/text", json={"text": TEXT, "k": 5})
    assert response.status_code == 200, response.text
    assert_top_k(response.json()["results"], scores, 5)

    under_a = client.post("/v1/search/text", json={"text": TEXT, "k": 4, "prefix": "a/"})
    assert under_a.status_code == 200, under_a.text
    assert_top_k(under_a.json()["results"], {k: s for k, s in scores.items() if k.startswith("a/")}, 4)


def test_text_over_the_context_is_refused_naming_the_count_and_the_limit(client: Any) -> None:
    response = client.post("/v1/search/text", json={"text": " ".join(["dog"] * 100)})
    assert response.status_code == 422, response.text
    detail = response.json()["detail"]
    limit = "reads at most 75 (77 with its start and end tokens): shorten it"
    assert detail == f"text: the text is 100 tokens; {CLIP} {limit}"


def test_an_image_search_on_the_same_index_still_works(client: Any) -> None:
    query = dataset_images(N_IMAGES)[7].read_bytes()
    response = client.post("/v1/search", files={"image": ("q.jpg", query, "image/jpeg")}, params={"k": 3})
    assert response.status_code == 200, response.text
    first = response.json()["results"][0]
    assert first["key"] == key_of(7) and first["score"] == pytest.approx(1.0, abs=1e-3)


def test_the_command_here_agrees_with_the_api(
    client: Any, clip_index: Pipeline, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from infra import cli

    for name, value in clip_index.settings.as_env().items():  # type: ignore[attr-defined]
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("LOOKALIKE_API_PORT", str(free_port()))  # no API there: the model loads here
    api = client.post("/v1/search/text", json={"text": TEXT, "k": 3, "prefix": "b/"}).json()["results"]
    assert cli.main(["search", "--text", TEXT, "-k", "3", "--prefix", "b/", "--local", "--json"]) == 0
    here = json.loads(capsys.readouterr().out)
    assert [n["key"] for n in here] == [r["key"] for r in api]
    assert [n["score"] for n in here] == pytest.approx([r["score"] for r in api], abs=TOL)
