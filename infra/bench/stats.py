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
STAGE_ORDER = ("poll", "parse", "lookup", "fetch", "decode", "infer", "target", "dedupe", "write", "dlq", "commit")

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
    "worker_ready_s",
    "worker_cpu_ms_per_image",
    "floor_cpu_ms_per_image",
    "cpu_overhead_ratio",
)
# What ``--photos`` adds (``servers_cpu_ms_per_image`` is an object by part, checked on its own).
PHOTO_KEYS = ("photo_compute_floor_ips", "photo_ingest_ips", "photo_ingest_ratio", "photo_freshness_p95_s")


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
# issue 20's targets (servers on the same 2 cores as the worker)
CPU_OVERHEAD_MAX, INGEST_RATIO_MIN, SPEEDUP_MIN = 1.10, 0.65, 2.0
FRESHNESS_MAX_S, QUERY_OVER_MODEL_MS, DEDUPE_MAX_MS = 0.5, 20.0, 2.0
PHOTO_SHARE_MIN, PHOTO_FRESHNESS_MAX_S = 0.5, 1.5
WORKER_RSS_MAX_MB, WORKER_READY_MAX_S = 350.0, 3.0  # issue 20: no torch on the serving path


@dataclass(frozen=True)
class Target:
    key: str
    label: str
    met: bool | None  # None: not measurable (a figure is missing)
    goal: str


def _query_target(q50: float | None, single: float | None) -> Target:
    """A query costs the model plus little: ``query_p50_ms <= model_single_ms + QUERY_OVER_MODEL_MS``."""
    limit = f"<= model_single_ms + {QUERY_OVER_MODEL_MS:g}"
    return Target(
        "query_p50_ms",
        "query p50 vs model alone",
        None if q50 is None or single is None else q50 <= single + QUERY_OVER_MODEL_MS,
        f"{limit} = {single + QUERY_OVER_MODEL_MS:.1f} ms" if single is not None else limit,
    )


def targets(report: Mapping[str, Any]) -> list[Target]:
    """The issue's targets, judged on a report (NaN/None figures give ``met=None``).

    The photo targets are judged only when the report has the photo run (``--photos``).
    """

    def num(key: str) -> float | None:
        value = report.get(key)
        if value is None or (isinstance(value, float) and math.isnan(value)):
            return None
        return float(value)

    def at_most(key: str, label: str, limit: float, unit: str = "") -> Target:
        v = num(key)
        return Target(key, label, None if v is None else v <= limit, f"<= {limit:g}{unit}")

    def at_least(key: str, label: str, limit: float) -> Target:
        v = num(key)
        return Target(key, label, None if v is None else v >= limit, f">= {limit:g}")

    out = [
        at_most("cpu_overhead_ratio", "worker CPU / floor CPU per image", CPU_OVERHEAD_MAX),
        at_least("ingest_ratio", "ingest / compute floor", INGEST_RATIO_MIN),
        at_most("freshness_p95_s", "freshness p95", FRESHNESS_MAX_S, " s"),
        at_most("dedupe_ms_per_image", "near-duplicate marking per image", DEDUPE_MAX_MS, " ms"),
        _query_target(num("query_p50_ms"), num("model_single_ms")),
        at_least("speedup_vs_seed", "speedup over the tutorial", SPEEDUP_MIN),
        at_most("worker_peak_rss_mb", "worker peak RSS", WORKER_RSS_MAX_MB, " MB"),
        at_most("worker_ready_s", "worker spawn -> ready", WORKER_READY_MAX_S, " s"),
    ]
    if "photo_ingest_ips" in report:
        photo, thumbs = num("photo_ingest_ips"), num("ingest_ips")
        out += [
            Target(
                "photo_ingest_ips",
                "photo ingest vs thumbnails",
                None if photo is None or thumbs is None else photo >= PHOTO_SHARE_MIN * thumbs,
                f">= {PHOTO_SHARE_MIN:g} x ingest_ips"
                + (f" = {PHOTO_SHARE_MIN * thumbs:.1f} img/s" if thumbs is not None else ""),
            ),
            at_most("photo_freshness_p95_s", "photo freshness p95", PHOTO_FRESHNESS_MAX_S, " s"),
        ]
    return out


_ROWS: tuple[tuple[str, str, str], ...] = (
    ("compute_floor_ips", "(a) compute floor", "img/s"),
    ("ingest_ips", "(b) ingest throughput", "img/s"),
    ("ingest_ratio", "(b)/(a) ingest ratio", ""),
    ("worker_ready_s", "    worker spawn -> ready", "s"),
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
    ("worker_cpu_ms_per_image", "(g) worker CPU per image, (b)", "ms"),
    ("floor_cpu_ms_per_image", "(g) floor CPU per image, (a)", "ms"),
    ("cpu_overhead_ratio", "(g) worker / floor CPU", ""),
    ("photo_compute_floor_ips", "(p) photo compute floor", "img/s"),
    ("photo_ingest_ips", "(p) photo ingest throughput", "img/s"),
    ("photo_ingest_ratio", "(p) photo ingest ratio", ""),
    ("photo_freshness_p95_s", "(p) photo freshness p95", "s"),
    ("photo_worker_cpu_ms_per_image", "(p) photo worker CPU per image", "ms"),
    ("photo_floor_cpu_ms_per_image", "(p) photo floor CPU per image", "ms"),
    ("photo_cpu_overhead_ratio", "(p) photo worker / floor CPU", ""),
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
    for prefix in ("", "photo_"):
        servers = report.get(f"{prefix}servers_cpu_ms_per_image") or {}
        if servers:
            parts = ", ".join(f"{k} {_fmt(v)}" for k, v in servers.items())
            what = "photos: servers'" if prefix else "servers'"
            lines.append(f"{what} CPU per image during (b), ms: {parts}")
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
