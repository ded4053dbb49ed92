"""The hand-off between the two threads of a worker: the polling thread reads and prepares batch N+1
while this thread embeds and writes batch N.

A one-slot inbox is the only thread-safe hand-off: it bounds memory (one prepared batch waits) and
gives back-pressure (the polling thread blocks while the inbox is full). For each batch, in order,
this thread runs the embed stage, then the checkpoint's steps 1 to 4 (``consumers.checkpoint``).
Each write *attempt* holds ``Ownership.lock`` and first keeps only the items whose partition is
still owned under the epoch the batch was polled in, so once a revocation has taken the lock nothing
prepared for a lost partition is written, even by a batch that was retrying through an outage.
Backoff sleeps happen outside the lock, so a revocation waits for at most one attempt.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from functools import partial

from consumers.batch import Work
from consumers.checkpoint import Checkpoint
from consumers.embed import embed
from consumers.offsets import Ownership
from consumers.retry import retry_until
from lookalike.embedder import Embedder
from lookalike.rows import IndexRow

log = logging.getLogger(__name__)


class WriteThread(threading.Thread):
    """Embeds and settles prepared batches in order; the polling thread commits what it settled."""

    def __init__(
        self,
        checkpoint: Checkpoint,
        embedder: Embedder,
        ownership: Ownership,
        stop: threading.Event,
        max_outage_s: float,
    ) -> None:
        super().__init__(name="write-thread", daemon=True)
        self.checkpoint = checkpoint
        self.embedder = embedder
        self.ownership = ownership
        self.stop = stop
        self.max_outage_s = max_outage_s
        self.inbox: queue.Queue[Work] = queue.Queue(maxsize=1)
        self.closing = threading.Event()
        self.error: BaseException | None = None
        self.last_write = time.monotonic()

    def submit(self, work: Work) -> bool:
        """Hand over a prepared batch, waiting while the previous one is written; False if stopped."""
        while self.error is None and self.is_alive():
            try:
                self.inbox.put(work, timeout=0.2)
                return True
            except queue.Full:
                continue
        return False

    def idle(self) -> bool:
        return self.inbox.empty() and self.checkpoint.idle()

    def run(self) -> None:
        try:
            while True:
                try:
                    work = self.inbox.get(timeout=0.2)
                except queue.Empty:
                    if self.closing.is_set():
                        return
                    if time.monotonic() - self.last_write > 0.5:
                        self.checkpoint.writer.flush()  # the stream paused: seal what it wrote
                    continue
                work, rows = embed(work, self.embedder)
                written = retry_until(partial(self._attempt, work, rows), self.stop, self.max_outage_s)
                if written is None:  # stopped during an outage: abandon, commit nothing of it
                    self.checkpoint.abandon(work)
                    return
                self.last_write = time.monotonic()
        except BaseException as exc:  # surfaced by the polling thread, which stops the process loudly
            self.error = exc

    def _attempt(self, work: Work, rows: list[IndexRow]) -> bool:
        """One try at settling what is still this member's to write."""
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
                    log.info("dropping prepared work of partitions %s, no longer owned", dropped)
                    rows = [r for r, u in zip(rows, work.upserts, strict=True) if u.source.tp in keep]
                    work = work.only(keep)
                self.checkpoint.settle(work, rows)
                break
        log.debug(
            "wrote %d upserts, %d deletes, %d skipped, %d dead",
            len(rows),
            len(work.deletes),
            work.skipped,
            len(work.dead),
        )
        return True
