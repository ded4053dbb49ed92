"""``lookalike bench``: how close the live pipeline gets to the model's own speed, in one run.

Order matters on a small machine: (a) the compute floor runs first with nothing else busy; then a
private stack starts, (b) ingest and (c) freshness run with the bench process idle except for light
polling; the workers' metrics and peak memory (f) are read, the workers stopped, and only then (d)
queries and (e) the tutorial's one-at-a-time loop run in this process. Each phase below adds its
figures to the report (keys listed in ``stats.REQUIRED_KEYS``).
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from infra.bench.cpu import cpu_by_group, ms_per_image, overhead_ratio
from infra.bench.floor import FloorTrial, compute_floor
from infra.bench.freshness import Freshness, measure_freshness
from infra.bench.images import BenchImage, image_files, spread
from infra.bench.ingest import IngestResult, measure_ingest
from infra.bench.memory import cpu_note
from infra.bench.milvus_calls import freshness_figures, milvus_calls
from infra.bench.options import BenchOptions, conformance_notes
from infra.bench.photos import default_cache, photo_images
from infra.bench.query import flush, model_single_ms, query_ms
from infra.bench.seed import seed_way
from infra.bench.stats import StageTotals, rate, stage_delta, stage_report, stage_totals, summarise, targets
from infra.bench.workers import BenchError, Workers, bench_stack, server_pids, startup_parts, upload_all
from lookalike.embedder import Embedder, TimmEmbedder
from lookalike.index import count_rows
from lookalike.settings import Settings

Say = Callable[[str], None]


def run_bench(settings: Settings, env: Mapping[str, str], opts: BenchOptions, say: Say) -> dict[str, Any]:
    """Every measure of the issue; returns the report (see ``stats.REQUIRED_KEYS``)."""
    files = image_files(opts.images)
    images = spread(files, opts.n_ingest, opts.images, "ingest")
    query_images = spread(image_files(opts.query_root()), min(opts.queries, 1000), opts.query_root(), "q")
    report: dict[str, Any] = {
        "model": settings.model,
        "n_images_found": len(files),
        "n_ingest": opts.n_ingest,
        "workers": opts.workers,
        "partitions": settings.partitions,
        "worker_batch_size": settings.batch_size,
        "cpu_count": os.cpu_count(),
        "load_at_start": cpu_note(),
        "notes": conformance_notes(opts, len(files)),
    }
    embedder = TimmEmbedder(settings)
    embedder.load()
    report["model_threads"] = settings.threads or os.cpu_count()
    report["runtime"] = getattr(embedder, "runtime", "torch")
    photos = phase_photos(report, files, opts, say) if opts.photos else []
    floor_ips = phase_floor(report, settings, embedder, images, opts.batch_sizes, opts, say)
    photo_floor_ips = (
        phase_floor(report, settings, embedder, photos, opts.photo_batch_sizes, opts, say, "photo_") if photos else 0.0
    )
    with bench_stack(settings, env, say) as s:
        phase_live(report, s, env, images, floor_ips, opts, say)
        if photos:
            phase_live(report, s, env, photos, photo_floor_ips, opts, say, "photo_")
        phase_queries(report, s, embedder, query_images, opts, say)
        seed_ips, seed_n = phase_seed(s, embedder, files, opts, say)
    report.update(
        seed_way_ips=round(seed_ips, 2),
        seed_n=seed_n,
        speedup_vs_seed=round(report["ingest_ips"] / seed_ips, 2) if seed_ips else None,
        load_at_end=cpu_note(),
    )
    if photos:
        report["photo_vs_thumb_ingest"] = round(report["photo_ingest_ips"] / report["ingest_ips"], 3)
    report["targets"] = {t.key: t.met for t in targets(report)}
    return report


def phase_photos(report: dict[str, Any], files: list[Path], opts: BenchOptions, say: Say) -> list[BenchImage]:
    """The photo workload's images (made once, cached), and what they are in the report."""
    say(f"photos: {opts.photo_sources} x {opts.photo_megapixels:g} MP JPEGs from {opts.images} (cached)")
    photos = photo_images(
        files,
        opts.images,
        opts.photo_sources,
        opts.n_photos,
        opts.photo_megapixels,
        opts.photo_cache or default_cache(),
        say,
    )
    report.update(n_photos=len(photos), photo_sources=opts.photo_sources, photo_megapixels=opts.photo_megapixels)
    return photos


