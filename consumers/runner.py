"""The runner: wires read -> prepare -> embed -> write -> commit, and owns retry and shutdown.

It only wires; each stage is a module with a small typed interface:

* read (``reader``): Kafka group consumer, manual commits;
* prepare (``prepare``): parse, look up index state (overlaid with writes in flight), fetch, decode
  within a pixel budget, preprocess; anything wrong with one event becomes a dead letter;
* embed (``embed``): one batched model call;
* write (``writer``): Milvus marks, upserts and deletes, dead letters and the change feed;
* commit (``checkpoint``): the commit order in numbered steps, and the offsets.

Two threads overlap the work: this one reads and prepares batch N+1 while the write thread
(``write_thread``) embeds and writes batch N. Offsets are committed by this thread (the Kafka
consumer is not thread-safe) only for messages whose writes Milvus accepted and whose dead letters
and feed records Kafka acknowledged. A failure commits nothing, so the events come back; every step
is idempotent, so a replay is harmless. The clients are closed by one ``ExitStack``.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
import time
from collections.abc import Callable
from functools import partial
from typing import Protocol, TypeVar

from consumers.checkpoint import Checkpoint
from consumers.dlq import DeadLetterWriter
from consumers.feed import FeedWriter
from consumers.metrics import BATCH_SIZE, LAST_COMMIT, READY, STARTUP, timed
from consumers.offsets import Handoff, Ownership
from consumers.ports import Message
from consumers.prepare import PrepareStage
from consumers.reader import Reader
from consumers.retry import retry_until
from consumers.stages import build_stages
from consumers.write_thread import WriteThread
from lookalike.embedder import Embedder
from lookalike.index import VectorIndex
from lookalike.settings import Settings
from lookalike.store import ObjectStore

log = logging.getLogger(__name__)


class Closable(Protocol):
    def close(self) -> None: ...


C = TypeVar("C", bound=Closable)


def _opened(clients: contextlib.ExitStack, client: C | None) -> C | None:
    """``client``, closed when ``clients`` unwinds (None: it was never opened)."""
    if client is not None:
        clients.callback(client.close)
    return client


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
        self._step_started = 0.0

    def _step(self, name: str) -> None:
        """Record how long the start-up step that ends now took (``lookalike_worker_startup_seconds``)."""
        now = time.perf_counter()
        STARTUP.labels(name).set(now - self._step_started if self._step_started else process_age_s())
        self._step_started = now

    def run(self, stop: threading.Event, max_outage_s: float = 0.0) -> None:
        self._step("imports")
        self.embedder.load()
        self._step("model")
        with contextlib.ExitStack() as clients:
            index = _opened(clients, retry_until(self._open_index, stop, max_outage_s))
            dlq = _opened(clients, retry_until(partial(DeadLetterWriter, self.settings), stop, max_outage_s))
            feed = _opened(clients, retry_until(partial(FeedWriter, self.settings), stop, max_outage_s))
            if index is None or dlq is None or feed is None:
                return  # stopped while a service was down
            stages = build_stages(self.settings, self.embedder, ObjectStore(self.settings), index, dlq, feed)
            clients.callback(stages.close)
            self._step("connect")
            # opened last, closed first: leaving the group at once moves the partitions on
            reader = _opened(clients, retry_until(partial(Reader, self.settings, group=self.group), stop, max_outage_s))
            if reader is None:
                return
            clients.callback(self._stopped)
            checkpoint = Checkpoint(stages.writer, reader, stages.prepare.inflight.release)
            self._serve(stop, max_outage_s, reader, stages.prepare, checkpoint, index.name)

    def _serve(
        self,
        stop: threading.Event,
        max_outage_s: float,
        reader: Reader,
        prepare: PrepareStage,
        checkpoint: Checkpoint,
        collection: str,
    ) -> None:
        """Run the two threads until ``stop``; then finish the batch in hand and commit it."""
        ownership = Ownership()
        halt = threading.Event()  # the write thread outlives `stop`: a batch in hand is finished
        thread = WriteThread(checkpoint, self.embedder, ownership, halt, max_outage_s)
        thread.start()
        joined = partial(self._joined, collection)
        reader.subscribe(Handoff(ownership, checkpoint.offsets, reader.commit_nowait, prepare.inflight.forget, joined))
        try:
            self._loop(stop, reader, prepare, ownership, checkpoint, thread, max_outage_s)
            thread.closing.set()
            while thread.is_alive():
                thread.join(0.5)
                if stop.is_set() and not halt.is_set() and thread.idle():
                    halt.set()  # nothing left but a write stuck in an outage: abandon it
            self._commit_done(checkpoint, ownership, stop, max_outage_s)
            if thread.error is not None:
                raise thread.error
        finally:
            halt.set()
            thread.closing.set()

    def _loop(
        self,
        stop: threading.Event,
        reader: Reader,
        prepare: PrepareStage,
        ownership: Ownership,
        checkpoint: Checkpoint,
        thread: WriteThread,
        max_outage_s: float,
    ) -> None:
        while not stop.is_set() and thread.error is None:
            self._commit_done(checkpoint, ownership, stop, max_outage_s)
            with timed("poll"):
                batch = retry_until(partial(reader.poll, self.settings.batch_size, 100), stop, max_outage_s)
            if not batch:
                continue
            BATCH_SIZE.observe(len(batch))
            if self.on_batch is not None:
                self.on_batch(batch)
            epochs = ownership.epochs({m.tp for m in batch})
            work = retry_until(partial(prepare.prepare, batch, epochs), stop, max_outage_s)
            if work is None or not thread.submit(work):
                return

    def _commit_done(
        self, checkpoint: Checkpoint, ownership: Ownership, stop: threading.Event, max_outage_s: float
    ) -> None:
        """Step 5 of the commit order: commit every offset the write thread made durable."""
        finished = checkpoint.offsets.durable()
        if finished:
            self.batches += 1
            self.events += finished
        if not checkpoint.offsets.pending:
            return
        with timed("commit"):
            committed = retry_until(lambda: checkpoint.commit(ownership.owned()), stop, max_outage_s)
        if committed:
            LAST_COMMIT.set_to_current_time()

    def _stopped(self) -> None:
        READY.set(0)
        self.ready.clear()
        log.info("worker stopped after %d batches, %d events", self.batches, self.events)

    def _joined(self, collection: str) -> None:
        """Ready once the model is loaded and the group has given this member its partitions."""
        if not self.ready.is_set():
            self._step("join")
            READY.set(1)
            self.ready.set()
            log.info("worker ready: topic %s, group %s, collection %s", self.settings.topic, self.group, collection)

    def _open_index(self) -> VectorIndex:
        index = VectorIndex(self.settings)
        index.open(self.embedder.tag, create=True)
        return index


def process_age_s() -> float:
    """Seconds since this process started (Linux ``/proc``): the interpreter's start and the imports
    before the worker runs. 0 where ``/proc`` is missing."""
    try:
        with open("/proc/self/stat") as stat, open("/proc/uptime") as uptime:
            started = int(stat.read().rsplit(")", 1)[1].split()[19]) / os.sysconf("SC_CLK_TCK")
            return max(float(uptime.read().split()[0]) - started, 0.0)
    except (OSError, ValueError, IndexError):
        return 0.0
