"""Milvus round trips per batch, by worker stage, from the workers' ``/metrics`` (issue 20, item 2).

The worker counts every Milvus call in one place (``lookalike.milvus.CALLS``, exported as
``lookalike_milvus_calls_total{stage,method}``); a batch is one non-empty poll
(``lookalike_batch_events_count``). Pure functions over the metric texts, so they are unit-tested.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from infra.bench.stats import parse_samples

CALLS_METRIC = "lookalike_milvus_calls_total"
BATCHES_METRIC = "lookalike_batch_events_count"


def milvus_calls(texts: Sequence[str]) -> dict[str, float]:
    """Calls by stage (summed over methods and workers), and the batches polled, under ``"batches"``."""
    out: dict[str, float] = {"batches": 0.0}
    for text in texts:
        for name, labels, value in parse_samples(text):
            if name == CALLS_METRIC:
                stage = labels.get("stage", "other")
                out[stage] = out.get(stage, 0.0) + value
            elif name == BATCHES_METRIC:
                out["batches"] += value
    return out


def calls_per_batch(after: Mapping[str, float], before: Mapping[str, float]) -> dict[str, Any]:
    """Per stage: calls made between two scrapes / batches polled between them; ``total`` beside.

    None for every stage when no batch was polled in between (nothing to divide by)."""
    batches = after.get("batches", 0.0) - before.get("batches", 0.0)
    stages = sorted(k for k in after if k != "batches")
    delta = {s: after[s] - before.get(s, 0.0) for s in stages}
    out: dict[str, Any] = {s: round(d / batches, 3) if batches > 0 else None for s, d in delta.items() if d}
    out["total"] = round(sum(delta.values()) / batches, 3) if batches > 0 else None
    return out


def freshness_figures(
    stages_freshness: Mapping[str, Any], after: Mapping[str, float], before: Mapping[str, float], prefix: str = ""
) -> dict[str, Any]:
    """``dedupe_ms_per_image`` (the dedupe stage's wall time per image of the paced run, from
    ``stages_freshness``) and ``milvus_calls_per_batch`` over the same window, keys ``prefix``-ed."""
    dedupe = stages_freshness.get("dedupe") or {}
    return {
        f"{prefix}dedupe_ms_per_image": dedupe.get("ms_per_image"),
        f"{prefix}milvus_calls_per_batch": calls_per_batch(after, before),
    }
