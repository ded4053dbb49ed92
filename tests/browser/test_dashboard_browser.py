"""The dashboard in real headless Chromium (Debian's, driven by Playwright) against the live local stack.

The dashboard runs as ``lookalike dashboard`` in a subprocess with this test's settings; the query is
dropped into the page's file uploader like a user would. Screenshots go to ``test-artifacts/``.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import open_pipeline
from tests.dashboard.sample import Sample, index_sample
from tests.helpers import CLI, REPO, child, free_port, wait_for

pytestmark = [pytest.mark.browser, pytest.mark.integration]

CHROMIUM = "/usr/bin/chromium"
ARTIFACTS = REPO / "test-artifacts"
K = 8


@pytest.fixture()
def dashboard(servers: dict[str, str], embedder: object, tmp_path: Path) -> Iterator[tuple[object, Sample, str]]:
    """An indexed sample and the dashboard serving it on a free port; both always stopped."""
    from infra.local import stack

    with open_pipeline(servers, embedder, tmp_path) as pipeline:
        sample = index_sample(pipeline)
        port = free_port()
        env = pipeline.settings.as_env()  # type: ignore[attr-defined]
        cmd = [*CLI, "dashboard", "--port", str(port)]
        log = tmp_path / "dashboard.log"
        with child(cmd, env, log, cwd=tmp_path):
            url = f"http://127.0.0.1:{port}"
            wait_for(lambda: stack.http_ok(url + "/_stcore/health"), 90, what=f"dashboard health ({log})")
            yield pipeline, sample, url


@pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="needs Debian's chromium at /usr/bin/chromium")
def test_search_in_the_browser_shows_the_query_and_same_class_neighbours(dashboard) -> None:  # type: ignore[no-untyped-def]
    from playwright.sync_api import expect

    from lookalike.search import Searcher

    pipeline, sample, url = dashboard
    key = next(k for k in sample.keys if k.startswith("Afghan_hound/"))
    query = sample.path(key)
    searcher = Searcher(pipeline.settings, embedder=pipeline.embedder)
    try:
        want = searcher.search_bytes(query.read_bytes(), k=K).neighbours
    finally:
        searcher.close()

    ARTIFACTS.mkdir(exist_ok=True)
    expect.set_options(timeout=90_000)  # the first search loads the model in the dashboard process
    with chromium_page() as page:
        page.goto(url)
        expect(page.get_by_text("Drop an image on the left")).to_be_visible()
        # Drop the file while no script run is starting. Streamlit answers the uploader's request
        # for upload URLs through the same queue that a starting run clears: a file dropped just
        # as a rerun starts (say, the one a slider change triggers) never uploads, and the page
        # waits forever. So: the page's first run is done, the file goes up, then k changes.
        _wait_until_idle(page)
        page.locator('[data-testid="stFileUploaderDropzoneInput"]').set_input_files(str(query))
        expect(page.get_by_text(re.compile(r"^\d+ nearest neighbours$"))).to_be_visible()
        _set_top_k(page, K)
        expect(page.get_by_text(f"{len(want)} nearest neighbours")).to_be_visible()
        expect(page.get_by_text(re.compile(r"Query time: \d+ ms"))).to_be_visible()
        _wait_until_idle(page)  # the run for this k has finished: no stale cards left
        _check_cards(page, want)
        # the query itself, beside the results
        shown = page.locator(".st-key-query")
        expect(shown.get_by_text(query.name, exact=True)).to_be_visible()
        wait_for(lambda: shown.locator("img").evaluate("i => i.complete && i.naturalWidth > 0"), 30, what="query")
        assert want[0].key == key and want[0].score == pytest.approx(1.0, abs=1e-3)
        assert [n.key.split("/")[0] for n in want[:4]].count("Afghan_hound") >= 3
        page.screenshot(path=str(ARTIFACTS / "dashboard-search.png"), full_page=True)
        _check_live_tab(page)


@contextmanager
def chromium_page(height: int = 1750) -> Iterator[Any]:
    """A page in Debian's headless Chromium, closed however the test ends."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(
            executable_path=CHROMIUM,
            args=["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"],
        )
        try:
            page = browser.new_page(viewport={"width": 1500, "height": height})
            page.set_default_timeout(90_000)
            yield page
        finally:
            browser.close()


def _check_cards(page: Any, want: list[Any]) -> None:
    """One card per neighbour, in rank order, with its score, key and a loaded thumbnail."""
    from playwright.sync_api import expect

    search = page.locator('[data-testid="stTabPanel"]').first
    expect(search.locator(f".st-key-result-{len(want) + 1}")).to_have_count(0)
    for rank, n in enumerate(want, 1):
        card = search.locator(f".st-key-result-{rank}")
        expect(card.get_by_text(f"#{rank} · score {n.score:.4f}")).to_be_visible()
        expect(card).to_have_count(1)
        expect(card.get_by_text(n.key, exact=True)).to_be_visible()
        img = card.locator("img")
        expect(img).to_be_visible()
        wait_for(lambda img=img: img.evaluate("i => i.complete && i.naturalWidth > 0"), 30, what=n.key)
    # every key on one line (cut with an ellipsis if need be), so no card is taller for its key
    captions = search.locator('[class*="st-key-result-"] [data-testid="stImageCaption"]')
    heights = captions.evaluate_all("cs => cs.map(c => Math.round(c.getBoundingClientRect().height))")
    assert len(heights) == len(want) and len(set(heights)) == 1, heights


def _check_live_tab(page: Any) -> None:
    """The Live index tab: the count, the dead letter of the sample's non-image, both sparklines."""
    from playwright.sync_api import expect

    page.get_by_role("tab", name="Live index").click()
    expect(page.get_by_text("Vectors indexed")).to_be_visible()
    expect(page.get_by_text("not an image").first).to_be_visible()
    # the ingest rate's line comes from the change feed at once; the lag's needs a second refresh
    charts = page.locator('[data-testid="stTabPanel"]').nth(1).locator('[data-testid="stMetricChart"]')
    expect(charts.first).to_be_visible()
    expect(charts).to_have_count(2, timeout=30_000)
    expect(charts.nth(1)).to_be_visible()
    page.screenshot(path=str(ARTIFACTS / "dashboard-live.png"), full_page=True)


def _set_top_k(page, k: int) -> None:  # type: ignore[no-untyped-def]
    """Move the Top k slider with the keyboard, as a user can."""
    slider = page.get_by_role("slider", name="Top k")
    slider.focus()
    current = int(slider.input_value())
    for _ in range(abs(current - k)):
        page.keyboard.press("ArrowLeft" if current > k else "ArrowRight")
    wait_for(lambda: slider.input_value() == str(k), 10, what="top k")
    page.locator('[data-testid="stSliderThumbValue"]').get_by_text(str(k), exact=True).wait_for()


def _wait_until_idle(page) -> None:  # type: ignore[no-untyped-def]
    """Until no script run is in progress (the live tab's own 5 s refreshes come and go)."""
    page.locator('[data-testid="stApp"][data-test-script-state="notRunning"]').wait_for()
