"""The page's small faults of issue 25, in Streamlit's AppTest: no empty "Query" heading after a bad
upload; result cards keep keys on one line and let the duplicate badge wrap (the page's CSS)."""

from __future__ import annotations

import pytest
from streamlit.testing.v1 import AppTest

from dashboard import app
from tests.conftest import make_settings
from tests.dashboard.sample import APP, use_settings
from tests.helpers import free_port


def test_a_bad_upload_leaves_no_empty_query_heading(monkeypatch: pytest.MonkeyPatch) -> None:
    dead = {
        "s3_endpoint": f"http://127.0.0.1:{free_port()}",
        "kafka_bootstrap": f"127.0.0.1:{free_port()}",
        "milvus_uri": f"http://127.0.0.1:{free_port()}",
    }
    use_settings(monkeypatch, make_settings(dead))
    at = AppTest.from_file(APP, default_timeout=120)
    at.run()
    at.file_uploader(key="upload").set_value(("notes.txt", b"just some text", "text/plain"))
    at.run()
    assert not at.exception, at.exception
    search = at.tabs[0]
    assert [w.value for w in search.warning] and "not an image" in search.warning[0].value
    assert "Query" not in [h.value for h in search.subheader]


def test_cards_keep_keys_on_one_line_and_badges_whole() -> None:
    css = " ".join(app.CARD_CSS.split())
    assert '[class*="st-key-result-"] [data-testid="stImageCaption"] * { white-space: nowrap;' in css
    assert "text-overflow: ellipsis" in css
    assert '[class*="st-key-result-"] .stMarkdownBadge { white-space: normal;' in css
