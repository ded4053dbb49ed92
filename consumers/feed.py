"""The worker's side of the change feed (schema in ``lookalike/feed.py``): one message per outcome.

The write stage publishes a batch's outcomes after Milvus accepted its writes and its dead letters
were acknowledged, and before the batch is reported durable to the commit stage; a publish that
Kafka does not acknowledge raises ``Unavailable``, so the whole write attempt is retried (every
step is idempotent) and nothing of the batch is committed meanwhile. Keys are ``bucket/key``, so
outcomes of one object share a partition and arrive in the order the worker wrote them.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Protocol

from consumers.batch import Work
from consumers.bisect import bisect
from consumers.dlq import DeadLetter
from lookalike.bus import make_producer, publish_acked
from lookalike.feed import FeedRecord, now_ms
from lookalike.rows import IndexRow
from lookalike.settings import Settings

log = logging.getLogger(__name__)


class FeedSink(Protocol):
    """Where a batch's outcomes go; ``publish`` returns only once they are acknowledged."""

    def publish(self, records: list[FeedRecord]) -> None: ...


def outcomes(work: Work, rows: Sequence[IndexRow], at: int | None = None) -> list[FeedRecord]:
    """The feed records of one written batch: upserts, then deletes, then dead letters (with a key).

    ``duplicate_of``/``duplicate_score`` are copied from a row that carries them (the dedupe stage
    adds them); a dead letter without an object key (junk on the topic) is about no object: none.
    A dead object's older vector is deleted too: its one outcome is ``dead`` (which implies removed).
    """
    when = now_ms() if at is None else at
    dead = [_dead(d, when) for d in work.dead if d.key]
    dead_ids = {d.id for d in dead}
    out = [
        FeedRecord(
            r.id,
            "indexed",
            when,
            etag=r.etag,
            size=int(r.size),
            duplicate_of=getattr(r, "duplicate_of", None) or None,
            duplicate_score=getattr(r, "duplicate_score", None),
        )
        for r in rows
    ]
    out += [FeedRecord(i, "removed", when) for i in dict.fromkeys(d.id for d in work.deletes) if i not in dead_ids]
    return out + dead


def _dead(letter: DeadLetter, at: int) -> FeedRecord:
    return FeedRecord(str(letter.key), "dead", at, etag=letter.etag, size=letter.size, reason=letter.reason)


class FeedWriter:
    """Publishes feed records with an acks=all producer and waits for every acknowledgement."""

    def __init__(self, settings: Settings) -> None:
        self.topic = settings.change_feed_topic
        self.producer = make_producer(settings, client_id="lookalike-feed")

    def publish(self, records: list[FeedRecord]) -> None:
        """Publish and wait for every acknowledgement; an outage raises ``Unavailable``.

        A record the broker refuses alone (found by bisection) is logged and left out: the index
        already holds the truth, and the feed's next record for that key supersedes it."""
        outcome = bisect(records, self._publish, "feed")
        for record, exc in outcome.failed:
            log.error("feed record for %r was refused by Kafka: %s", record.id, exc)
        log.debug("published %d feed records", len(outcome.accepted))

    def _publish(self, records: list[FeedRecord]) -> None:
        publish_acked(self.producer, self.topic, [(r.id, r.to_json()) for r in records], "change-feed")

    def close(self) -> None:
        self.producer.close(timeout=5)
