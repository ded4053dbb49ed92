"""The pure maths and text handling of ``lookalike bench``: percentiles, Prometheus text, targets, the table."""

from __future__ import annotations

import math

import pytest

from infra.bench.stats import (
    REQUIRED_KEYS,
    StageTotals,
    format_table,
    parse_samples,
    percentile,
    rate,
    stage_delta,
    stage_report,
    stage_totals,
    summarise,
    targets,
)

METRICS = """\
# HELP lookalike_stage_seconds Seconds spent per batch in each pipeline stage
# TYPE lookalike_stage_seconds histogram
lookalike_stage_seconds_bucket{le="0.001",stage="infer"} 0.0
lookalike_stage_seconds_bucket{le="+Inf",stage="infer"} 4.0
lookalike_stage_seconds_count{stage="infer"} 4.0
lookalike_stage_seconds_sum{stage="infer"} 2.5
lookalike_stage_seconds_count{stage="fetch"} 100.0
lookalike_stage_seconds_sum{stage="fetch"} 1.25
lookalike_stage_seconds_count{stage="poll"} 10.0
lookalike_stage_seconds_sum{stage="poll"} 0.5
# HELP lookalike_worker_ready 1 once the model is loaded and the consumer subscribed
# TYPE lookalike_worker_ready gauge
lookalike_worker_ready 1.0
lookalike_events_total{outcome="upsert"} 100.0
process_resident_memory_bytes 5.0e+08
"""


def test_percentile_matches_linear_interpolation() -> None:
    values = [5.0, 1.0, 3.0, 2.0, 4.0]
    assert percentile(values, 0) == 1.0
    assert percentile(values, 50) == 3.0
    assert percentile(values, 100) == 5.0
    assert percentile(values, 95) == pytest.approx(4.8)  # numpy.percentile([1..5], 95)
    assert percentile([7.0], 95) == 7.0
    assert math.isnan(percentile([], 50))
    with pytest.raises(ValueError):
        percentile(values, 101)


def test_percentile_agrees_with_numpy() -> None:
    import numpy as np

    rng = np.random.default_rng(0)
    values = rng.exponential(0.3, size=257).tolist()
    for q in (50, 90, 95, 99):
        assert percentile(values, q) == pytest.approx(float(np.percentile(values, q)))


def test_summarise_and_rate() -> None:
    s = summarise([0.1, 0.2, 0.3, 1.0])
    assert (s.n, s.max) == (4, 1.0)
    assert s.p50 == pytest.approx(0.25)
    assert s.mean == pytest.approx(0.4)
    assert summarise([]).n == 0 and math.isnan(summarise([]).p95)
    assert rate(500, 20.0) == 25.0
    assert rate(10, 0.0) == 0.0 and rate(0, 5.0) == 0.0


def test_parse_samples_reads_labels_and_skips_comments() -> None:
    samples = parse_samples(METRICS)
    assert ("lookalike_worker_ready", {}, 1.0) in samples
    assert ("lookalike_stage_seconds_bucket", {"le": "+Inf", "stage": "infer"}, 4.0) in samples
    assert ("process_resident_memory_bytes", {}, 5.0e8) in samples
    assert not any(name.startswith("#") for name, _, _ in samples)
    assert parse_samples('x{a="q\\"uote"} 2\nnot a sample line\ny NaN-ish\n') == [("x", {"a": 'q\\"uote'}, 2.0)]


def test_stage_totals_add_up_workers_in_pipeline_order() -> None:
    totals = stage_totals([METRICS, METRICS])
    assert list(totals) == ["poll", "fetch", "infer"]  # pipeline order, not text order
    assert totals["infer"] == StageTotals(5.0, 8)
    assert totals["fetch"] == StageTotals(2.5, 200)
    assert [v for n, labels, v in parse_samples(METRICS) if n == "lookalike_worker_ready" and not labels] == [1.0]


def test_stage_delta_and_report() -> None:
    before = stage_totals([METRICS])
    after = {**before, "infer": StageTotals(4.5, 6)}
    delta = stage_delta(after, before)
    assert delta["infer"] == StageTotals(2.0, 2)
    assert delta["fetch"] == StageTotals(0.0, 0)
    report = stage_report(before, wall_s=5.0, images=100, workers=1)
    assert report["infer"] == {
        "seconds": 2.5,
        "count": 4,
        "mean_ms": 625.0,
        "ms_per_image": 25.0,
        "share_of_wall": 0.5,
    }
    assert stage_report(delta, wall_s=5.0, images=0, workers=2)["fetch"]["mean_ms"] is None


