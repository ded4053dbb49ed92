"""(b) Ingest: workers started on a full topic; time until every image is searchable."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

from infra.bench.workers import BenchError, Workers
from lookalike.index import VectorIndex
from lookalike.settings import Settings

Say = Callable[[str], None]


@dataclass(frozen=True)
class IngestResult:
    images: int
    load_s: float  # worker spawn -> first worker ready (model load, Kafka join, Milvus open)
    ingest_s: float  # first worker ready -> every image searchable
    first_batch_s: float  # first worker ready -> a worker's first poll with events (group join), within 0.1 s
    stages_text: list[str]
    cpu_s: dict[str, float] = field(default_factory=dict)  # by group (workers, s3, kafka, ...), ready -> done


def measure_ingest(
    settings: Settings,
    workers: Workers,
    n: int,
    timeout: float,
    say: Say,
    n_workers: int,
    cpu: Callable[[], dict[str, float]] = dict,
    base_count: int = 0,
) -> IngestResult:
    """Start the workers on a full topic; time until the collection holds all ``n`` images.

    The collection is counted only once the workers' metrics say they handled ``n`` events: on
    Milvus Lite a count scans the unflushed rows (about 0.1 ms each), and counting all along would
    take CPU from the workers being measured. Metrics are read every 0.1 s until the first batch
    and again from 90% of ``n`` on, every 0.5 s in between: a profile of the worker (py-spy) showed
    its metrics server answering the bench's scrapes at 10 Hz was 9% of the worker's CPU, which
    ``worker_cpu_ms_per_image`` would charge to the worker. Counts are asked every 0.05 s.
    ``cpu`` reads CPU seconds by process group (``cpu.cpu_by_group``); it is read when the first
    worker is ready and when the count is reached. ``base_count`` rows were there before.
    """
    workers.start(n_workers)
    ready = workers.wait_first_ready(timeout=300)
    cpu_before = cpu()
    load_s = ready - workers.spawned_at
    say(f"  first worker ready after {load_s:.1f} s; waiting for {n} images to be searchable")
    done, first_batch, cpu_after = _wait_searchable(settings, workers, n, timeout, say, cpu, base_count)
    texts = workers.metrics()
    first_batch_s = (first_batch or done) - ready
    spent = {k: max(0.0, v - cpu_before.get(k, 0.0)) for k, v in cpu_after.items()}
    return IngestResult(n, load_s, done - ready, first_batch_s, texts, spent)


def _wait_searchable(
    settings: Settings,
    workers: Workers,
    n: int,
    timeout: float,
    say: Say,
    cpu: Callable[[], dict[str, float]],
    base_count: int,
) -> tuple[float, float | None, dict[str, float]]:
    """Poll until a Strong count sees ``n`` new rows: (when that count was asked, first batch, CPU then).

    Split from ``measure_ingest`` so the scrape-and-count loop reads on its own; the pacing it
    follows is explained there."""
    index = VectorIndex(settings)
    try:
        deadline = time.monotonic() + timeout
        last_said = time.monotonic()
        count = 0
        first_batch: float | None = None
        while True:
            texts = workers.metrics()
            handled = workers.metric_sum("lookalike_events_total", texts)  # events decided (upsert, skip, dead)
            if first_batch is None and workers.metric_sum("lookalike_batch_events_count", texts):
                first_batch = time.perf_counter()
            due = handled is None or handled >= n
            if due:
                asked = time.perf_counter()  # a Strong count sees every row written before it was asked
                count = index.count() - base_count
                if count >= n:
                    return asked, first_batch, cpu()
            workers.check_alive()
            if time.monotonic() > deadline:
                raise BenchError(f"only {count} of {n} images searchable after {timeout:.0f} s")
            if time.monotonic() - last_said > 10:
                say(f"  {handled or 0:.0f}/{n} events handled, {count} searchable")
                last_said = time.monotonic()
            time.sleep(0.05 if due else _scrape_interval(handled, n, first_batch is not None))
    finally:
        index.close()


def _scrape_interval(handled: float | None, n: int, started: bool) -> float:
    """Seconds to the next metrics scrape: fast around the two moments timed, slow in between."""
    return 0.1 if not started or (handled or 0) >= 0.9 * n else 0.5
