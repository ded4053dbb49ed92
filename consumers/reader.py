"""The reader stage: a manual-commit Kafka group consumer yielding plain messages."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

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
    """Polls batches, commits exactly the offsets it is told were written."""

    def __init__(self, settings: Settings, group: str | None = None) -> None:
        self.consumer = make_consumer(settings, group=group)
        self.consumer.subscribe([settings.topic])
        self.topic = settings.topic

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

    def commit(self, messages: Sequence[Message]) -> bool:
        """Commit past the last message of each partition; False if the group moved on meanwhile."""
        offsets: dict[TopicPartition, OffsetAndMetadata] = {}
        for m in messages:
            tp = TopicPartition(m.topic, m.partition)
            if tp not in offsets or offsets[tp].offset <= m.offset:
                offsets[tp] = OffsetAndMetadata(m.offset + 1, "", -1)
        if not offsets:
            return True
        try:
            self.consumer.commit(offsets=offsets)
        except CommitFailedError as exc:
            log.warning("commit refused after a rebalance; the new owner re-reads these events: %s", exc)
            return False
        except KafkaError as exc:
            raise Unavailable("kafka", f"commit failed: {type(exc).__name__}: {exc}") from exc
        return True

    def assignment(self) -> set[TopicPartition]:
        return set(self.consumer.assignment())

    def close(self) -> None:
        """Leave the group promptly so partitions move to the other workers at once."""
        try:
            self.consumer.close(autocommit=False)
        except KafkaError:
            log.warning("consumer did not close cleanly", exc_info=True)
