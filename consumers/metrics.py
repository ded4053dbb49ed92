"""Prometheus metrics of a worker: per-stage timings and per-outcome counts."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager

from prometheus_client import Counter, Gauge, Histogram, start_http_server

STAGE_SECONDS = Histogram(
    "lookalike_stage_seconds",
    "Seconds spent per batch in each pipeline stage",
    ["stage"],
    buckets=(0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30),
)
EVENTS = Counter("lookalike_events_total", "Events handled, by outcome", ["outcome"])
BATCH_SIZE = Histogram("lookalike_batch_events", "Events per batch", buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256))
READY = Gauge("lookalike_worker_ready", "1 once the model is loaded and the consumer subscribed")
UNAVAILABLE = Gauge("lookalike_service_unavailable", "1 while a service is failing", ["service"])
LAST_COMMIT = Gauge("lookalike_last_commit_timestamp_seconds", "Unix time of the last offset commit")


@contextmanager
def timed(stage: str) -> Iterator[None]:
    start = time.perf_counter()
    try:
        yield
    finally:
        STAGE_SECONDS.labels(stage).observe(time.perf_counter() - start)


def serve(port: int, host: str = "127.0.0.1") -> None:
    """Expose ``/metrics`` over HTTP (port 0 disables it)."""
    if port:
        start_http_server(port, addr=host)