def phase_floor(
    report: dict[str, Any],
    settings: Settings,
    embedder: Embedder,
    images: Sequence[BenchImage],
    batch_sizes: Sequence[int],
    opts: BenchOptions,
    say: Say,
    prefix: str = "",
) -> float:
    """(a) the compute floor and its CPU per image; returns the best trial's images per second."""
    what = "photos" if prefix else "in-memory images"
    say(f"(a) {prefix}compute floor: decode + prepare + {settings.model} over {len(images)} {what}")
    trials = compute_floor(embedder, images, settings, batch_sizes, opts.floor_trial_s, say)
    best = max(trials, key=lambda t: t.ips)
    report.update(
        {
            f"{prefix}compute_floor_ips": round(best.ips, 2),
            f"{prefix}compute_floor_batch": best.batch_size,
            f"{prefix}compute_floor_overlapped": best.overlapped,
            f"{prefix}compute_floor_trials": [_trial(t) for t in trials],
            f"{prefix}floor_cpu_ms_per_image": ms_per_image(
                sum(t.cpu_s for t in trials), sum(t.images for t in trials)
            ),
            f"{prefix}floor_best_cpu_ms_per_image": ms_per_image(best.cpu_s, best.images),
        }
    )
    return best.ips


def _trial(t: FloorTrial) -> dict[str, Any]:
    return {
        "batch": t.batch_size,
        "overlapped": t.overlapped,
        "ips": round(t.ips, 2),
        "cpu_ms_per_image": round(t.cpu_ms_per_image, 2),
    }


def phase_live(
    report: dict[str, Any],
    s: Settings,
    env: Mapping[str, str],
    images: Sequence[BenchImage],
    floor_ips: float,
    opts: BenchOptions,
    say: Say,
    prefix: str = "",
) -> None:
    """(b) ingest, (c) freshness and (f) the workers' memory, with the bench's own worker processes.

    For photos (``prefix`` "photo_") the same on the same stack: fresh workers, whose group resumes
    after the thumbnails' committed offsets, and counts on top of the rows already there.
    """
    base_count = count_rows(s) if prefix else 0
    say(f"(b) {prefix}ingest: uploading {len(images)} images with no worker running")
    report[f"{prefix}upload_s"] = round(upload_all(s, images), 2)
    workers = Workers(s, env)
    servers = server_pids(s)
    try:
        ingest = measure_ingest(
            s,
            workers,
            len(images),
            opts.timeout_s,
            say,
            opts.workers,
            cpu=lambda: cpu_by_group({"workers": workers.pids(), **servers}),
            base_count=base_count,
        )
        ingest_ips = _ingest_into(report, ingest, floor_ips, opts.workers, prefix)
        before = stage_totals(ingest.stages_text)
        say(f"  {ingest.images} images in {ingest.ingest_s:.1f} s: {ingest_ips:.1f} img/s")
        workers.wait_all_ready(300)
        fresh_rate = max(0.5, ingest_ips / 2)
        seconds = opts.photo_freshness_s if prefix else opts.freshness_s
        say(f"(c) {prefix}freshness: steady upload at {fresh_rate:.1f} img/s (half of (b)) for {seconds:.0f} s")
        fresh = measure_freshness(s, workers, images, fresh_rate, seconds, say, key_prefix=f"{prefix}fresh")
        _freshness_into(report, fresh, fresh_rate, prefix)
        report[f"{prefix}stages_freshness"] = _stages_since(
            workers, before, fresh.upload_s, fresh.uploaded, opts.workers
        )
        calls = (milvus_calls(workers.metrics()), milvus_calls(ingest.stages_text))  # after, before (c)
        report.update(freshness_figures(report[f"{prefix}stages_freshness"], *calls, prefix=prefix))
        rss = workers.peak_rss_mb()
        report[f"{prefix}worker_rss_mb"] = [round(m, 1) for m in rss]
        report[f"{prefix}worker_peak_rss_mb"] = round(max(rss), 1) if rss else None
    finally:
        workers.stop()


