"""(c) Freshness: a steady upload while a poller records when each image first becomes searchable."""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from infra.bench.images import BenchImage
from infra.bench.workers import Workers
from lookalike.index import VectorIndex
from lookalike.settings import Settings
from lookalike.store import ObjectStore

log = logging.getLogger(__name__)

Say = Callable[[str], None]


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
    key_prefix: str = "fresh",
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
        BenchImage(f"{key_prefix}/{i:06d}-{im.key.rsplit('/', 1)[-1]}", im.data, im.content_type)
        for i, im in enumerate(todo)
    ]
    result = Freshness()
    stop = threading.Event()
    poller = threading.Thread(target=_poll, args=(settings, result, stop, poll_s), daemon=True, name="bench-poll")
    poller.start()
    say(f"  uploading {n} images at {rate_ips:.1f} img/s for {seconds:.0f} s")
    try:
        _upload_at_rate(settings, todo, rate_ips, result)
        deadline = time.monotonic() + settle_s
        while result.unseen() and time.monotonic() < deadline:
            workers.check_alive()
            time.sleep(0.1)
    finally:
        stop.set()
        poller.join(30)
    return result


def _upload_at_rate(settings: Settings, todo: Sequence[BenchImage], rate_ips: float, result: Freshness) -> None:
    """PUT image i at ``start + i / rate_ips``; record when each PUT returned (its event is in Kafka)."""
    store = ObjectStore(settings)
    bucket = settings.bucket

    def put(im: BenchImage) -> None:
        store.put_bytes(bucket, im.key, im.data, im.content_type)
        now = time.time()
        with result.lock:
            result.put_at[f"{bucket}/{im.key}"] = now

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
        result.uploaded = len(todo)


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
