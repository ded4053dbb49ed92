"""Search by words (issue 24) through the one ``Searcher``, the API's ``POST /v1/search/text`` and the
dashboard's query side, with an in-memory text embedder and index (``tests.unit.text_fakes``).

What is checked: the text vector decides the order; filters reach the index as the image search's
do; a timm index is refused with 409 naming its model and the reindex that moves it; text that is
empty, only whitespace or over the context is a 422 naming the token count and the limit (never
cut); with nothing indexed the text is still checked; Milvus down is the 503 of every route.
The real model and Milvus: tests/integration/test_text_search.py.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timezone
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient

from dashboard import query
from dashboard.api.app import create_app
from dashboard.api.service import QueryService
from lookalike.errors import BadText, NoTextTower
from lookalike.search import Searcher
from lookalike.settings import Settings
from lookalike.text_search import REINDEX_TO_CLIP, images_only
from lookalike.window import Window
from tests.unit.fakes import FakeStore
from tests.unit.text_fakes import CONTEXT, SearchIndex, WordsEmbedder, colour_rows

TOKEN = "t0ken"
SETTINGS = Settings(_env_file=None, api_token=TOKEN)
LONG = " ".join(["red"] * (CONTEXT - 1))  # CONTEXT + 1 tokens with start and end


def searcher(text: bool = True, rows: bool = True) -> tuple[Searcher, SearchIndex, WordsEmbedder]:
    embedder = WordsEmbedder(text)
    index = SearchIndex(embedder.tag, colour_rows() if rows else {})
    return Searcher(SETTINGS, embedder, index=index), index, embedder  # type: ignore[arg-type]


# ---------------------------------------------------------------- the searcher
def test_the_text_vector_orders_the_results_and_the_window_reaches_the_index() -> None:
    s, index, embedder = searcher()
    window = Window("re", datetime(2026, 1, 1, tzinfo=timezone.utc), None, bucket="images")
    result = s.search_text("red", k=3, window=window)
    vector = embedder.embed_texts(["red"])[0]
    want = sorted(index.rows, key=lambda i: (-float(np.dot(index.rows[i], vector)), i))[:3]  # ties: by id
    assert [n.id for n in result.neighbours] == want and want[0] == "images/red.png"
    assert result.neighbours[0].score == pytest.approx(1.0)
    assert index.filters == [window.expression()] and "event_time >=" in index.filters[0]
    assert (result.model, result.collection, result.decode_ms) == ("open_clip:ViT-S-32", "images__v1", 0.0)
    both = s.search_text("green blue", k=1)
    assert [n.key for n in both.neighbours] == ["green-blue.png"]


def test_a_timm_index_is_refused_naming_its_model_and_how_to_move() -> None:
    s, index, embedder = searcher(text=False)
    with pytest.raises(NoTextTower) as info:
        s.search_text("red", k=3)
    message = str(info.value)
    assert message == images_only("mobilenetv2_100")
    assert "mobilenetv2_100" in message and REINDEX_TO_CLIP in message and "docs/text-search.md" in message
    assert index.filters == [] and embedder.embedded == []  # no search, no embedding


@pytest.mark.parametrize("text", ["", "   \n\t", LONG])
def test_text_the_model_cannot_read_whole_is_refused_before_any_search(text: str) -> None:
    s, index, embedder = searcher()
    with pytest.raises(BadText):
        s.search_text(text)
    assert index.filters == [] and embedder.embedded == []


# ---------------------------------------------------------------- the API
@contextmanager
def api(embedder: WordsEmbedder, index: SearchIndex) -> Iterator[TestClient]:
    """The real app and routes over a real ``QueryService`` whose Milvus and model are the fakes. The
    lifespan is not run: it would start the service ``create_app`` made, which connects to Milvus."""
    app = create_app(SETTINGS, embedder=embedder)  # type: ignore[arg-type]
    app.state.service = QueryService(SETTINGS, embedder, FakeStore(), open_index=lambda: index)  # type: ignore[arg-type,return-value]
    client = TestClient(app, raise_server_exceptions=False)
    client.headers["Authorization"] = f"Bearer {TOKEN}"
    try:
        yield client
    finally:
        client.close()


@pytest.fixture()
def clip() -> Iterator[tuple[TestClient, SearchIndex]]:
    embedder = WordsEmbedder()
    index = SearchIndex(embedder.tag, colour_rows())
    with api(embedder, index) as client:
        yield client, index


def problem(response: Any, status: int) -> str:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"detail"} and "\n" not in body["detail"]
    return str(body["detail"])


def test_the_route_answers_results_best_first_with_the_window_passed_through(clip: Any) -> None:
    client, index = clip
    body = {"text": "blue", "k": 2, "prefix": "b", "since": "2026-01-01T00:00:00Z", "until": "2026-02-01T00:00:00"}
    response = client.post("/v1/search/text", json=body)
    assert response.status_code == 200, response.text
    doc = response.json()
    assert set(doc) == {"results", "took_ms"} and doc["took_ms"] >= 0
    assert [r["key"] for r in doc["results"]] == ["blue.png", "blue-red.png"]
    assert set(doc["results"][0]) == {"key", "bucket", "score", "etag", "size", "content_type", "uploaded_at"}
    since, until = datetime(2026, 1, 1, tzinfo=timezone.utc), datetime(2026, 2, 1)
    assert index.filters == [Window("b", since, until, bucket="images").expression()]
    assert client.post("/v1/search/text", json={"text": "red"}).json()["results"][0]["key"] == "red.png"
    assert len(client.post("/v1/search/text", json={"text": "red"}).json()["results"]) == 6  # k=10, 6 rows


@pytest.mark.parametrize(
    ("body", "start"),
    [
        ({"text": ""}, "text: String should have at least 1 character"),
        ({"text": " \t\n "}, "text: is only whitespace"),
        ({}, "text: Field required"),
        ({"text": 5}, "text: Input should be a valid string"),
        ({"text": "red", "k": 0}, "k: Input should be greater than or equal to 1"),
        ({"text": "red", "k": 101}, "k: Input should be less than or equal to 100"),
        ({"text": "red", "k": "5"}, "k: Input should be a valid integer"),
        ({"text": "red", "since": 12345}, "since: must be an ISO 8601 date-time string"),
        ({"text": "red", "since": "2026-02-01T00:00:00Z", "until": "2026-01-01T00:00:00Z"}, "since: must not be after"),
        ({"text": "red", "prefix": "p" * 1025}, "prefix: String should have at most 1024 characters"),
    ],
)
def test_bad_bodies_get_a_one_line_422(clip: Any, body: dict[str, Any], start: str) -> None:
    client, index = clip
    assert problem(client.post("/v1/search/text", json=body), 422).startswith(start)
    assert index.filters == []


def test_a_body_that_is_no_json_is_the_documented_400(clip: Any) -> None:
    client, index = clip
    response = client.post("/v1/search/text", content=b"\xff{", headers={"Content-Type": "application/json"})
    assert problem(response, 400) == "There was an error parsing the body" and index.filters == []


def test_text_over_the_context_is_a_422_naming_the_count_and_the_limit(clip: Any) -> None:
    client, index = clip
    detail = problem(client.post("/v1/search/text", json={"text": LONG}), 422)
    assert (
        detail.startswith("text: ")
        and f"is {CONTEXT + 1} tokens;" in detail
        and f"reads at most {CONTEXT - 2} " in detail
    )
    assert index.filters == []


def test_a_timm_index_answers_409_naming_the_model_and_the_reindex() -> None:
    embedder = WordsEmbedder(text=False)
    index = SearchIndex(embedder.tag, colour_rows())
    with api(embedder, index) as client:
        detail = problem(client.post("/v1/search/text", json={"text": "red"}), 409)
        assert detail == images_only("mobilenetv2_100")
        assert problem(client.post("/v1/search/text", json={"text": " "}), 422).startswith("text:")  # body first


def test_with_nothing_indexed_the_text_is_still_checked_by_the_loaded_model() -> None:
    embedder = WordsEmbedder()
    with api(embedder, SearchIndex(embedder.tag, indexed=False)) as client:
        ok = client.post("/v1/search/text", json={"text": "red"})
        assert ok.status_code == 200 and ok.json()["results"] == []
        assert embedder.embedded == []  # checked by the tokenizer only: with nothing to search, no model call
        assert "reads at most" in problem(client.post("/v1/search/text", json={"text": LONG}), 422)
    cnn = WordsEmbedder(text=False)
    with api(cnn, SearchIndex(cnn.tag, indexed=False)) as client:
        assert "embeds images only" in problem(client.post("/v1/search/text", json={"text": "red"}), 409)


def test_milvus_down_is_the_503_of_every_route() -> None:
    embedder = WordsEmbedder()
    with api(embedder, SearchIndex(embedder.tag, down=True)) as client:
        assert problem(client.post("/v1/search/text", json={"text": "red"}), 503).startswith("milvus unavailable")


def test_the_openapi_document_describes_the_route_and_its_refusals(clip: Any) -> None:
    client, _ = clip
    doc = client.get("/openapi.json").json()
    op = doc["paths"]["/v1/search/text"]["post"]
    assert {"200", "400", "401", "409", "422", "503"} <= set(op["responses"])
    assert "reindex" in op["responses"]["409"]["description"]
    assert "token count" in op["responses"]["422"]["description"]
    schema = op["requestBody"]["content"]["application/json"]["schema"]["$ref"].rsplit("/", 1)[1]
    fields = doc["components"]["schemas"][schema]["properties"]
    assert set(fields) == {"text", "k", "prefix", "since", "until"}
    assert (fields["k"]["minimum"], fields["k"]["maximum"], fields["k"]["default"]) == (1, 100, 10)
    assert fields["prefix"]["maxLength"] == 1024 and doc["components"]["schemas"][schema]["required"] == ["text"]
    assert (
        client.post("/v1/search/text", json={"text": "red"}, headers={"Authorization": "Bearer no"}).status_code == 401
    )


# ---------------------------------------------------------------- the dashboard's query side
def test_the_dashboard_runs_words_and_says_why_not_in_a_sentence() -> None:
    s, index, _ = searcher()
    source = query.QuerySource.words("green")
    window = Window("g", bucket="images")
    out = query.run_text_query(lambda: s, source, 2, window)
    assert out.ok and [n.key for n in out.result.neighbours] == ["green.png", "green-blue.png"]  # type: ignore[union-attr]
    assert index.filters == [window.expression()] and source.exclude_id is None
    too_long = query.run_text_query(lambda: s, query.QuerySource.words(LONG), 2)
    assert too_long.error is not None and not too_long.transient
    assert too_long.error.startswith("Those words cannot be searched with:") and "reads at most" in too_long.error
    cnn, _, _ = searcher(text=False)
    refused = query.run_text_query(lambda: cnn, source, 2)
    assert refused.error == images_only("mobilenetv2_100")