def _ingest_into(
    report: dict[str, Any], ingest: IngestResult, floor_ips: float, n_workers: int, prefix: str = ""
) -> float:
    ingest_ips = rate(ingest.images, ingest.ingest_s)
    worker_ms = ms_per_image(ingest.cpu_s.get("workers", 0.0), ingest.images)
    report.update(
        {
            f"{prefix}ingest_ips": round(ingest_ips, 2),
            f"{prefix}ingest_ratio": round(ingest_ips / floor_ips, 3) if floor_ips else None,
            f"{prefix}ingest_s": round(ingest.ingest_s, 2),
            f"{prefix}worker_load_s": round(ingest.load_s, 2),
            f"{prefix}worker_ready_s": round(ingest.load_s, 2),  # issue 20's name: spawn -> model and partitions
            f"{prefix}worker_ready_parts_s": startup_parts(ingest.stages_text),
            f"{prefix}ingest_first_batch_s": round(ingest.first_batch_s, 2),
            f"{prefix}ingest_ips_from_spawn": round(rate(ingest.images, ingest.ingest_s + ingest.load_s), 2),
            f"{prefix}worker_cpu_ms_per_image": worker_ms,
            f"{prefix}cpu_overhead_ratio": overhead_ratio(worker_ms, report.get(f"{prefix}floor_cpu_ms_per_image")),
            f"{prefix}cpu_overhead_ratio_vs_best": overhead_ratio(
                worker_ms, report.get(f"{prefix}floor_best_cpu_ms_per_image")
            ),
            f"{prefix}servers_cpu_ms_per_image": {
                k: ms_per_image(v, ingest.images) for k, v in ingest.cpu_s.items() if k != "workers"
            },
            f"{prefix}ingest_cpu_busy": _busy(ingest.cpu_s, ingest.ingest_s),
        }
    )
    report[f"{prefix}stages"] = stage_report(
        stage_totals(ingest.stages_text), ingest.ingest_s, ingest.images, n_workers
    )
    return ingest_ips


def _busy(cpu_s: Mapping[str, float], wall_s: float) -> float | None:
    """Cores kept busy by the measured processes during ingest (out of ``os.cpu_count()``)."""
    return round(sum(cpu_s.values()) / wall_s, 2) if wall_s > 0 else None


def _stages_since(
    workers: Workers, before: Mapping[str, StageTotals], wall_s: float, images: int, n_workers: int
) -> dict[str, Any]:
    return stage_report(stage_delta(stage_totals(workers.metrics()), before), wall_s, images, n_workers)


def phase_queries(
    report: dict[str, Any],
    s: Settings,
    embedder: Embedder,
    query_images: Sequence[BenchImage],
    opts: BenchOptions,
    say: Say,
) -> None:
    """(d) warm searches and the bare model, then the same searches once Milvus has sealed the rows."""
    say(f"(d) queries: {opts.queries} warm searches and {opts.queries} bare model calls")
    times = query_ms(s, embedder, query_images, opts.queries)
    q, search = summarise(times.total_ms), summarise(times.search_ms)
    single = summarise(model_single_ms(embedder, query_images, s, opts.queries))
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


def phase_seed(
    s: Settings, embedder: Embedder, files: Sequence[Any], opts: BenchOptions, say: Say
) -> tuple[float, int]:
    """(e) the tutorial's way on its own collection; returns (images per second, images)."""
    seed_images = spread(files, opts.n_seed or opts.n_ingest, opts.images, "seed")
    say(f"(e) the tutorial's way: {len(seed_images)} images, one towhee call and one insert each")
    seed_ips = seed_way(s, embedder, seed_images, f"{s.collection}_seed_{int(time.time())}")
    return seed_ips, len(seed_images)


def _freshness_into(report: dict[str, Any], fresh: Freshness, fresh_rate: float, prefix: str = "") -> None:
    polled = summarise(fresh.latencies())
    stamped = summarise(fresh.indexed_latencies())
    unseen = fresh.unseen()
    figures = {
        "freshness_p50_s": _r(polled.p50),
        "freshness_p95_s": _r(polled.p95),
        "freshness_max_s": _r(polled.max),
        "freshness_n": fresh.uploaded,
        "freshness_unseen": unseen,
        "freshness_rate_ips": round(fresh_rate, 2),
        "freshness_achieved_ips": round(rate(fresh.uploaded, fresh.upload_s), 2),
        "freshness_indexed_at_p50_s": _r(stamped.p50),
        "freshness_indexed_at_p95_s": _r(stamped.p95),
    }
    report.update({f"{prefix}{k}": v for k, v in figures.items()})
    if unseen:
        report["notes"].append(f"{unseen} {prefix}freshness images were not searchable within the settle time")
        report[f"{prefix}freshness_max_s"] = None
    if not polled.n:
        raise BenchError("no freshness image became searchable")


def _r(value: float, digits: int = 3) -> float | None:
    return None if math.isnan(value) else round(value, digits)
