"""``lookalike bench``: how close the live pipeline gets to the model's own speed, in one run.

Order matters on a small machine: (a) the compute floor runs first with nothing else busy; then a
private stack starts, (b) ingest and (c) freshness run with the bench process idle except for light
polling; the workers' metrics and peak memory (f) are read, the workers stopped, and only then (d)
queries and (e) the tutorial's one-at-a-time loop run in this process.
"""

from __future__ import annotations

import logging
import math
import os
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lookalike.bench_live import BenchError, Workers, bench_stack, measure_freshness, measure_ingest, upload_all
from lookalike.bench_measures import (
    compute_floor,
    cpu_note,
    flush,
    image_files,
    model_single_ms,
    query_ms,
    seed_way,
    spread,
)
from lookalike.bench_stats import rate, stage_delta, stage_report, stage_totals, summarise, targets
from lookalike.embedder import TimmEmbedder
from lookalike.settings import Settings

log = logging.getLogger(__name__)

Say = Callable[[str], None]

# The minimums for a conforming run; smaller values are allowed (tests) and flagged.
MIN_INGEST, MIN_FRESHNESS_S, MIN_QUERIES = 500, 60.0, 100


def default_images() -> Path:
    """The tutorial's training images beside the checkout (``../shared/datasets/...``).

    Looked up next to the source tree first (an editable install, as ``infra/install.sh`` does),
    then next to the working directory (a wheel installed elsewhere, run from the checkout).
    """
    rel = Path("shared", "datasets", "reverse_image_search", "train")
    beside_source = Path(__file__).resolve().parents[2] / rel
    return beside_source if beside_source.is_dir() else Path.cwd().resolve().parent / rel


@dataclass(frozen=True)
class BenchOptions:
    images: Path
    query_images: Path | None = None
    n_ingest: int = MIN_INGEST
    freshness_s: float = MIN_FRESHNESS_S
    queries: int = MIN_QUERIES
    n_seed: int | None = None  # default: the same N as ingest
    workers: int = 1
    batch_sizes: tuple[int, ...] = (1, 8, 16, 32, 64)
    floor_trial_s: float = 3.0
    timeout_s: float = 1800.0

    def query_root(self) -> Path:
        if self.query_images is not None:
            return self.query_images
        sibling = self.images.parent / "test"
        return sibling if self.images.name == "train" and sibling.is_dir() else self.images


