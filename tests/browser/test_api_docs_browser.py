"""``/docs`` renders in headless Chromium with every request off this machine refused (offline).

The API runs in-process on a free port without its lifespan (no model, no Milvus: the docs page
needs neither); any request to another host is aborted, as on a server with no internet access.
Swagger UI must then still draw every route of the OpenAPI 3.1 document.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import uvicorn

from dashboard.api.app import create_app
from lookalike.settings import Settings
from tests.helpers import REPO, free_port, wait_for
from tests.unit.fakes import FakeEmbedder

pytestmark = pytest.mark.browser

CHROMIUM = "/usr/bin/chromium"
ARTIFACTS = REPO / "test-artifacts"


@pytest.fixture()
def api_url() -> Iterator[str]:
    settings = Settings(_env_file=None, api_token="t")  # type: ignore[call-arg]
    app = create_app(settings, embedder=FakeEmbedder())  # type: ignore[arg-type]
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, lifespan="off", log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        wait_for(lambda: server.started, 30, what="the API to listen")
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)


@pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="needs Debian's chromium at /usr/bin/chromium")
def test_docs_draw_every_route_with_no_internet(api_url: str) -> None:
    from playwright.sync_api import Route, expect, sync_playwright

    refused: list[str] = []

    def offline(route: Route) -> None:
        if route.request.url.startswith(api_url):
            route.continue_()
        else:
            refused.append(route.request.url)
            route.abort()

    ARTIFACTS.mkdir(exist_ok=True)
    with sync_playwright() as pw:
        browser = pw.chromium.launch(
            executable_path=CHROMIUM,
            args=["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"],
        )
        try:
            page = browser.new_page()
            page.route("**/*", offline)
            page.goto(f"{api_url}/docs")
            expect(page.locator(".opblock").first).to_be_visible(timeout=30_000)
            paths = page.locator(".opblock-summary-path").all_inner_texts()
            page.screenshot(path=str(ARTIFACTS / "api-docs.png"), full_page=True)
        finally:
            browser.close()
    assert refused == []  # the page asked for nothing off this machine
    joined = " ".join(paths).replace("\u200b", "")
    assert "/v1/search" in joined and "/v1/duplicates" in joined, paths
