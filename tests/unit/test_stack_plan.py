"""The local stack's plan: which processes ``stack up`` starts, and how each of ours is launched."""

from __future__ import annotations

import sys

from infra.local import stack
from lookalike.settings import Settings


def test_our_parts_run_the_composition_root() -> None:
    parts = stack.plan(Settings(_env_file=None, metrics_port=9500), workers=2, dashboard=True)
    assert [p.name for p in parts] == ["kafka", "s3", "milvus", "worker-1", "worker-2", "dashboard"]
    ours = {p.name: p.cmd for p in parts if p.name not in ("s3", "kafka", "milvus")}
    assert all(cmd[:3] == [sys.executable, "-m", "infra.cli"] for cmd in ours.values()), ours
    assert ours["worker-2"][3:] == ["worker", "--metrics-port", "9501"]


def test_worker_part_answers_on_its_metrics_port() -> None:
    part = stack.worker_part(3, 9123)
    assert (part.name, part.address) == ("worker-3", "http://127.0.0.1:9123/metrics")
    assert part.cmd == [*stack.CLI, "worker", "--metrics-port", "9123"]


def test_private_settings_move_every_server_to_a_free_port(tmp_path) -> None:  # type: ignore[no-untyped-def]
    base = Settings(_env_file=None).scoped("bench")
    private = stack.on_free_ports(base, tmp_path)
    assert private.bucket == "bench" and private.collection == "lookalike_bench"
    for field in ("s3_endpoint", "kafka_bootstrap", "milvus_uri", "bridge_port"):
        assert getattr(private, field) != getattr(base, field), field
    assert private.state_dir == tmp_path and private.metrics_port == 0
