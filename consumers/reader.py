"""The reader stage: a manual-commit Kafka group consumer yielding plain messages.

Offsets of durable batches collect in ``pending`` and are committed for the partitions this member
still owns. When a rebalance takes partitions away, their durable offsets are committed in the
revocation callback, before the new owner starts, so a rebalance neither loses a commit nor leaves a
partition's committed offset behind work that was already done.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from kafka import ConsumerRebalanceListener
from kafka.errors import CommitFailedError, KafkaError
from kafka.structs import OffsetAndMetadata, TopicPartition

from lookalike.bus import make_consumer
from lookalike.errors import Unavailable
from lookalike.settings import Settings

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Message:
    topic: str
    partition: int
    offset: int
    key: str | None
    value: bytes


class Reader:
    """Polls batches; commits exactly the offsets it is told were written."""

    def __init__(self, settings: Settings, group: str | None = None) -> None:
        self.consumer = make_consumer(settings, group=group)
        self.topic = settings.topic
        self.pending: dict[TopicPartition, OffsetAndMetadata] = {}
        self.collect: Callable[[], list[Message]] | None = None  # durable batches not yet handed in
        self.on_assigned: Callable[[], None] | None = None  # called after every join of the group
        self.consumer.subscribe([settings.topic], listener=_Listener(self))

    def poll(self, max_records: int, timeout_ms: int) -> list[Message]:
        try:
            polled = self.consumer.poll(timeout_ms=timeout_ms, max_records=max_records)
        except KafkaError as exc:
            raise Unavailable("kafka", f"{type(exc).__name__}: {exc}") from exc
        out: list[Message] = []
        for tp in sorted(polled, key=lambda t: t.partition):
            for rec in polled[tp]:
                key = rec.key.decode("utf-8", "replace") if isinstance(rec.key, bytes) else rec.key
                out.append(Message(rec.topic, rec.partition, rec.offset, key, rec.value or b""))
        return out

    def add(self, messages: Sequence[Message]) -> None:
        """Mark these messages durable: their offsets will be committed."""
        for m in messages:
            tp = TopicPartition(m.topic, m.partition)
            if tp not in self.pending or self.pending[tp].offset <= m.offset:
                self.pending[tp] = OffsetAndMetadata(m.offset + 1, "", -1)

    def commit(self) -> bool:
        """Commit pending offsets of the partitions still owned; False if the group moved meanwhile."""
        owned = set(self.consumer.assignment())
        self.pending = {tp: o for tp, o in self.pending.items() if tp in owned}
        if not self.pending:
            return True
        try:
            self.consumer.commit(offsets=dict(self.pending))
        except CommitFailedError as exc:
            log.warning("commit refused during a rebalance; retried after it: %s", exc)
            return False
        except KafkaError as exc:
            raise Unavailable("kafka", f"commit failed: {type(exc).__name__}: {exc}") from exc
        self.pending.clear()
        return True

    def close(self) -> None:
        """Leave the group promptly so partitions move to the other workers at once."""
        try:
            self.consumer.close(autocommit=False)
        except KafkaError:
            log.warning("consumer did not close cleanly", exc_info=True)


class _Listener(ConsumerRebalanceListener):
    def __init__(self, reader: Reader) -> None:
        self.reader = reader

    def on_partitions_revoked(self, revoked: list[TopicPartition]) -> None:
        reader = self.reader
        if reader.collect is not None:
            reader.add(reader.collect())
        offsets = {tp: o for tp, o in reader.pending.items() if tp in set(revoked)}
        if offsets:
            try:
                reader.consumer.commit(offsets=offsets)
                log.info("committed %d partition(s) before handing them over", len(offsets))
            except KafkaError as exc:  # the new owner replays from the last commit: harmless
                log.warning("could not commit revoked partitions: %s", exc)
        for tp in revoked:
            reader.pending.pop(tp, None)

    def on_partitions_assigned(self, assigned: list[TopicPartition]) -> None:
        log.info("assigned partitions %s", sorted(tp.partition for tp in assigned))
        if self.reader.on_assigned is not None:
            self.reader.on_assigned()
