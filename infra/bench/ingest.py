"""The through-the-stack measures of ``lookalike bench``: (b) ingest, (c) freshness, worker metrics and memory.

Everything runs on a private stack (``eval_pipeline.private_stack`` plus a bridge) so the bench never
touches the user's bucket or index. Workers are real ``python -m lookalike worker`` processes; the
bench reads their ``/metrics`` for readiness and per-stage timings and their ``/proc`` status for
peak memory.
"""

from __future__ import annotations

import contextlib
import logging
import math
import sys
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from lookalike.bench_measures import BenchImage, peak_rss_mb
from lookalike.errors import LookalikeError
from lookalike.index import VectorIndex
from lookalike.settings import Settings
from lookalike.store import ObjectStore

if TYPE_CHECKING:
    from infra.stack import Part

log = logging.getLogger(__name__)

Say = Callable[[str], None]


class BenchError(LookalikeError):
    """The bench could not finish a measure (a worker died, the index never filled up)."""


@contextlib.contextmanager
def bench_stack(settings: Settings, env: Mapping[str, str], say: Say) -> Iterator[Settings]:
    """moto, Tansu, Milvus Lite and a bridge on free ports in a temporary state dir; all stopped after."""
    from infra import stack
    from lookalike.eval_pipeline import free_port, private_stack

    named = settings.model_copy(  # the bridge port is set first: private_stack's bootstrap subscribes it
        update={
            "bucket": "bench-images",
            "topic": "lookalike.bench",
            "dlq_topic": "lookalike.bench.dlq",
            "group": "lookalike-bench",
            "collection": "lookalike_bench",
            "bridge_host": "127.0.0.1",
            "bridge_port": free_port(),
            "metrics_port": 0,
        }
    )
    with private_stack(named, env, say=say) as s:
        stack.up(s, env, workers=0, dashboard=False, bridge=True, say=lambda _: None)  # adds the bridge
        yield s


@dataclass
class Workers:
    """The bench's worker processes, each with its own metrics port."""

    settings: Settings
    env: Mapping[str, str]
    parts: list[Part] = field(default_factory=list)
    spawned_at: float = 0.0

    def start(self, n: int) -> None:
        from infra import stack
        from lookalike.eval_pipeline import free_port

        self.spawned_at = time.perf_counter()
        for i in range(n):
            port = free_port()
            part = stack.Part(
                f"worker-{i + 1}",
                [sys.executable, "-m", "lookalike", "worker", "--metrics-port", str(port)],
                f"http://127.0.0.1:{port}/metrics",
            )
            stack._start(self.settings, part, self.env)
            self.parts.append(part)

    def wait_first_ready(self, timeout: float) -> float:
        """perf_counter time at which the first worker reported ``lookalike_worker_ready 1``."""
        from infra import stack

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for part in self.parts:
                if stack.probe(self.settings, part):
                    return time.perf_counter()
            self.check_alive()
            time.sleep(0.05)
        raise BenchError(f"no worker became ready within {timeout:.0f} s")

    def wait_all_ready(self, timeout: float) -> None:
        from infra import stack

        for part in self.parts:
            stack._wait(self.settings, part, timeout)

    def check_alive(self) -> None:
        from infra import stack

        for part in self.parts:
            if not stack.alive(part):
                raise BenchError(f"{part.name} exited; see {part.log}:\n{stack._tail(part.log)}")

    def metrics(self) -> list[str]:
        texts = []
        for part in self.parts:
            with urllib.request.urlopen(part.address, timeout=5) as r:
                texts.append(r.read().decode(errors="replace"))
        return texts

    def metric_sum(self, name: str, texts: Sequence[str] | None = None) -> float | None:
        """A counter summed over labels and workers (None when no worker exposes it yet)."""
        from lookalike.bench_stats import parse_samples

        texts = self.metrics() if texts is None else texts
        values = [v for t in texts for sample, _, v in parse_samples(t) if sample == name]
        return sum(values) if values else None

    def peak_rss_mb(self) -> list[float]:
        return [m for part in self.parts if (m := peak_rss_mb(part.pid)) is not None]

    def stop(self) -> None:
        from infra import stack

        for part in reversed(self.parts):  # one at a time: a group can wedge if members leave mid-rebalance
            stack._stop(part)
        self.parts.clear()


def upload_all(settings: Settings, images: Sequence[BenchImage], concurrency: int = 8) -> float:
    """PUT every image (each PUT returns once its event is in Kafka); returns the seconds taken.

    Raises ``BenchError`` when the topic then holds no events: the notification path is broken and
    waiting for the index would be pointless.
    """
    from lookalike.bus import consumer_lag

    store = ObjectStore(settings)
    start = time.perf_counter()
    with ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="bench-put") as pool:
        for f in [pool.submit(store.put_bytes, settings.bucket, im.key, im.data, im.content_type) for im in images]:
            f.result()
    seconds = time.perf_counter() - start
    # Tansu reports a partition's end as the start of its last record batch + 1, so this can fall
    # short of the true count; an empty topic, though, means the notification path is broken.
    deadline = time.monotonic() + 10
    while not sum(end for _, end in consumer_lag(settings).values()):
        if time.monotonic() > deadline:
            raise BenchError(f"{len(images)} images uploaded but topic {settings.topic} has no events")
        time.sleep(0.2)
    return seconds


