"""``/docs`` works offline: the Swagger UI page names only assets this API serves itself."""

from __future__ import annotations

import re
from typing import Any

import pytest
from fastapi.testclient import TestClient

from dashboard.api.app import create_app
from lookalike.settings import Settings
from tests.unit.fakes import FakeEmbedder


@pytest.fixture(scope="module")
def client() -> Any:
    """The real app, without its lifespan (no model load, no Milvus): docs need neither."""
    settings = Settings(_env_file=None, api_token="t")  # type: ignore[call-arg]
    return TestClient(create_app(settings, embedder=FakeEmbedder()))  # type: ignore[arg-type]


def referenced(html: str) -> list[str]:
    """Every URL the page loads: src/href attributes and quoted URLs in its inline script."""
    attrs = re.findall(r"""(?:src|href)=["']([^"']+)["']""", html)
    quoted = re.findall(r"""["']((?:https?:)?//[^"']+|/[^"'\s]*)["']""", html)
    return sorted(set(attrs) | set(quoted))


def test_docs_references_only_local_assets(client: Any) -> None:
    page = client.get("/docs")
    assert page.status_code == 200 and "swagger" in page.text.lower()
    urls = referenced(page.text)
    assert "/docs/assets/swagger-ui-bundle.js" in urls and "/docs/assets/swagger-ui.css" in urls
    assert "/openapi.json" in urls
    remote = [u for u in urls if "//" in u or not u.startswith("/")]
    assert remote == [], f"/docs loads from elsewhere: {remote}"
    assert "cdn" not in page.text.lower()


def test_every_asset_the_page_names_is_served(client: Any) -> None:
    for url in referenced(client.get("/docs").text):
        answer = client.get(url)
        assert answer.status_code == 200, url
        assert len(answer.content) > 100, url
    assert (
        client.get("/docs/assets/swagger-ui-bundle.js")
        .headers["content-type"]
        .startswith(("application/javascript", "text/javascript"))
    )


def test_docs_need_no_token_and_v1_still_does(client: Any) -> None:
    assert client.get("/docs/assets/swagger-ui.css").status_code == 200
    assert client.get("/v1/objects/x").status_code == 401
