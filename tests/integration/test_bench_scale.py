"""``lookalike bench --scale`` at a small N on the test servers: every key, a sane recall, nothing left."""

from __future__ import annotations

import pytest

from infra.bench.scale import SCALE_KEYS, run_scale
from lookalike.index import VectorIndex
from tests.conftest import make_settings

pytestmark = pytest.mark.integration


def test_scale_bench_reports_every_key_and_recall_and_drops_its_collection(servers) -> None:  # type: ignore[no-untyped-def]
    settings = make_settings(servers)
    before = set(VectorIndex(settings).collections())
    report = run_scale(settings, settings.as_env(), 2_000, say=lambda _: None, queries=40)
    assert all(report.get(k) is not None for k in SCALE_KEYS), report
    assert 50 < report["scale_server_rss_mb"] < 20_000  # the test's Milvus Lite, found by its listening port
    assert report["scale_rows"] == 2_000
    assert report["scale_recall_at_10"] >= 0.9
    assert report["scale_upsert_rows_per_s"] > 0 and report["scale_search_p95_ms"] >= report["scale_search_p50_ms"]
    assert [s["rows"] for s in report["scale_steps"]] == [2_000]
    assert [e["ef"] for e in report["scale_ef_sweep"]] == [32, 64, 128, 256, 512]
    sweep = report["scale_ef_sweep"]
    assert sweep[-1]["recall_at_10"] >= max(0.9, sweep[0]["recall_at_10"]), sweep  # a wider search finds more
    assert [c["consistency"] for c in report["scale_consistency_sweep"]] == ["Strong", "Bounded"]
    assert set(VectorIndex(settings).collections()) == before  # dropped afterwards