@dataclass(frozen=True)
class IngestResult:
    images: int
    load_s: float  # worker spawn -> first worker ready (model load, Kafka join, Milvus open)
    ingest_s: float  # first worker ready -> every image searchable
    first_batch_s: float  # first worker ready -> a worker's first poll with events (group join), within 0.1 s
    stages_text: list[str]


def measure_ingest(
    settings: Settings, workers: Workers, n: int, timeout: float, say: Say, n_workers: int
) -> IngestResult:
    """Start the workers on a full topic; time until the collection holds all ``n`` images.

    The collection is counted only once the workers' metrics say they handled ``n`` events: on
    Milvus Lite a count scans the unflushed rows (about 0.1 ms each), and counting all along would
    take CPU from the workers being measured. Metrics are read every 0.1 s, counts every 0.05 s.
    """
    workers.start(n_workers)
    ready = workers.wait_first_ready(timeout=300)
    load_s = ready - workers.spawned_at
    say(f"  first worker ready after {load_s:.1f} s; waiting for {n} images to be searchable")
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
                count = index.count()
                if count >= n:
                    done = asked
                    break
            workers.check_alive()
            if time.monotonic() > deadline:
                raise BenchError(f"only {count} of {n} images searchable after {timeout:.0f} s")
            if time.monotonic() - last_said > 10:
                say(f"  {handled or 0:.0f}/{n} events handled, {count} searchable")
                last_said = time.monotonic()
            time.sleep(0.05 if due else 0.1)
    finally:
        index.close()
    texts = workers.metrics()
    first_batch_s = (first_batch or done) - ready
    return IngestResult(n, load_s, done - ready, first_batch_s, texts)


@dataclass
class Freshness:
    """Per image: wall time its PUT returned, when a poll first found it, and its ``indexed_at``."""

    put_at: dict[str, float] = field(default_factory=dict)
    seen_at: dict[str, float] = field(default_factory=dict)
    indexed_at: dict[str, float] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)
    uploaded: int = 0
    upload_s: float = 0.0

    def latencies(self) -> list[float]:
        return [self.seen_at[i] - self.put_at[i] for i in self.seen_at if i in self.put_at]

    def indexed_latencies(self) -> list[float]:
        return [self.indexed_at[i] - self.put_at[i] for i in self.indexed_at if i in self.put_at]

    def unseen(self) -> int:
        return len(set(self.put_at) - set(self.seen_at))


def measure_freshness(
    settings: Settings,
    workers: Workers,
    images: Sequence[BenchImage],
    rate_ips: float,
    seconds: float,
    say: Say,
    poll_s: float = 0.05,
    settle_s: float = 120.0,
) -> Freshness:
    """Upload at ``rate_ips`` for ``seconds``; a poller queries the pending ids every ``poll_s``.

    An image counts as searchable at the start of the first Strong query that finds it: the query
    before (one poll earlier) did not, so that is an upper bound within one poll period (a query
    takes 1-150 ms on Milvus Lite, growing with unflushed rows). ``indexed_at`` (the worker's clock
    when it sent the upsert) is kept alongside as a second measure.
    """
    n = max(1, math.ceil(rate_ips * seconds))
    todo = [images[i % len(images)] for i in range(n)]
    todo = [
        BenchImage(f"fresh/{i:06d}-{im.key.rsplit('/', 1)[-1]}", im.data, im.content_type) for i, im in enumerate(todo)
    ]
    result = Freshness()
    stop = threading.Event()
    poller = threading.Thread(target=_poll, args=(settings, result, stop, poll_s), daemon=True, name="bench-poll")
    poller.start()
    store = ObjectStore(settings)
    bucket = settings.bucket

    def put(im: BenchImage) -> None:
        store.put_bytes(bucket, im.key, im.data, im.content_type)
        now = time.time()
        with result.lock:
            result.put_at[f"{bucket}/{im.key}"] = now

    say(f"  uploading {n} images at {rate_ips:.1f} img/s for {seconds:.0f} s")
    try:
        with ThreadPoolExecutor(max_workers=4, thread_name_prefix="bench-fresh-put") as pool:
            start = time.perf_counter()
            futures = []
            for i, im in enumerate(todo):
                delay = start + i / rate_ips - time.perf_counter()
                if delay > 0:
                    time.sleep(delay)
                futures.append(pool.submit(put, im))
            for f in futures:
                f.result()
            result.upload_s = time.perf_counter() - start
            result.uploaded = n
        deadline = time.monotonic() + settle_s
        while result.unseen() and time.monotonic() < deadline:
            workers.check_alive()
            time.sleep(0.1)
    finally:
        stop.set()
        poller.join(30)
    return result


def _poll(settings: Settings, result: Freshness, stop: threading.Event, interval: float) -> None:
    index = VectorIndex(settings)
    try:
        while not stop.is_set():
            with result.lock:
                pending = [i for i in result.put_at if i not in result.seen_at][:500]
            if pending:
                now = time.time()
                try:
                    rows = index.get(pending)
                except Exception as exc:  # one failed poll is retried on the next tick
                    log.warning("freshness poll failed: %s", exc)
                    rows = []
                with result.lock:
                    for row in rows:
                        rid = str(row["id"])
                        result.seen_at.setdefault(rid, now)
                        result.indexed_at.setdefault(rid, int(row.get("indexed_at") or 0) / 1000)
            stop.wait(interval)
    finally:
        index.close()