def run_bench(settings: Settings, env: Mapping[str, str], opts: BenchOptions, say: Say) -> dict[str, Any]:
    """Every measure of the issue; returns the report (see ``bench_stats.REQUIRED_KEYS``)."""
    files = image_files(opts.images)
    images = spread(files, opts.n_ingest, opts.images, "ingest")
    query_images = spread(image_files(opts.query_root()), min(opts.queries, 1000), opts.query_root(), "q")
    n_seed = opts.n_seed or opts.n_ingest
    report: dict[str, Any] = {
        "model": settings.model,
        "n_images_found": len(files),
        "n_ingest": opts.n_ingest,
        "workers": opts.workers,
        "partitions": settings.partitions,
        "worker_batch_size": settings.batch_size,
        "cpu_count": os.cpu_count(),
        "load_at_start": cpu_note(),
        "notes": _conformance_notes(opts, len(files)),
    }
    embedder = TimmEmbedder(settings)
    embedder.load()
    import torch

    report["torch_threads"] = torch.get_num_threads()
    say(f"(a) compute floor: decode + prepare + {settings.model} over {len(images)} in-memory images")
    trials = compute_floor(embedder, images, settings, opts.batch_sizes, opts.floor_trial_s, say)
    best = max(trials, key=lambda t: t.ips)
    report.update(
        compute_floor_ips=round(best.ips, 2),
        compute_floor_batch=best.batch_size,
        compute_floor_overlapped=best.overlapped,
        compute_floor_trials=[
            {"batch": t.batch_size, "overlapped": t.overlapped, "ips": round(t.ips, 2)} for t in trials
        ],
    )
    with bench_stack(settings, env, say) as s:
        say(f"(b) ingest: uploading {len(images)} images with no worker running")
        report["upload_s"] = round(upload_all(s, images), 2)
        workers = Workers(s, env)
        try:
            ingest = measure_ingest(s, workers, len(images), opts.timeout_s, say, opts.workers)
            ingest_ips = rate(ingest.images, ingest.ingest_s)
            report.update(
                ingest_ips=round(ingest_ips, 2),
                ingest_ratio=round(ingest_ips / best.ips, 3) if best.ips else None,
                ingest_s=round(ingest.ingest_s, 2),
                worker_load_s=round(ingest.load_s, 2),
                ingest_first_batch_s=round(ingest.first_batch_s, 2),
                ingest_ips_from_spawn=round(rate(ingest.images, ingest.ingest_s + ingest.load_s), 2),
            )
            before = stage_totals(ingest.stages_text)
            report["stages"] = stage_report(before, ingest.ingest_s, ingest.images, opts.workers)
            say(f"  {ingest.images} images in {ingest.ingest_s:.1f} s: {ingest_ips:.1f} img/s")
            workers.wait_all_ready(300)
            fresh_rate = max(0.5, ingest_ips / 2)
            say(f"(c) freshness: steady upload at {fresh_rate:.1f} img/s (half of (b)) for {opts.freshness_s:.0f} s")
            fresh = measure_freshness(s, workers, images, fresh_rate, opts.freshness_s, say)
            _freshness_into(report, fresh, fresh_rate)
            after = stage_totals(workers.metrics())
            report["stages_freshness"] = stage_report(
                stage_delta(after, before), fresh.upload_s, fresh.uploaded, opts.workers
            )
            rss = workers.peak_rss_mb()
            report["worker_rss_mb"] = [round(m, 1) for m in rss]
            report["worker_peak_rss_mb"] = round(max(rss), 1) if rss else None
        finally:
            workers.stop()
        say(f"(d) queries: {opts.queries} warm searches and {opts.queries} bare model calls")
        times = query_ms(s, embedder, query_images, opts.queries)
        q, search = summarise(times.total_ms), summarise(times.search_ms)
        single = summarise(model_single_ms(embedder, query_images, settings, opts.queries))
        report.update(
            query_p50_ms=round(q.p50, 2),
            query_p95_ms=round(q.p95, 2),
            query_search_p50_ms=round(search.p50, 2),
            model_single_ms=round(single.p50, 2),
            model_single_p95_ms=round(single.p95, 2),
            n_queries=q.n,
        )
        flush(s)  # diagnostic: the same queries once Milvus has sealed the rows
        flushed = query_ms(s, embedder, query_images, min(opts.queries, 50))
        report.update(
            query_flushed_p50_ms=round(summarise(flushed.total_ms).p50, 2),
            query_flushed_search_p50_ms=round(summarise(flushed.search_ms).p50, 2),
        )
        seed_images = spread(files, n_seed, opts.images, "seed")
        say(f"(e) the tutorial's way: {len(seed_images)} images, one towhee call and one insert each")
        seed_ips = seed_way(s, embedder, seed_images, f"{s.collection}_seed_{int(time.time())}")
    report.update(
        seed_way_ips=round(seed_ips, 2),
        seed_n=len(seed_images),
        speedup_vs_seed=round(report["ingest_ips"] / seed_ips, 2) if seed_ips else None,
        load_at_end=cpu_note(),
    )
    report["targets"] = {t.key: t.met for t in targets(report)}
    return report


def _freshness_into(report: dict[str, Any], fresh: Any, fresh_rate: float) -> None:
    polled = summarise(fresh.latencies())
    stamped = summarise(fresh.indexed_latencies())
    unseen = fresh.unseen()
    report.update(
        freshness_p50_s=_r(polled.p50),
        freshness_p95_s=_r(polled.p95),
        freshness_max_s=_r(polled.max),
        freshness_n=fresh.uploaded,
        freshness_unseen=unseen,
        freshness_rate_ips=round(fresh_rate, 2),
        freshness_achieved_ips=round(rate(fresh.uploaded, fresh.upload_s), 2),
        freshness_indexed_at_p50_s=_r(stamped.p50),
        freshness_indexed_at_p95_s=_r(stamped.p95),
    )
    if unseen:
        report["notes"].append(f"{unseen} freshness images were not searchable within the settle time")
        report["freshness_max_s"] = None
    if not polled.n:
        raise BenchError("no freshness image became searchable")


def _r(value: float, digits: int = 3) -> float | None:
    return None if math.isnan(value) else round(value, digits)


def _conformance_notes(opts: BenchOptions, found: int) -> list[str]:
    notes = []
    if opts.n_ingest < MIN_INGEST:
        notes.append(f"--n-ingest {opts.n_ingest} is below the issue's {MIN_INGEST}")
    if opts.freshness_s < MIN_FRESHNESS_S:
        notes.append(f"--freshness-seconds {opts.freshness_s:g} is below the issue's {MIN_FRESHNESS_S:g}")
    if opts.queries < MIN_QUERIES:
        notes.append(f"--queries {opts.queries} is below the issue's {MIN_QUERIES}")
    if found < opts.n_ingest:
        notes.append(f"only {found} image files: keys repeat them with a -rK suffix")
    return notes
