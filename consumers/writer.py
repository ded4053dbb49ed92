"""The write stage: one embedded batch to Milvus (marks, upserts, deletes), then its dead letters and feed.

Steps 1 to 3 of the commit order (``consumers.checkpoint``). It runs on the write thread
(``consumers.write_thread``), inside the revocation fence.
"""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass

from consumers.batch import Work, refused
from consumers.bisect import bisect
from consumers.dedupe import Dedupe
from consumers.feed import FeedSink, outcomes
from consumers.metrics import EVENTS, timed
from consumers.ports import DeadLetterSink, IndexWrites, Message
from lookalike.rows import IndexRow

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Item:
    """One write of a batch: an upsert (``row`` set) or a delete (``row`` None) of object ``id``.

    ``replaces``: the upserted id was indexed (or about to be) when planned, so rows marked as its
    copies may exist and are re-checked; a delete always re-checks."""

    id: str
    row: IndexRow | None
    source: Message
    replaces: bool = True


class Writer:
    """Upserts, deletes and dead letters of one batch, then its change-feed records (when a feed is
    given); raises ``Unavailable`` if any of them was not accepted, so nothing of it is committed."""

    def __init__(
        self,
        index: IndexWrites,
        dlq: DeadLetterSink,
        flush_rows: int = 128,
        dedupe: Dedupe | None = None,
        feed: FeedSink | None = None,
    ) -> None:
        self.index = index
        self.dlq = dlq
        self.feed = feed
        self.flush_rows = flush_rows
        self.dedupe = dedupe
        self.unflushed = 0

    def write(self, work: Work, rows: list[IndexRow]) -> None:
        """Write ``rows`` (the embedded upserts of ``work``), its deletes, then its dead letters.

        With ``dedupe``, the rows carry their near-duplicate marks, and rows of other objects whose
        mark pointed at a rewritten or deleted id are re-marked in the same upsert. If Milvus refuses
        the batch for a reason that is not an outage, ``bisect`` finds the objects it refuses alone:
        they become dead letters, and the rest is written.
        """
        items = [Item(r.id, r, u.source, u.replaces) for r, u in zip(rows, work.upserts, strict=True)]
        items += [Item(d.id, None, d.source) for d in work.deletes]
        if items:  # once per batch, before its dedupe search and writes (see VectorIndex.check_target)
            with timed("target"):
                self.index.check_target()
        outcome = bisect(items, self._apply, "write")
        written = [r for part in outcome.results for r in part]
        if outcome.failed:
            EVENTS.labels("dead").inc(len(outcome.failed))
            refusals = [refused(i.source, i.id, exc, i.row) for i, exc in outcome.failed]
            work = dataclasses.replace(work, dead=[*work.dead, *refusals])
        with timed("dlq"):
            self.dlq.send(work.dead)
        if self.feed is not None:  # durable now: tell the feed, before the commit stage hears of it
            with timed("feed"):
                self.feed.publish(outcomes(work, written))
        if self.flush_rows and self.unflushed >= self.flush_rows:
            self.flush()

    def _apply(self, items: list[Item]) -> list[IndexRow]:
        """Mark, upsert and delete these items in one go; the rows written (re-checked ones too)."""
        rows = [i.row for i in items if i.row is not None]
        deleted = list(dict.fromkeys(i.id for i in items if i.row is None))
        if self.dedupe is not None and (rows or deleted):
            new = {i.id for i in items if i.row is not None and not i.replaces}
            with timed("dedupe"):
                rows = self.dedupe.mark(rows, deleted, new=new)
        if rows:
            with timed("write"):
                self.index.upsert(rows, checked=True)
            self.unflushed += len(rows)
        if deleted:
            with timed("write"):
                self.index.delete(deleted, checked=True)
            self.unflushed += len(deleted)
        return rows

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
