"""`lookalike stack up/status/down`, upload and search as a user runs them, on free ports."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import httpx
import pytest

from lookalike.errors import Unavailable
from lookalike.settings import Settings
from lookalike.store import ObjectStore
from tests.helpers import WEIGHTS, dataset_images, run_cli, stack_env, wait_for

pytestmark = pytest.mark.integration


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    stat = Path(f"/proc/{pid}/stat")
    return stat.exists() and stat.read_text().rsplit(")", 1)[-1].split()[0] != "Z"


def test_stack_up_upload_search_down(tmp_path: Path) -> None:
    env = stack_env(
        tmp_path,
        LOOKALIKE_WEIGHTS=str(WEIGHTS) if WEIGHTS.exists() else "",
        LOOKALIKE_PRETRAINED="true" if WEIGHTS.exists() else "false",
    )
    parts: dict[str, Any] = {}
    try:
        up = run_cli(env, "stack", "up", "--workers", "1", "--no-dashboard")
        assert up.returncode == 0, up.stdout + up.stderr
        parts.update(_check_status(env))
        # a second `up` is harmless: same processes
        again = run_cli(env, "stack", "up", "--workers", "1", "--no-dashboard")
        assert again.returncode == 0, again.stderr
        assert "already running" in again.stdout
        assert {p["name"]: p["pid"] for p in json.loads(run_cli(env, "stack", "status", "--json").stdout)["parts"]} == {
            n: p["pid"] for n, p in parts.items()
        }
        _upload_and_search(env, tmp_path, parts["api"]["address"])
    finally:
        down = run_cli(env, "stack", "down")
    assert down.returncode == 0, down.stderr
    for part in parts.values():
        assert not _pid_alive(part["pid"]), part
    assert not (tmp_path / "stack.json").exists()
    assert not (tmp_path / "s3").exists()  # SeaweedFS's data goes with `down` (unless --keep-data)


def _check_status(env: dict[str, str]) -> dict[str, Any]:
    """Every part up, S3 described well enough to connect and refusing the wrong keys; the parts."""
    status = json.loads(run_cli(env, "stack", "status", "--json").stdout)
    parts = {p["name"]: p for p in status["parts"]}
    assert set(parts) == {"s3", "kafka", "milvus", "worker-1", "api"}  # SeaweedFS sends events: no bridge
    assert parts["api"]["address"] == f"http://127.0.0.1:{env['LOOKALIKE_API_PORT']}"
    assert all(p["state"] == "up" for p in parts.values()), parts
    s3 = status["s3"]  # enough to connect, and where the secret comes from (never the secret itself)
    assert (s3["endpoint"], s3["bucket"], s3["access_key_id"]) == (env["LOOKALIKE_S3_ENDPOINT"], "images", "lookalike")
    assert "local default" in s3["secret"]
    anonymous = httpx.get(f"{s3['endpoint']}/images/", timeout=10)
    assert anonymous.status_code == 403, anonymous.text  # credentials are required
    wrong = ObjectStore(Settings(_env_file=None, s3_endpoint=s3["endpoint"], s3_secret_key="wrong"))  # type: ignore[call-arg]
    with pytest.raises(Unavailable, match="SignatureDoesNotMatch"):  # refused: every object alike
        wrong.buckets()
    # the configured name is an alias; the worker's start created its first version behind it
    assert status["index"]["alias"] == "lookalike_images"
    assert status["index"]["collection"] == "lookalike_images__v1"
    return parts


def _upload_and_search(env: dict[str, str], tmp_path: Path, api: str) -> None:
    """`lookalike upload`, then `lookalike search` and the API that `up` started give the same answer."""
    folder = tmp_path / "upload"
    images = dataset_images(6)
    for src in images:
        (folder / src.parent.name).mkdir(parents=True, exist_ok=True)
        (folder / src.parent.name / src.name).write_bytes(src.read_bytes())
    uploaded = run_cli(env, "upload", str(folder), "--prefix", "demo", "--quiet")
    assert uploaded.returncode == 0, uploaded.stderr

    def count() -> int | None:
        return json.loads(run_cli(env, "stack", "status", "--json").stdout)["index"]["vectors"]

    wait_for(lambda: count() == 6, 120, what="6 vectors")
    found = run_cli(env, "search", str(images[2]), "-k", "3", "--json")
    assert found.returncode == 0, found.stderr
    hits = json.loads(found.stdout)
    assert hits[0]["key"] == f"demo/{images[2].parent.name}/{images[2].name}"
    assert hits[0]["score"] == pytest.approx(1.0, abs=1e-3)
    assert [h["score"] for h in hits] == sorted((h["score"] for h in hits), reverse=True)
    answer = httpx.post(
        f"{api}/v1/search",
        params={"k": 3},
        files={"image": (images[2].name, images[2].read_bytes(), "image/jpeg")},
        headers={"Authorization": "Bearer lookalike-api-dev-token"},
        timeout=60,
    )
    assert answer.status_code == 200, answer.text
    assert [r["key"] for r in answer.json()["results"]] == [h["key"] for h in hits]
    assert httpx.post(f"{api}/v1/search", timeout=10).status_code == 401
    bad = run_cli(env, "search", str(tmp_path / "missing.jpg"))
    assert bad.returncode == 1 and "missing.jpg" in bad.stderr
