"""The Duplicates tab in real headless Chromium against the live local stack.

An image and an edited copy of it (mirrored, brighter, re-encoded) go through the real pipeline
(bucket -> bridge -> Kafka -> worker -> Milvus); the worker marks the copy, and the tab must show the
two side by side in one group, thumbnails loaded, with the copy naming its original.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.browser.test_dashboard_browser import ARTIFACTS, CHROMIUM, _wait_until_idle, chromium_page
from tests.conftest import open_pipeline
from tests.dashboard.sample import DUP_THRESHOLD, DuplicateSample, index_duplicates
from tests.helpers import CLI, child, free_port, wait_for

pytestmark = [pytest.mark.browser, pytest.mark.integration]


@pytest.fixture()
def dashboard(servers: dict[str, str], embedder: object, tmp_path: Path) -> Iterator[tuple[DuplicateSample, str]]:
    """Near-duplicates indexed and the dashboard serving them on a free port; both always stopped."""
    from infra.local import stack

    with open_pipeline(servers, embedder, tmp_path, duplicate_threshold=DUP_THRESHOLD) as pipeline:
        sample = index_duplicates(pipeline)
        port = free_port()
        env = pipeline.settings.as_env()
        log = tmp_path / "dashboard.log"
        with child([*CLI, "dashboard", "--port", str(port)], env, log, cwd=tmp_path):
            url = f"http://127.0.0.1:{port}"
            wait_for(lambda: stack.http_ok(url + "/_stcore/health"), 90, what=f"dashboard health ({log})")
            yield sample, url


@pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="needs Debian's chromium at /usr/bin/chromium")
def test_duplicates_tab_groups_an_image_with_its_edited_copy(dashboard, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from playwright.sync_api import expect

    sample, url = dashboard
    ARTIFACTS.mkdir(exist_ok=True)
    expect.set_options(timeout=90_000)
    with chromium_page(height=1300) as page:
        page.goto(url)
        expect(page.get_by_text("Drop an image on the left")).to_be_visible()
        _wait_until_idle(page)  # the first run is done before the tab changes
        page.get_by_role("tab", name="Duplicates").click()
        _check_groups(page.locator('[data-testid="stTabPanel"]').nth(2), sample)
        page.screenshot(path=str(ARTIFACTS / "dashboard-duplicates.png"), full_page=True)

        # a search with the copy: it finds itself first, with the badge naming its original
        copy, original = next(iter(sample.copies.items()))
        query = tmp_path / "copy.jpg"
        query.write_bytes(sample.keys[copy])
        page.get_by_role("tab", name="Search").click()
        _wait_until_idle(page)
        page.locator('[data-testid="stFileUploaderDropzoneInput"]').set_input_files(str(query))
        first = page.locator('[data-testid="stTabPanel"]').first.locator(".st-key-result-1")
        expect(first.get_by_text(copy, exact=True)).to_be_visible()
        badge = first.locator(".stMarkdownBadge").filter(has_text=f"duplicate of {original}").first
        expect(badge).to_be_visible()
        # the whole name shows: the badge wraps in the card rather than cutting the key off with "…"
        assert badge.evaluate("b => b.scrollWidth <= b.clientWidth + 1"), badge.inner_text()
        page.screenshot(path=str(ARTIFACTS / "dashboard-duplicate-badge.png"), full_page=True)


def _check_groups(panel: Any, sample: DuplicateSample) -> None:
    """One card per group, in order, each naming its keys, its copy's original and every thumbnail loaded."""
    from playwright.sync_api import expect

    groups = sample.groups()
    expect(panel.get_by_text("Similarity threshold")).to_be_visible()
    expect(panel.locator(f".st-key-dup-group-{len(groups) + 1}")).to_have_count(0)
    for number, keys in enumerate(groups, 1):
        card = panel.locator(f".st-key-dup-group-{number}")
        expect(card).to_have_count(1)
        expect(card.get_by_text(f"Group {number}")).to_be_visible()
        expect(card.get_by_text(f"{len(keys)} images · max distance")).to_be_visible()
        for key in keys:
            expect(card.get_by_text(key, exact=True)).to_be_visible()
        copy = next(k for k in keys if k in sample.copies)
        expect(card.get_by_text(f"copy of {sample.copies[copy]}", exact=True)).to_be_visible()
        images = card.locator("img")
        expect(images).to_have_count(len(keys))
        for i in range(len(keys)):
            img = images.nth(i)
            wait_for(lambda img=img: img.evaluate("i => i.complete && i.naturalWidth > 0"), 30, what="thumb")