def _report(**over: object) -> dict[str, object]:
    base: dict[str, object] = {
        "compute_floor_ips": 40.0,
        "ingest_ips": 37.0,
        "ingest_ratio": 0.925,
        "freshness_p50_s": 0.3,
        "freshness_p95_s": 0.4,
        "freshness_max_s": 1.4,
        "dedupe_ms_per_image": 1.5,
        "query_p50_ms": 60.0,
        "query_p95_ms": 80.0,
        "model_single_ms": 45.0,
        "seed_way_ips": 20.0,
        "speedup_vs_seed": 2.05,
        "worker_peak_rss_mb": 340.0,
        "worker_ready_s": 2.5,
        "worker_cpu_ms_per_image": 55.0,
        "floor_cpu_ms_per_image": 50.0,
        "cpu_overhead_ratio": 1.1,
    }
    base.update(over)
    return base


def test_targets_met_missed_and_unmeasured() -> None:
    assert all(t.met for t in targets(_report()))
    missed = {t.key: t.met for t in targets(_report(ingest_ratio=0.5, query_p50_ms=65.1, speedup_vs_seed=1.2))}
    assert missed == {
        "cpu_overhead_ratio": True,
        "ingest_ratio": False,
        "freshness_p95_s": True,
        "dedupe_ms_per_image": True,
        "query_p50_ms": False,
        "speedup_vs_seed": False,
        "worker_peak_rss_mb": True,
        "worker_ready_s": True,
    }
    edge = {
        t.key: t.met
        for t in targets(
            _report(
                ingest_ratio=0.65,
                freshness_p95_s=0.5,
                dedupe_ms_per_image=2.0,
                query_p50_ms=65.0,
                speedup_vs_seed=2.0,
                cpu_overhead_ratio=1.10,
                worker_peak_rss_mb=350.0,
                worker_ready_s=3.0,
            )
        )
    }
    assert all(edge.values()) and len(edge) == 8
    over = {
        t.key: t.met
        for t in targets(
            _report(ingest_ratio=0.649, speedup_vs_seed=1.99, cpu_overhead_ratio=1.101, dedupe_ms_per_image=2.01)
        )
    }
    assert not over["ingest_ratio"] and not over["speedup_vs_seed"] and not over["cpu_overhead_ratio"]
    assert not over["dedupe_ms_per_image"]
    heavy = {t.key: t.met for t in targets(_report(worker_peak_rss_mb=350.1, worker_ready_s=3.01))}
    assert not heavy["worker_peak_rss_mb"] and not heavy["worker_ready_s"]
    unknown = {t.key: t.met for t in targets(_report(freshness_p95_s=None, model_single_ms=math.nan))}
    assert unknown["freshness_p95_s"] is None and unknown["query_p50_ms"] is None


def test_table_shows_every_figure_marks_and_stages() -> None:
    report = _report(
        ingest_ratio=0.5,
        stages=stage_report(stage_totals([METRICS]), 5.0, 100, 1),
        notes=["--queries 10 is below the issue's 100"],
    )
    table = format_table(report)
    assert table.count("MET") == 6 and table.count("MISSED") == 1
    assert "0.500" in table and "37.0" in table and "340.0" in table
    assert "infer" in table and "625.0" in table
    assert "note: --queries 10" in table
    assert "n/a" in format_table(_report(seed_way_ips=None, speedup_vs_seed=None))
    assert len(REQUIRED_KEYS) == 16 and set(REQUIRED_KEYS) <= set(_report())


def test_photo_targets_only_with_the_photo_run() -> None:
    assert "photo_ingest_ips" not in {t.key for t in targets(_report())}
    half = {t.key: t.met for t in targets(_report(photo_ingest_ips=18.5, photo_freshness_p95_s=1.5))}
    assert half["photo_ingest_ips"] is True and half["photo_freshness_p95_s"] is True  # 18.5 = 0.5 x 37
    slow = {t.key: t.met for t in targets(_report(photo_ingest_ips=18.4, photo_freshness_p95_s=1.51))}
    assert slow["photo_ingest_ips"] is False and slow["photo_freshness_p95_s"] is False
    unknown = {t.key: t.met for t in targets(_report(photo_ingest_ips=None, ingest_ips=None))}
    assert unknown["photo_ingest_ips"] is None and unknown["photo_freshness_p95_s"] is None
    table = format_table(
        _report(photo_ingest_ips=10.0, photo_freshness_p95_s=0.9, servers_cpu_ms_per_image={"s3": 4.5})
    )
    assert ">= 0.5 x ingest_ips = 18.5 img/s  MISSED" in table and "s3 4.500" in table
