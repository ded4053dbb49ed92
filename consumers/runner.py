"""The runner: wires poll -> plan -> embed -> write -> commit, and owns retry and shutdown.

Stages, each a module with a small typed interface:

* poll (``reader``): Kafka group consumer, manual commits;
* plan (``planner``): parse, look up index state (overlaid with writes in flight), fetch, decode
  within a pixel budget, prepare; anything wrong with one event becomes a dead letter;
* embed (``embed``): one batched model call;
* write (``writer``): Milvus upserts/deletes and dead letters, behind the revocation fence;
* commit (``offsets``): pending offsets, in-order commit, the rebalance commit.

Two threads overlap the work: the main thread polls and plans batch N+1 while the write stage
embeds and writes batch N; a one-slot hand-off bounds memory and gives back-pressure. Offsets are
committed by the main thread (the Kafka consumer is not thread-safe) only for messages whose writes
Milvus accepted and whose dead letters Kafka acknowledged. A failure commits nothing, so the events
come back; every step is idempotent, so a replay is harmless.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from functools import partial

from consumers.budget import PixelBudget, available_cores
from consumers.dedupe import Dedupe
from consumers.dlq import DeadLetterWriter
from consumers.metrics import BATCH_SIZE, LAST_COMMIT, READY, timed
from consumers.offsets import Handoff, Offsets, Ownership
from consumers.planner import Planner
from consumers.ports import Message
from consumers.reader import Reader
from consumers.retry import retry_until
from consumers.writer import Writer, WriteStage
from lookalike.embedder import Embedder
from lookalike.index import VectorIndex
from lookalike.settings import Settings
from lookalike.store import ObjectStore

log = logging.getLogger(__name__)


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
        # fetch/decode threads sized to the cores this process may use (at least two, so one waits
        # on S3 while one decodes); their memory is bounded by the pixel budget, not by their number
        threads = max(2, self.settings.threads or available_cores())
        planner = Planner(self.settings, store, index, self.embedder, threads, PixelBudget(self.settings.decode_budget))
        ownership = Ownership()
        # the write stage outlives `stop` so that a batch in hand is finished, then committed
        halt = threading.Event()
        writer = Writer(index, dlq, self.settings.flush_rows, Dedupe(index, self.settings.duplicate_threshold))
        stage = WriteStage(writer, self.embedder, ownership, planner.inflight.release, halt, max_outage_s)
        stage.start()
        offsets = Offsets(reader, collect=stage.finished)
        joined = partial(self._joined, index.name)
        reader.subscribe(Handoff(ownership, offsets, reader.commit_nowait, planner.inflight.forget, joined))
        try:
            self._loop(stop, reader, planner, ownership, offsets, stage, max_outage_s)
            stage.closing.set()
            while stage.is_alive():
                stage.join(0.5)
                if stop.is_set() and not halt.is_set() and stage.idle():
                    halt.set()  # nothing left but a write stuck in an outage: abandon it
            self._commit_done(offsets, ownership, stage, stop, max_outage_s)
            if stage.error is not None:
                raise stage.error
        finally:
            halt.set()
            stage.closing.set()
            READY.set(0)
            self.ready.clear()
            reader.close()
            dlq.close()
            planner.close()
            index.close()
            log.info("worker stopped after %d batches, %d events", self.batches, self.events)

    def _loop(
        self,
        stop: threading.Event,
        reader: Reader,
        planner: Planner,
        ownership: Ownership,
        offsets: Offsets,
        stage: WriteStage,
        max_outage_s: float,
    ) -> None:
        while not stop.is_set() and stage.error is None:
            self._commit_done(offsets, ownership, stage, stop, max_outage_s)
            with timed("poll"):
                batch = retry_until(partial(reader.poll, self.settings.batch_size, 100), stop, max_outage_s)
            if not batch:
                continue
            BATCH_SIZE.observe(len(batch))
            if self.on_batch is not None:
                self.on_batch(batch)
            epochs = ownership.epochs({m.tp for m in batch})
            work = retry_until(partial(planner.plan, batch, epochs), stop, max_outage_s)
            if work is None or not stage.submit(work):
                return

    def _commit_done(
        self, offsets: Offsets, ownership: Ownership, stage: WriteStage, stop: threading.Event, max_outage_s: float
    ) -> None:
        """Commit every message the write stage made durable (and any commit a rebalance interrupted)."""
        finished = offsets.durable()
        if finished:
            self.batches += 1
            self.events += finished
        if not offsets.pending:
            return
        with timed("commit"):
            committed = retry_until(lambda: offsets.commit(ownership.owned()), stop, max_outage_s)
        if committed:
            LAST_COMMIT.set_to_current_time()

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
