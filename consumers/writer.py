"""The write stage: embed each planned batch, write it to Milvus and the dead letters, behind the fence.

It runs on its own thread so that the model and Milvus work on batch N while the main thread polls
and plans batch N+1; a one-slot inbox bounds memory and gives back-pressure. Each write *attempt*
holds ``Ownership.lock`` and first keeps only the items whose partition is still owned under the
epoch the batch was polled in, so once a revocation has taken the lock nothing planned for a lost
partition is written, even by a batch that was retrying through an outage. Backoff sleeps happen
outside the lock, so a revocation waits for at most one attempt.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable
from functools import partial

from consumers.dedupe import Dedupe
from consumers.embed import embed
from consumers.metrics import timed
from consumers.offsets import Ownership
from consumers.planner import Work
from consumers.ports import DeadLetterSink, IndexWrites, Message
from consumers.retry import retry_until
from lookalike.embedder import Embedder
from lookalike.index import IndexRow

log = logging.getLogger(__name__)


class Writer:
    """Upserts, deletes and dead letters of one batch; raises ``Unavailable`` if they were not accepted."""

    def __init__(
        self, index: IndexWrites, dlq: DeadLetterSink, flush_rows: int = 512, dedupe: Dedupe | None = None
    ) -> None:
        self.index = index
        self.dlq = dlq
        self.flush_rows = flush_rows
        self.dedupe = dedupe
        self.unflushed = 0

    def write(self, work: Work, rows: list[IndexRow]) -> None:
        """Write ``rows`` (the embedded upserts of ``work``), its deletes, then its dead letters.

        With ``dedupe``, the rows carry their near-duplicate marks, and rows of other objects whose
        mark pointed at a rewritten or deleted id are re-marked in the same upsert.
        """
        if self.dedupe is not None and (rows or work.deletes):
            with timed("dedupe"):
                rows = self.dedupe.mark(rows, [d.id for d in work.deletes])
        if rows:
            with timed("write"):
                self.index.upsert(rows)
            self.unflushed += len(rows)
        if work.deletes:
            with timed("write"):
                self.index.delete(list(dict.fromkeys(d.id for d in work.deletes)))
            self.unflushed += len(work.deletes)
        with timed("dlq"):
            self.dlq.send(work.dead)
        if self.flush_rows and self.unflushed >= self.flush_rows:
            self.flush()

    def flush(self) -> None:
        """Seal written rows (fast search on Milvus Lite); a refused flush is not an error."""
        if not self.unflushed or not self.flush_rows:
            return
        try:
            with timed("flush"):
                self.index.flush()
            self.unflushed = 0
        except Exception as exc:  # e.g. the server's flush rate limit: sealing happens anyway, later
            log.debug("flush skipped: %s", exc)


class WriteStage(threading.Thread):
    """Embeds and writes planned batches in order, reporting the messages of each once durable."""

    def __init__(
        self,
        writer: Writer,
        embedder: Embedder,
        ownership: Ownership,
        release: Callable[[int], None],
        stop: threading.Event,
        max_outage_s: float,
    ) -> None:
        super().__init__(name="write-stage", daemon=True)
        self.writer = writer
        self.embedder = embedder
        self.ownership = ownership
        self.release = release  # the planner's in-flight overlay: this batch is settled
        self.stop = stop
        self.max_outage_s = max_outage_s
        self.inbox: queue.Queue[Work] = queue.Queue(maxsize=1)
        self.done: queue.Queue[list[Message]] = queue.Queue()
        self.closing = threading.Event()
        self.error: BaseException | None = None
        self.last_write = time.monotonic()

    def submit(self, work: Work) -> bool:
        """Hand over a planned batch, waiting while the previous one is written; False if stopped."""
        while self.error is None and self.is_alive():
            try:
                self.inbox.put(work, timeout=0.2)
                return True
            except queue.Full:
                continue
        return False

    def finished(self) -> list[Message]:
        """Messages of every batch made durable since the last call."""
        out: list[Message] = []
        while True:
            try:
                out.extend(self.done.get_nowait())
            except queue.Empty:
                return out

    def idle(self) -> bool:
        return self.inbox.empty() and self.done.empty()

    def run(self) -> None:
        try:
            while True:
                try:
                    work = self.inbox.get(timeout=0.2)
                except queue.Empty:
                    if self.closing.is_set():
                        return
                    if time.monotonic() - self.last_write > 0.5:
                        self.writer.flush()  # the stream paused: seal what it wrote
                    continue
                rows = embed(work, self.embedder)
                written = retry_until(partial(self._attempt, work, rows), self.stop, self.max_outage_s)
                if written is None:  # stopped during an outage: abandon, commit nothing of it
                    self.release(work.batch_id)
                    return
                self.last_write = time.monotonic()
        except BaseException as exc:  # surfaced by the main thread, which stops the process loudly
            self.error = exc

    def _attempt(self, work: Work, rows: list[IndexRow]) -> bool:
        """One try at writing what is still this member's to write; durable messages go to ``done``."""
        while True:
            # between a revocation and the next assignment it is unknown whether these partitions
            # stay here: wait (outside the fence, so the rebalance can proceed) until it is known
            self.ownership.wait_settled(work.partitions, self.stop)
            with self.ownership.lock:
                if self.ownership.unsettled(work.partitions) and not self.stop.is_set():
                    continue  # revoked again between the wait and the lock
                keep = self.ownership.still_owned(work.epochs)
                if keep != work.partitions:
                    dropped = sorted(tp.partition for tp in work.partitions - keep)
                    log.info("dropping planned work of partitions %s, no longer owned", dropped)
                    rows = [r for r, u in zip(rows, work.upserts, strict=True) if u.source.tp in keep]
                    work = work.only(keep)
                self.writer.write(work, rows)
                self.done.put(work.messages)
                self.release(work.batch_id)
                break
        log.debug(
            "wrote %d upserts, %d deletes, %d skipped, %d dead",
            len(rows),
            len(work.deletes),
            work.skipped,
            len(work.dead),
        )
        return True
