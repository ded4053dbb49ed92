"""The runner: wires reader -> mapper -> writer -> commit, and owns retry and shutdown.

Offsets are committed only after Milvus accepted the batch and its dead letters were acknowledged;
any failure before that commits nothing, so the events come back (to this worker after the retry,
or to another after a crash or rebalance). Every step is idempotent, so a replay is harmless.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from functools import partial
from typing import TypeVar

from consumers.dlq import DeadLetterWriter
from consumers.mapper import Mapper
from consumers.metrics import BATCH_SIZE, LAST_COMMIT, READY, UNAVAILABLE, timed
from consumers.reader import Message, Reader
from consumers.writer import Writer
from lookalike.embedder import Embedder
from lookalike.errors import Unavailable
from lookalike.index import VectorIndex
from lookalike.settings import Settings
from lookalike.store import ObjectStore

log = logging.getLogger(__name__)
T = TypeVar("T")


class Backoff:
    """Capped exponential backoff that logs one line when a service fails and one when it returns."""

    def __init__(self, first: float = 0.5, cap: float = 10.0) -> None:
        self.first = first
        self.cap = cap
        self.delay = first
        self.down_since: float | None = None
        self.service = ""

    def failed(self, exc: Unavailable) -> float:
        if self.down_since is None or exc.service != self.service:
            log.error("%s is unavailable (%s); pausing consumption, retrying with backoff", exc.service, exc.detail)
            UNAVAILABLE.labels(exc.service).set(1)
            self.down_since = self.down_since or time.monotonic()
            self.service = exc.service
            self.delay = self.first
        delay = self.delay
        self.delay = min(self.cap, self.delay * 2)
        return delay

    def recovered(self) -> None:
        if self.down_since is not None:
            log.warning("%s is back after %.1f s; resuming", self.service, time.monotonic() - self.down_since)
            UNAVAILABLE.labels(self.service).set(0)
        self.down_since = None
        self.delay = self.first


class Worker:
    """One consumer-group member. ``run`` returns when ``stop`` is set, after committing what it wrote."""

    def __init__(
        self,
        settings: Settings,
        embedder: Embedder,
        group: str | None = None,
        on_batch: Callable[[list[Message]], None] | None = None,
    ) -> None:
        self.settings = settings
        self.embedder = embedder
        self.group = group or settings.group
        self.on_batch = on_batch
        self.batches = 0
        self.events = 0
        self.ready = threading.Event()

    def run(self, stop: threading.Event, max_outage_s: float = 0.0) -> None:
        self.embedder.load()
        store = ObjectStore(self.settings)
        index = _retry_until(lambda: self._open_index(), stop, max_outage_s)
        if index is None:
            return
        dlq = _retry_until(partial(DeadLetterWriter, self.settings), stop, max_outage_s)
        reader = _retry_until(partial(Reader, self.settings, group=self.group), stop, max_outage_s)
        if dlq is None or reader is None:
            index.close()
            return
        mapper = Mapper(self.settings, store, index, self.embedder)
        writer = Writer(index, self.embedder)
        READY.set(1)
        self.ready.set()
        log.info("worker ready: topic %s, group %s, collection %s", self.settings.topic, self.group, index.name)
        try:
            while not stop.is_set():
                with timed("poll"):
                    batch = _retry_until(partial(reader.poll, self.settings.batch_size, 200), stop, max_outage_s)
                if not batch:
                    continue
                BATCH_SIZE.observe(len(batch))
                if self.on_batch is not None:
                    self.on_batch(batch)
                done = _retry_until(partial(self._process, batch, mapper, writer, dlq), stop, max_outage_s)
                if done is None:  # stopped (or gave up) before the batch was written: commit nothing
                    break
                with timed("commit"):
                    committed = _retry_until(partial(reader.commit, batch), stop, max_outage_s)
                if committed is None:  # stopped while Kafka was down: the batch is replayed later, harmlessly
                    break
                LAST_COMMIT.set_to_current_time()
                self.batches += 1
                self.events += len(batch)
        finally:
            READY.set(0)
            self.ready.clear()
            reader.close()
            dlq.close()
            mapper.close()
            index.close()
            log.info("worker stopped after %d batches, %d events", self.batches, self.events)

    def _open_index(self) -> VectorIndex:
        index = VectorIndex(self.settings)
        index.open(self.embedder.tag, create=True)
        return index

    def _process(self, batch: list[Message], mapper: Mapper, writer: Writer, dlq: DeadLetterWriter) -> bool:
        work = mapper.plan(batch)
        writer.write(work)
        with timed("dlq"):
            dlq.send(work.dead)
        log.debug(
            "batch of %d: %d upserts, %d deletes, %d skipped, %d dead",
            len(batch),
            len(work.upserts),
            len(work.deletes),
            work.skipped,
            len(work.dead),
        )
        return True


def _retry_until(fn: Callable[[], T], stop: threading.Event, max_outage_s: float) -> T | None:
    """Run ``fn`` until it succeeds; ``None`` if stopped first. Re-raises after ``max_outage_s`` (0: never)."""
    backoff = Backoff()
    while True:
        try:
            result = fn()
        except Unavailable as exc:
            delay = backoff.failed(exc)
            if max_outage_s and backoff.down_since and time.monotonic() - backoff.down_since > max_outage_s:
                raise
            if stop.wait(delay):
                return None
            continue
        backoff.recovered()
        return result
