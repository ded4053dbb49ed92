"""The API as an operator meets it: its own uvicorn process, outages, an index not made yet, the CLI."""

from __future__ import annotations

import signal
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pytest

from tests.api.conftest import TOKEN, Indexed
from tests.helpers import CLI, DATASET, REPO, child, free_port, wait_for

pytestmark = pytest.mark.integration


def query_image() -> bytes:
    return sorted((DATASET / "test" / "banana").iterdir())[0].read_bytes()


def test_served_by_uvicorn_in_its_own_process(indexed: Indexed, tmp_path: Path) -> None:
    port = free_port()
    settings = indexed.settings
    key = sorted(indexed.keys)[0]
    env = settings.as_env()
    log = tmp_path / "api.log"
    base = f"http://127.0.0.1:{port}"
    with child([*CLI, "api", "--port", str(port)], env, log, cwd=REPO) as proc:

        def healthy() -> bool:
            assert proc.poll() is None, log.read_text()[-2000:]
            try:
                return httpx.get(f"{base}/healthz", timeout=2).status_code == 200
            except httpx.TransportError:
                return False

        wait_for(healthy, 180, interval=0.5, what="the API's /healthz")
        with httpx.Client(base_url=base, headers={"Authorization": f"Bearer {TOKEN}"}, timeout=60) as api:
            files = {"image": ("q.jpg", indexed.sample.path(key).read_bytes(), "image/jpeg")}
            found = api.post("/v1/search", files=files, params={"k": 3})
            assert found.status_code == 200, found.text
            assert found.json()["results"][0]["key"] == key
            assert api.get(f"/v1/objects/{quote(key)}").json()["key"] == key
            assert api.get("/v1/objects/x", headers={"Authorization": "Bearer nope"}).status_code == 401
        proc.send_signal(signal.SIGTERM)
        # uvicorn drains, runs the lifespan's shutdown, then re-raises the signal it caught
        assert proc.wait(30) in (0, -signal.SIGTERM), log.read_text()[-2000:]
    text = log.read_text()
    assert f"api: http://127.0.0.1:{port}" in text and "Application shutdown complete" in text
    assert "Traceback" not in text


def test_outages_are_503_naming_the_part(servers: dict[str, str], embedder: object) -> None:
    from fastapi.testclient import TestClient

    from dashboard.api.app import create_app
    from tests.conftest import make_settings

    dead = {"s3_endpoint": f"http://127.0.0.1:{free_port()}", "milvus_uri": f"http://127.0.0.1:{free_port()}"}
    settings = make_settings(servers, api_token=TOKEN, **dead)
    with TestClient(create_app(settings, embedder=embedder, milvus_timeout=2)) as api:  # type: ignore[arg-type]
        api.headers["Authorization"] = f"Bearer {TOKEN}"
        health = api.get("/healthz")
        assert health.status_code == 503
        parts = health.json()["parts"]
        assert not parts["s3"]["up"] and dead["s3_endpoint"] in parts["s3"]["detail"]
        assert not parts["milvus"]["up"] and dead["milvus_uri"] in parts["milvus"]["detail"]
        image = query_image()
        for response, part in (
            (api.post("/v1/search", files={"image": ("q.jpg", image)}), "milvus"),
            (api.get("/v1/objects/a/b.jpg"), "milvus"),
            (api.get("/v1/objects/a/b.jpg/similar"), "milvus"),
            (api.get("/v1/objects/a/b.jpg/image"), "s3"),
        ):
            assert response.status_code == 503, response.text
            detail = response.json()["detail"]
            assert detail.startswith(f"{part} unavailable") and "\n" not in detail


def test_before_anything_is_indexed_search_is_empty_and_objects_404(servers: dict[str, str], embedder: Any) -> None:
    from fastapi.testclient import TestClient

    from dashboard.api.app import create_app
    from tests.conftest import make_settings

    settings = make_settings(servers, api_token=TOKEN)  # a collection nobody created
    with TestClient(create_app(settings, embedder=embedder)) as api:
        api.headers["Authorization"] = f"Bearer {TOKEN}"
        image = query_image()
        response = api.post("/v1/search", files={"image": ("q.jpg", image)})
        assert response.status_code == 200 and response.json()["results"] == []
        assert api.get("/v1/objects/a.jpg").status_code == 404
        assert api.get("/v1/objects/a.jpg/similar").status_code == 404


def test_milvus_going_away_is_503_and_coming_back_is_served_again(
    servers: dict[str, str], embedder: Any, tmp_path: Path
) -> None:
    from fastapi.testclient import TestClient

    from dashboard.api.app import create_app
    from lookalike.imaging import decode_image
    from lookalike.index import VectorIndex
    from lookalike.rows import IndexRow
    from tests.conftest import make_settings
    from tests.helpers import PrivateMilvus

    image = query_image()
    with PrivateMilvus(tmp_path) as milvus:
        settings = make_settings(servers, api_token=TOKEN, milvus_uri=milvus.uri)
        index = VectorIndex(settings)
        index.open(embedder.tag)
        vector = embedder.embed([decode_image(image)])[0]
        index.upsert([IndexRow(f"{settings.bucket}/a.jpg", vector, "e", len(image), "image/jpeg", 1, 1)])
        index.close()
        with TestClient(create_app(settings, embedder=embedder, milvus_timeout=3)) as api:
            api.headers["Authorization"] = f"Bearer {TOKEN}"

            def search() -> Any:
                return api.post("/v1/search", files={"image": ("q.jpg", image)})

            assert [r["key"] for r in search().json()["results"]] == ["a.jpg"]
            milvus.stop()
            down = search()
            assert down.status_code == 503 and down.json()["detail"].startswith("milvus unavailable")
            assert api.get("/healthz").json()["parts"]["milvus"]["up"] is False
            milvus.start()
            back = wait_for(lambda: (r := search()).status_code == 200 and r, 60, interval=0.5, what="search again")
            assert [r["key"] for r in back.json()["results"]] == ["a.jpg"]


def test_an_index_of_a_model_that_cannot_load_here_is_503_not_mixed(servers: dict[str, str], embedder: Any) -> None:
    from fastapi.testclient import TestClient

    from dashboard.api.app import create_app
    from lookalike.index import VectorIndex
    from lookalike.rows import ModelTag
    from tests.conftest import make_settings

    settings = make_settings(servers, api_token=TOKEN)
    other = VectorIndex(settings)
    try:
        other.open(ModelTag("resnet50", "timm-pretrained", 2048))
        with TestClient(create_app(settings, embedder=embedder)) as api:
            api.headers["Authorization"] = f"Bearer {TOKEN}"
            response = api.post("/v1/search", files={"image": ("q.jpg", query_image())})
            # searches embed with the model the index records: here resnet50 with hub weights, which
            # cannot load offline, so the answer is a 503 naming it, never a search with another model
            assert response.status_code == 503, response.text
            detail = response.json()["detail"]
            assert detail.startswith("model: the index's model cannot be loaded"), detail
            assert "resnet50" in detail
    finally:
        other.drop()
        other.close()
