"""dashboard.access and the login gate: the password, and the uploader's limit."""

from __future__ import annotations

import pytest
from pydantic import SecretStr
from streamlit.testing.v1 import AppTest

from dashboard import access
from dashboard.cli import streamlit_command
from tests.conftest import make_settings
from tests.dashboard.sample import APP, use_settings
from tests.helpers import free_port


def test_password_is_compared_exactly_and_empty_means_no_login() -> None:
    secret = SecretStr("correct horse")
    assert access.login_required(secret) and not access.login_required(SecretStr(""))
    assert access.password_matches("correct horse", secret)
    for wrong in ("", "correct", "correct horse ", "Correct horse"):
        assert not access.password_matches(wrong, secret), wrong
    assert not access.password_matches("", SecretStr("")), "no password configured lets nobody in by this check"


@pytest.mark.parametrize(
    ("max_bytes", "mb"), [(52_428_800, 50), (52_428_801, 51), (1, 1), (3 * 1024 * 1024 // 2, 2), (0, 1)]
)
def test_upload_limit_is_the_smallest_whole_mib_holding_the_object_limit(max_bytes: int, mb: int) -> None:
    assert access.upload_limit_mb(max_bytes) == mb
    cmd = streamlit_command("app.py", 8501, "127.0.0.1", max_bytes)
    assert cmd[cmd.index("--server.maxUploadSize") + 1] == str(mb)


def _dead_stack() -> dict[str, str]:
    return {
        "s3_endpoint": f"http://127.0.0.1:{free_port()}",
        "kafka_bootstrap": f"127.0.0.1:{free_port()}",
        "milvus_uri": f"http://127.0.0.1:{free_port()}",
    }


def test_the_page_shows_nothing_until_the_password_is_given(monkeypatch: pytest.MonkeyPatch) -> None:
    settings = make_settings(_dead_stack(), dashboard_password="s3cret-pass")
    use_settings(monkeypatch, settings)
    at = AppTest.from_file(APP, default_timeout=60)
    at.run()
    assert not at.exception
    assert not at.tabs and not at.caption, "nothing but the login form before sign-in"
    assert settings.bucket not in str([m.value for m in at.markdown])
    at.text_input(key="password").input("wrong")
    at.button[0].click()
    at.run()
    assert [e.value for e in at.error] == ["Wrong password."] and not at.tabs
    at.text_input(key="password").input("s3cret-pass")
    at.button[0].click()
    at.run()
    assert not at.exception
    assert [t.label for t in at.tabs] == ["Search", "Live index", "Duplicates"]
    at.run()  # signed in for the rest of the session
    assert len(at.tabs) == 3


def test_without_a_password_the_page_opens_at_once(monkeypatch: pytest.MonkeyPatch) -> None:
    use_settings(monkeypatch, make_settings(_dead_stack()))
    at = AppTest.from_file(APP, default_timeout=60)
    at.run()
    assert not at.exception and len(at.tabs) == 3
    assert "password" not in [t.key for t in at.text_input]
