"""The local stack's SeaweedFS part: what it binds, what it is configured with, what status says."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from infra.local import seaweed
from infra.local.status import s3_report
from lookalike.settings import Settings


def _settings(tmp_path: Path, **kw: object) -> Settings:
    return Settings(
        _env_file=None,
        s3_endpoint="http://127.0.0.1:9555",
        kafka_bootstrap="127.0.0.1:9777,127.0.0.1:9778",
        state_dir=tmp_path,
        topic="lookalike.t",
        **kw,  # type: ignore[arg-type]
    )


def test_every_listener_is_bound_to_loopback_on_a_port_of_its_own(tmp_path: Path) -> None:
    part = seaweed.seaweed_part(_settings(tmp_path))
    flags = dict(a.lstrip("-").split("=", 1) for a in part.cmd if a.startswith("-") and "=" in a)
    assert flags["ip"] == flags["ip.bind"] == "127.0.0.1" and flags["s3.port"] == "9555"
    ports = [int(v) for k, v in flags.items() if k.endswith((".port", ".port.grpc"))]
    assert len(ports) == len(set(ports)) == 8 and all(p > 0 for p in ports)  # S3 + 7 others, none default
    assert flags["s3.port.iceberg"] == flags["s3.port.lance"] == "0"  # listeners we do not use: off
    assert flags["s3.config"].startswith(str(tmp_path)) and flags["config_dir"].startswith(str(tmp_path))
    assert not list(tmp_path.iterdir()), "planning writes nothing (the secret is written at start)"
    assert part.extra["cwd"] == flags["config_dir"] and all(p.startswith("/tmp/") for p in part.extra["leaves"])
    assert "secret" not in json.dumps(part.extra) + " ".join(part.cmd)


def test_config_sends_events_to_the_topic_and_admits_only_the_configured_key(tmp_path: Path) -> None:
    settings = _settings(tmp_path, s3_access_key="ak", s3_secret_key="sk-1")
    seaweed.write_config(settings)
    home = seaweed.home(settings)
    tomllib = pytest.importorskip("tomllib")  # Python 3.11+
    kafka = tomllib.loads((home / "notification.toml").read_text())["notification"]["kafka"]
    assert kafka == {"enabled": True, "hosts": ["127.0.0.1:9777", "127.0.0.1:9778"], "topic": "lookalike.t"}
    ids = home / "s3-identities.json"
    assert ids.stat().st_mode & 0o777 == 0o600
    (identity,) = json.loads(ids.read_text())["identities"]
    assert identity["credentials"] == [{"accessKey": "ak", "secretKey": "sk-1"}]


def test_status_names_the_key_id_and_where_the_secret_comes_from(tmp_path: Path) -> None:
    local = s3_report(_settings(tmp_path))
    assert (local["endpoint"], local["bucket"], local["access_key_id"]) == (
        "http://127.0.0.1:9555",
        "images",
        "lookalike",
    )
    assert "local default" in local["secret"]
    own = s3_report(_settings(tmp_path, s3_secret_key="not-the-default"))
    assert "LOOKALIKE_S3_SECRET_KEY" in own["secret"] and "not-the-default" not in json.dumps(own)
