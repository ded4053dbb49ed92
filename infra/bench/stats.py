"""The pure half of ``lookalike bench``: percentiles, Prometheus text, targets and the readable table.

Nothing here touches a server or the model, so all of it is unit-tested on its own; the measuring
phases (``floor``, ``ingest``, ``freshness``, ``query``, ``seed``, ``memory``) only collect numbers
and ``run`` hands them to these functions.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

# The worker's stages, in pipeline order (consumers/metrics.py names them).
STAGE_ORDER = ("poll", "parse", "lookup", "fetch", "decode", "infer", "dedupe", "write", "dlq", "commit")

REQUIRED_KEYS = (
    "compute_floor_ips",
    "ingest_ips",
    "ingest_ratio",
    "freshness_p50_s",
    "freshness_p95_s",
    "freshness_max_s",
    "query_p50_ms",
    "query_p95_ms",
    "model_single_ms",
    "seed_way_ips",
    "speedup_vs_seed",
    "worker_peak_rss_mb",
)


def percentile(values: Sequence[float], q: float) -> float:
    """The q-th percentile (0..100), linear between closest ranks (numpy's default); NaN when empty."""
    if not values:
        return math.nan
    if not 0 <= q <= 100:
        raise ValueError(f"percentile {q} is outside 0..100")
    ordered = sorted(values)
    pos = (len(ordered) - 1) * q / 100
    lo = math.floor(pos)
    hi = min(lo + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (pos - lo)


@dataclass(frozen=True)
class Summary:
    n: int
    p50: float
    p95: float
    max: float
    mean: float


def summarise(values: Sequence[float]) -> Summary:
    if not values:
        return Summary(0, math.nan, math.nan, math.nan, math.nan)
    return Summary(len(values), percentile(values, 50), percentile(values, 95), max(values), sum(values) / len(values))


def rate(count: int, seconds: float) -> float:
    """Items per second; 0 for an empty or instant interval rather than a division error."""
    return count / seconds if seconds > 0 and count > 0 else 0.0


# ---------------------------------------------------------------- Prometheus text
_SAMPLE = re.compile(r"^(?P<name>[a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(?P<labels>[^}]*)\})?\s+(?P<value>\S+)")
_LABEL = re.compile(r'(\w+)="((?:[^"\\]|\\.)*)"')


def parse_samples(text: str) -> list[tuple[str, dict[str, str], float]]:
    """Every sample line of a Prometheus text exposition as (name, labels, value); comments skipped."""
    out: list[tuple[str, dict[str, str], float]] = []
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        m = _SAMPLE.match(line)
        if m is None:
            continue
        try:
            value = float(m.group("value"))
        except ValueError:
            continue
        labels = dict(_LABEL.findall(m.group("labels") or ""))
        out.append((m.group("name"), labels, value))
    return out


@dataclass(frozen=True)
class StageTotals:
    """Seconds and observations (batches) of one stage, summed over workers."""

    seconds: float
    count: int


def stage_totals(texts: Sequence[str], metric: str = "lookalike_stage_seconds") -> dict[str, StageTotals]:
    """``<metric>_sum`` and ``_count`` by ``stage`` label, added up over the workers' /metrics texts."""
    sums: dict[str, float] = {}
    counts: dict[str, float] = {}
    for text in texts:
        for name, labels, value in parse_samples(text):
            stage = labels.get("stage")
            if stage is None:
                continue
            if name == f"{metric}_sum":
                sums[stage] = sums.get(stage, 0.0) + value
            elif name == f"{metric}_count":
                counts[stage] = counts.get(stage, 0.0) + value
    names = sorted(set(sums) | set(counts), key=_stage_rank)
    return {s: StageTotals(sums.get(s, 0.0), int(counts.get(s, 0.0))) for s in names}


def _stage_rank(stage: str) -> tuple[int, str]:
    return (STAGE_ORDER.index(stage) if stage in STAGE_ORDER else len(STAGE_ORDER), stage)


def stage_delta(after: Mapping[str, StageTotals], before: Mapping[str, StageTotals]) -> dict[str, StageTotals]:
    """What happened between two scrapes (counters only grow, so this is per phase)."""
    zero = StageTotals(0.0, 0)
    return {
        s: StageTotals(t.seconds - before.get(s, zero).seconds, t.count - before.get(s, zero).count)
        for s, t in after.items()
    }


def stage_report(totals: Mapping[str, StageTotals], wall_s: float, images: int, workers: int) -> dict[str, Any]:
    """Per stage: total seconds, batches, mean ms per batch, ms per image, and share of worker wall time.

    Fetch and decode run in a thread pool (one observation per image, overlapping), and several
    workers add up, so shares are of ``wall_s * workers`` and may sum to more than 1.
    """
    out: dict[str, Any] = {}
    capacity = wall_s * max(1, workers)
    for stage, t in totals.items():
        out[stage] = {
            "seconds": round(t.seconds, 4),
            "count": t.count,
            "mean_ms": round(t.seconds / t.count * 1000, 3) if t.count else None,
            "ms_per_image": round(t.seconds / images * 1000, 3) if images else None,
            "share_of_wall": round(t.seconds / capacity, 4) if capacity > 0 else None,
        }
    return out


# ---------------------------------------------------------------- targets and the table
@dataclass(frozen=True)
class Target:
    key: str
    label: str
    met: bool | None  # None: not measurable (a figure is missing)
    goal: str


def targets(report: Mapping[str, Any]) -> list[Target]:
    """The issue's four targets, judged on a report (NaN/None figures give ``met=None``)."""

    def num(key: str) -> float | None:
        value = report.get(key)
        if value is None or (isinstance(value, float) and math.isnan(value)):
            return None
        return float(value)

    ratio, fresh, q50, single, speed = (
        num("ingest_ratio"),
        num("freshness_p95_s"),
        num("query_p50_ms"),
        num("model_single_ms"),
        num("speedup_vs_seed"),
    )
    return [
        Target("ingest_ratio", "ingest / compute floor", None if ratio is None else ratio >= 0.90, ">= 0.90"),
        Target("freshness_p95_s", "freshness p95", None if fresh is None else fresh <= 1.0, "<= 1.0 s"),
        Target(
            "query_p50_ms",
            "query p50 vs model alone",
            None if q50 is None or single is None else q50 <= single + 30,
            f"<= model_single_ms + 30 = {single + 30:.1f} ms" if single is not None else "<= model_single_ms + 30",
        ),
        Target("speedup_vs_seed", "speedup over the tutorial", None if speed is None else speed >= 1.5, ">= 1.5"),
    ]


_ROWS: tuple[tuple[str, str, str], ...] = (
    ("compute_floor_ips", "(a) compute floor", "img/s"),
    ("ingest_ips", "(b) ingest throughput", "img/s"),
    ("ingest_ratio", "(b)/(a) ingest ratio", ""),
    ("worker_load_s", "    worker start-up (model load)", "s"),
    ("ingest_first_batch_s", "    ready -> first batch (join)", "s"),
    ("freshness_p50_s", "(c) freshness p50", "s"),
    ("freshness_p95_s", "(c) freshness p95", "s"),
    ("freshness_max_s", "(c) freshness max", "s"),
    ("freshness_indexed_at_p95_s", "    p95 by the rows' indexed_at", "s"),
    ("query_p50_ms", "(d) query p50 (embed + search)", "ms"),
    ("query_p95_ms", "(d) query p95", "ms"),
    ("query_search_p50_ms", "    of which Milvus search, p50", "ms"),
    ("query_flushed_p50_ms", "    query p50 after a flush", "ms"),
    ("model_single_ms", "(d) model alone, one image", "ms"),
    ("seed_way_ips", "(e) tutorial's way", "img/s"),
    ("speedup_vs_seed", "(e) speedup over it", "x"),
    ("worker_peak_rss_mb", "(f) worker peak RSS", "MB"),
)


def _fmt(value: Any) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    if isinstance(value, float):
        return f"{value:.3f}" if abs(value) < 10 else f"{value:.1f}"
    return str(value)


def format_table(report: Mapping[str, Any]) -> str:
    """The readable report: each figure, the targets with met/missed marks, and the stage breakdown."""
    judged = {t.key: t for t in targets(report)}
    lines = [f"{'measure':<34} {'value':>10}  {'unit':<6} target", "-" * 72]
    for key, label, unit in _ROWS:
        t = judged.get(key)
        mark = "" if t is None else f"{t.goal}  {'n/a' if t.met is None else ('MET' if t.met else 'MISSED')}"
        lines.append(f"{label:<34} {_fmt(report.get(key)):>10}  {unit:<6} {mark}".rstrip())
    stages = report.get("stages") or {}
    if stages:
        lines += ["", "worker stages during (b) ingest (summed over workers):"]
        lines.append(f"  {'stage':<8} {'seconds':>9} {'batches':>8} {'ms/batch':>9} {'ms/image':>9} {'share':>7}")
        for stage, s in stages.items():
            lines.append(
                f"  {stage:<8} {s['seconds']:>9.3f} {s['count']:>8} {_fmt(s['mean_ms']):>9} "
                f"{_fmt(s['ms_per_image']):>9} {_fmt(s['share_of_wall']):>7}"
            )
    notes = report.get("notes") or []
    if notes:
        lines += ["", *[f"note: {n}" for n in notes]]
    return "\n".join(lines)
