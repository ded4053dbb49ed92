"""``milvus_calls_per_batch`` and ``dedupe_ms_per_image`` from the workers' metric texts (no server)."""

from __future__ import annotations

from infra.bench.milvus_calls import calls_per_batch, freshness_figures, milvus_calls

BEFORE = """
lookalike_milvus_calls_total{method="describe_collection",stage="other"} 4.0
lookalike_milvus_calls_total{method="search",stage="dedupe"} 10.0
lookalike_batch_events_count 10.0
"""
AFTER_W1 = """
lookalike_milvus_calls_total{method="describe_collection",stage="other"} 4.0
lookalike_milvus_calls_total{method="search",stage="dedupe"} 30.0
lookalike_milvus_calls_total{method="query",stage="lookup"} 20.0
lookalike_milvus_calls_total{method="upsert",stage="write"} 20.0
lookalike_milvus_calls_total{method="flush",stage="flush"} 1.0
lookalike_batch_events_count 30.0
"""
AFTER_W2 = """
lookalike_milvus_calls_total{method="search",stage="dedupe"} 20.0
lookalike_batch_events_count 20.0
"""


def test_calls_per_batch_by_stage_over_workers_and_between_scrapes() -> None:
    after = milvus_calls([AFTER_W1, AFTER_W2])
    assert after == {"batches": 50.0, "other": 4.0, "dedupe": 50.0, "lookup": 20.0, "write": 20.0, "flush": 1.0}
    per = calls_per_batch(after, milvus_calls([BEFORE]))
    # 40 batches in between: other made no call (left out), dedupe 40 searches
    assert per == {"dedupe": 1.0, "flush": 0.025, "lookup": 0.5, "write": 0.5, "total": 2.025}


def test_no_batch_in_between_gives_none_not_a_division_error() -> None:
    per = calls_per_batch(milvus_calls([BEFORE]), milvus_calls([BEFORE]))
    assert per == {"total": None}


def test_freshness_figures_read_the_dedupe_stage() -> None:
    stages = {"dedupe": {"ms_per_image": 1.25}, "write": {"ms_per_image": 3.0}}
    out = freshness_figures(stages, milvus_calls([AFTER_W2]), milvus_calls([""]))
    assert out == {"dedupe_ms_per_image": 1.25, "milvus_calls_per_batch": {"dedupe": 1.0, "total": 1.0}}
    assert freshness_figures({}, {}, {}, prefix="photo_")["photo_dedupe_ms_per_image"] is None
