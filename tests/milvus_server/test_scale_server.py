"""``lookalike bench --scale`` at a small N against the real Milvus 2.3.5 server: every key, recall, and
the server's memory found by its listening port (the ``milvus`` binary, not its Python launcher)."""

from __future__ import annotations

from pathlib import Path

import pytest

from infra.bench.scale import SCALE_KEYS, run_scale
from infra.bench.server_probe import server_pid
from lookalike.index import VectorIndex
from tests.conftest import make_settings
from tests.milvus_server.conftest import FLAG, tier_enabled

pytestmark = [
    pytest.mark.milvus_server,
    pytest.mark.skipif(not tier_enabled(), reason=f"needs {FLAG}=1 inside `unshare -n` (infra/test.sh)"),
]


def test_scale_bench_runs_on_the_real_server(servers) -> None:  # type: ignore[no-untyped-def]
    settings = make_settings(servers)
    pid = server_pid(settings)
    assert pid is not None and Path(f"/proc/{pid}/exe").resolve().name == "milvus"
    before = set(VectorIndex(settings).collections())
    # few queries and no sweeps (the Milvus Lite test has them): each Strong search waits for a 200 ms tick
    report = run_scale(settings, settings.as_env(), 2_000, say=lambda _: None, queries=20, sweeps=False)
    assert all(report.get(k) is not None for k in SCALE_KEYS), report
    assert report["scale_rows"] == 2_000 and report["scale_recall_at_10"] >= 0.9
    assert 50 < report["scale_server_rss_mb"] < 20_000
    assert set(VectorIndex(settings).collections()) == before  # dropped afterwards
