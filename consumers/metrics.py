"""Prometheus metrics of a worker: per-stage timings and per-outcome counts."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from prometheus_client import REGISTRY, Counter, Gauge, Histogram, make_wsgi_app
from prometheus_client.core import CounterMetricFamily
from prometheus_client.exposition import ThreadingWSGIServer
from prometheus_client.registry import Collector

from lookalike.milvus import CALLS

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
BISECTED = Counter(
    "lookalike_bisect_total", "Refused batch-level calls: split in halves, or one item isolated", ["stage", "step"]
)
STARTUP = Gauge(
    "lookalike_worker_startup_seconds",
    "Seconds each start-up step took: imports (process start to run), model (load), connect (Milvus, "
    "dead-letter and feed producers), join (consumer group join until partitions are assigned)",
    ["step"],
)
LAST_COMMIT = Gauge("lookalike_last_commit_timestamp_seconds", "Unix time of the last offset commit")


@contextmanager
def timed(stage: str) -> Iterator[None]:
    """Time a stage, and count the Milvus calls made inside it under the same name."""
    start = time.perf_counter()
    try:
        with CALLS.stage(stage):
            yield
    finally:
        STAGE_SECONDS.labels(stage).observe(time.perf_counter() - start)


class MilvusCalls(Collector):
    """``lookalike_milvus_calls_total{stage,method}``, read from the core's ``lookalike.milvus.CALLS``."""

    def collect(self) -> Iterator[CounterMetricFamily]:
        family = CounterMetricFamily(
            "lookalike_milvus_calls", "Milvus client calls, by worker stage and method", labels=["stage", "method"]
        )
        for (stage, method), n in sorted(CALLS.snapshot().items()):
            family.add_metric([stage, method], n)
        yield family


REGISTRY.register(MilvusCalls())


WsgiApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


def with_readyz(metrics_app: WsgiApp) -> WsgiApp:
    """``/readyz``: 200 while ``lookalike_worker_ready`` is 1, else 503; every other path: metrics.

    Kubernetes' readiness probe (infra/deploy/helm) needs a status code, not a gauge to parse."""

    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        if environ.get("PATH_INFO") != "/readyz":
            return metrics_app(environ, start_response)
        ready = REGISTRY.get_sample_value("lookalike_worker_ready") == 1
        start_response("200 OK" if ready else "503 Service Unavailable", [("Content-Type", "text/plain")])
        return [b"ready\n" if ready else b"not ready\n"]

    return app


class _Quiet(WSGIRequestHandler):
    """No access log line per probe or scrape."""

    def log_message(self, format: str, *args: Any) -> None:
        pass


def serve(port: int, host: str = "127.0.0.1") -> WSGIServer | None:
    """Expose ``/metrics`` and ``/readyz`` over HTTP in a daemon thread (port 0 disables it)."""
    if not port:
        return None
    family, _, _, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)[0]
    server_class = type("MetricsServer", (ThreadingWSGIServer,), {"address_family": family})
    app = with_readyz(make_wsgi_app())
    server: WSGIServer = make_server(str(address[0]), port, app, server_class, handler_class=_Quiet)
    threading.Thread(target=server.serve_forever, name="metrics", daemon=True).start()
    return server
