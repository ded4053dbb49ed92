"""Search by words on the dashboard, in real headless Chromium against the live local stack (issue 24).

One dashboard process, one index, two states: while a timm model made the index, the Search tab says
in one line why there is no box for words and how to get one; after ``reindex`` to a CLIP model
(``open_clip:ViT-S-32``, random init) the same page, reloaded, shows the box, and a typed description
gets its result cards, in the order the searcher gives in this process.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.browser.test_dashboard_browser import ARTIFACTS, CHROMIUM, _wait_until_idle, chromium_page
from tests.conftest import Pipeline, open_pipeline
from tests.helpers import CLI, child, dataset_images, free_port, wait_for

pytestmark = [pytest.mark.browser, pytest.mark.integration, pytest.mark.model]

CLIP = "open_clip:ViT-S-32"
TEXT = "a red bus in the street"
N_IMAGES = 8


@pytest.fixture()
def dashboard(servers: dict[str, str], embedder: object, tmp_path: Path) -> Iterator[tuple[Pipeline, str]]:
    """A few images indexed by the default model and the dashboard serving them; both always stopped."""
    pytest.importorskip("open_clip", reason="search by words needs open_clip: pip install '.[model]'")
    from infra.local import stack

    with open_pipeline(servers, embedder, tmp_path) as pipeline:
        s = pipeline.settings
        pipeline.start_worker()
        for i, path in enumerate(dataset_images(N_IMAGES)):
            pipeline.store.put_file(s.bucket, f"img/{i}.jpg", path, "image/jpeg")  # type: ignore[attr-defined]
        wait_for(lambda: len(pipeline.indexed()) == N_IMAGES, 120, interval=0.5, what="the images indexed")
        pipeline.stop_workers()  # a timm worker would refuse to write into the CLIP version
        port = free_port()
        log = tmp_path / "dashboard.log"
        with child([*CLI, "dashboard", "--port", str(port)], s.as_env(), log, cwd=tmp_path):  # type: ignore[attr-defined]
            url = f"http://127.0.0.1:{port}"
            wait_for(lambda: stack.http_ok(url + "/_stcore/health"), 90, what=f"dashboard health ({log})")
            yield pipeline, url


@pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="needs Debian's chromium at /usr/bin/chromium")
def test_words_box_follows_the_index_model(dashboard: tuple[Pipeline, str]) -> None:
    from playwright.sync_api import expect

    from infra.reindex import build
    from lookalike.search import Searcher

    pipeline, url = dashboard
    ARTIFACTS.mkdir(exist_ok=True)
    expect.set_options(timeout=90_000)  # the first search loads the model in the dashboard process
    with chromium_page(height=1300) as page:
        page.goto(url)
        expect(
            page.get_by_text("mobilenetv2_100 embeds images only: search by words needs a CLIP model")
        ).to_be_visible()
        expect(page.get_by_text("lookalike reindex --model open_clip:ViT-B-32")).to_be_visible()
        expect(page.get_by_label("Search by words", exact=True)).to_have_count(0)

        build.reindex(pipeline.settings, CLIP, None, False, progress=False)  # type: ignore[arg-type]
        searcher = Searcher(pipeline.settings, embedder=pipeline.embedder)  # type: ignore[arg-type]
        try:
            want = searcher.search_text(TEXT, k=12).neighbours
        finally:
            searcher.close()
        assert len(want) == N_IMAGES  # every image answers, so the loop below checks each card
        box = _words_box(page)
        box.fill(TEXT)
        box.press("Enter")
        expect(page.get_by_text(f"{len(want)} nearest neighbours")).to_be_visible()
        _wait_until_idle(page)
        expect(page.locator(".st-key-query").get_by_text(f"“{TEXT}”")).to_be_visible()
        search = page.locator('[data-testid="stTabPanel"]').first
        expect(search.locator(f".st-key-result-{len(want) + 1}")).to_have_count(0)
        for rank, n in enumerate(want, 1):
            card = search.locator(f".st-key-result-{rank}")
            expect(card.get_by_text(n.key, exact=True)).to_be_visible()
            expect(card.get_by_text(f"#{rank} · score {n.score:.4f}")).to_be_visible()
        page.screenshot(path=str(ARTIFACTS / "dashboard-text-search.png"), full_page=True)


def _words_box(page: Any) -> Any:
    """The box, once a reload sees the reindexed model (the page caches the index's model 10 s)."""
    from playwright.sync_api import expect

    from dashboard.words_panel import MODEL_TTL_S

    box = page.get_by_label("Search by words", exact=True)
    deadline = time.monotonic() + MODEL_TTL_S + 60
    while time.monotonic() < deadline:
        page.reload()
        expect(page.get_by_text("Drop an image on the left")).to_be_visible()
        _wait_until_idle(page)
        if box.count():
            return box
        time.sleep(2)
    raise AssertionError("no 'Search by words' box after the reindex to a CLIP model")
