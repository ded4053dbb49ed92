"""`lookalike stack up` starts the dashboard and prints its URL; `stack down` stops it."""

from __future__ import annotations

import json
import os
import subprocess
import urllib.request
from pathlib import Path

import pytest

from tests.helpers import PYTHON, free_port

pytestmark = pytest.mark.integration


def _cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [PYTHON, "-m", "lookalike", *args],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=300,
        cwd=env["LOOKALIKE_STATE_DIR"],
    )


def test_stack_up_starts_the_dashboard_and_prints_its_url(tmp_path: Path) -> None:
    port = free_port()
    env = {
        "LOOKALIKE_STATE_DIR": str(tmp_path),
        "LOOKALIKE_S3_ENDPOINT": f"http://127.0.0.1:{free_port()}",
        "LOOKALIKE_KAFKA_BOOTSTRAP": f"127.0.0.1:{free_port()}",
        "LOOKALIKE_MILVUS_URI": f"http://127.0.0.1:{free_port()}",
        "LOOKALIKE_BRIDGE_PORT": str(free_port()),
        "LOOKALIKE_DASHBOARD_PORT": str(port),
    }
    try:
        up = _cli(env, "stack", "up", "--workers", "0")
        assert up.returncode == 0, up.stdout + up.stderr
        assert f"dashboard: http://127.0.0.1:{port}" in up.stdout
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/_stcore/health", timeout=10) as r:
            assert r.read() == b"ok"
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=10) as r:
            assert "<title>Streamlit</title>" in r.read().decode()
        parts = {p["name"]: p for p in json.loads(_cli(env, "stack", "status", "--json").stdout)["parts"]}
        assert parts["dashboard"]["state"] == "up"
        assert parts["dashboard"]["address"] == f"http://127.0.0.1:{port}"
        dashboard_pid = parts["dashboard"]["pid"]
    finally:
        down = _cli(env, "stack", "down")
    assert down.returncode == 0, down.stderr
    assert "dashboard  stopped" in down.stdout
    assert (
        not Path(f"/proc/{dashboard_pid}").exists() or "Z" in Path(f"/proc/{dashboard_pid}/stat").read_text().split()[2]
    )
