"""`lookalike stack up` starts the dashboard and prints its URL; `stack down` stops it."""

from __future__ import annotations

import json
import urllib.request
from pathlib import Path

import pytest

from tests.helpers import run_cli, stack_env

pytestmark = pytest.mark.integration


def test_stack_up_starts_the_dashboard_and_prints_its_url(tmp_path: Path) -> None:
    env = stack_env(tmp_path)
    port = int(env["LOOKALIKE_DASHBOARD_PORT"])
    try:
        up = run_cli(env, "stack", "up", "--workers", "0", "--no-api")  # the API has tests of its own
        assert up.returncode == 0, up.stdout + up.stderr
        assert f"dashboard  http://127.0.0.1:{port}" in up.stdout  # the "what next" block
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/_stcore/health", timeout=10) as r:
            assert r.read() == b"ok"
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=10) as r:
            assert "<title>Streamlit</title>" in r.read().decode()
        parts = {p["name"]: p for p in json.loads(run_cli(env, "stack", "status", "--json").stdout)["parts"]}
        assert parts["dashboard"]["state"] == "up"
        assert parts["dashboard"]["address"] == f"http://127.0.0.1:{port}"
        dashboard_pid = parts["dashboard"]["pid"]
    finally:
        down = run_cli(env, "stack", "down")
    assert down.returncode == 0, down.stderr
    assert "dashboard  stopped" in down.stdout
    assert (
        not Path(f"/proc/{dashboard_pid}").exists() or "Z" in Path(f"/proc/{dashboard_pid}/stat").read_text().split()[2]
    )
