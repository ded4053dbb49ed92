"""The runner: wires reader -> mapper -> writer -> commit, and owns retry, overlap and shutdown.

Two threads overlap the work. The main thread polls Kafka and runs the mapper (index look-up, S3
fetch, decode, preprocessing) for batch N+1 while a write thread runs the model and the Milvus write
for batch N. A one-slot hand-off queue bounds memory and gives back-pressure: under a backlog each
poll finds a full batch (throughput); on a quiet stream a batch is whatever just arrived (freshness).

Offsets are committed by the main thread (the Kafka consumer is not thread-safe), in order, and only
for batches whose vectors Milvus accepted and whose dead letters Kafka acknowledged. Any failure
before that commits nothing, so the events come back, to this worker after the retry or to another
after a crash or rebalance. Every step is idempotent, so a replay is harmless.
"""

from __future__ import annotations

import logging
import os
import queue
import threading
import time
from collections.abc import Callable
from functools import partial

from consumers.dlq import DeadLetterWriter
from consumers.mapper import Mapper, Work
from consumers.metrics import BATCH_SIZE, LAST_COMMIT, READY, timed
from consumers.reader import Message, Reader
from consumers.retry import retry_until
from consumers.writer import Writer
from lookalike.embedder import Embedder
from lookalike.index import VectorIndex
from lookalike.settings import Settings
from lookalike.store import ObjectStore

log = logging.getLogger(__name__)


class WriteStage(threading.Thread):
    """Embeds and writes planned batches in order, reporting each one done once it is durable."""

    def __init__(self, writer: Writer, dlq: DeadLetterWriter, stop: threading.Event, max_outage_s: float) -> None:
        super().__init__(name="write-stage", daemon=True)
        self.writer = writer
        self.dlq = dlq
        self.stop = stop
        self.max_outage_s = max_outage_s
        self.inbox: queue.Queue[tuple[list[Message], Work]] = queue.Queue(maxsize=1)
        self.done: queue.Queue[list[Message]] = queue.Queue()
        self.closing = threading.Event()
        self.error: BaseException | None = None
        self.last_write = time.monotonic()

    def submit(self, batch: list[Message], work: Work) -> bool:
        """Hand over a planned batch, waiting while the previous one is written; False if stopped."""
        while self.error is None and self.is_alive():
            try:
                self.inbox.put((batch, work), timeout=0.2)
                return True
            except queue.Full:
                continue
        return False

    def run(self) -> None:
        try:
            while True:
                try:
                    batch, work = self.inbox.get(timeout=0.2)
                except queue.Empty:
                    if self.closing.is_set():
                        return
                    if time.monotonic() - self.last_write > 0.5:
                        self.writer.flush()  # the stream paused: seal what it wrote
                    continue
                written = retry_until(partial(self._write, work), self.stop, self.max_outage_s)
                if written is None:  # stopped during an outage: abandon, commit nothing of it
                    return
                self.last_write = time.monotonic()
                self.done.put(batch)
        except BaseException as exc:  # surfaced by the main thread, which stops the process loudly
            self.error = exc

    def _write(self, work: Work) -> bool:
        self.writer.write(work)
        with timed("dlq"):
            self.dlq.send(work.dead)
        log.debug(
            "wrote %d upserts, %d deletes, %d skipped, %d dead",
            len(work.upserts),
            len(work.deletes),
            work.skipped,
            len(work.dead),
        )
        return True


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
        index = retry_until(self._open_index, stop, max_outage_s)
        if index is None:
            return
        dlq = retry_until(partial(DeadLetterWriter, self.settings), stop, max_outage_s)
        reader = retry_until(partial(Reader, self.settings, group=self.group), stop, max_outage_s)
        if dlq is None or reader is None:
            index.close()
            return
        # fetch/decode threads sized to the cores (at least two, so one waits on S3 while one decodes)
        cores = self.settings.threads or os.cpu_count() or 1
        mapper = Mapper(self.settings, store, index, self.embedder, threads=max(2, cores))
        # the write stage outlives `stop` so that a batch in hand is finished, then committed
        halt = threading.Event()
        stage = WriteStage(Writer(index, self.embedder, self.settings.flush_rows), dlq, halt, max_outage_s)
        stage.start()
        reader.collect = partial(self._finished, stage)
        reader.on_assigned = partial(self._joined, index.name)
        try:
            self._loop(stop, reader, mapper, stage, max_outage_s)
            stage.closing.set()
            while stage.is_alive():
                stage.join(0.5)
                if stop.is_set() and not halt.is_set() and stage.inbox.empty() and stage.done.empty():
                    halt.set()  # nothing left but a write stuck in an outage: abandon it
            self._commit_done(reader, stage, stop, max_outage_s)
            if stage.error is not None:
                raise stage.error
        finally:
            halt.set()
            stage.closing.set()
            READY.set(0)
            self.ready.clear()
            reader.close()
            dlq.close()
            mapper.close()
            index.close()
            log.info("worker stopped after %d batches, %d events", self.batches, self.events)

    def _loop(
        self, stop: threading.Event, reader: Reader, mapper: Mapper, stage: WriteStage, max_outage_s: float
    ) -> None:
        while not stop.is_set() and stage.error is None:
            self._commit_done(reader, stage, stop, max_outage_s)
            with timed("poll"):
                batch = retry_until(partial(reader.poll, self.settings.batch_size, 100), stop, max_outage_s)
            if not batch:
                continue
            BATCH_SIZE.observe(len(batch))
            if self.on_batch is not None:
                self.on_batch(batch)
            work = retry_until(partial(mapper.plan, batch), stop, max_outage_s)
            if work is None or not stage.submit(batch, work):
                return

    @staticmethod
    def _finished(stage: WriteStage) -> list[Message]:
        out: list[Message] = []
        while True:
            try:
                out.extend(stage.done.get_nowait())
            except queue.Empty:
                return out

    def _commit_done(self, reader: Reader, stage: WriteStage, stop: threading.Event, max_outage_s: float) -> None:
        """Commit every batch the write stage finished (and any commit a rebalance interrupted)."""
        finished = self._finished(stage)
        reader.add(finished)
        if not reader.pending:
            return
        with timed("commit"):
            committed = retry_until(reader.commit, stop, max_outage_s)
        if committed:
            LAST_COMMIT.set_to_current_time()
        if finished:
            self.batches += 1
            self.events += len(finished)

    def _joined(self, collection: str) -> None:
        """Ready once the model is loaded and the group has given this member its partitions."""
        if not self.ready.is_set():
            READY.set(1)
            self.ready.set()
            log.info("worker ready: topic %s, group %s, collection %s", self.settings.topic, self.group, collection)

    def _open_index(self) -> VectorIndex:
        index = VectorIndex(self.settings)
        index.open(self.embedder.tag, create=True)
        return index
