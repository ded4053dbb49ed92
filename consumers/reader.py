"""The poll stage: a manual-commit Kafka group consumer yielding plain messages.

It knows nothing of batches or pipelines: it polls, commits the offsets it is given, and reports
rebalances to the listener it was subscribed with (``consumers.offsets.Handoff``), which owns what
happens to pending offsets and planned work when partitions move.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from typing import Protocol

from kafka import ConsumerRebalanceListener
from kafka.errors import CommitFailedError, KafkaError
from kafka.structs import OffsetAndMetadata, TopicPartition

from consumers.ports import Message
from lookalike.bus import make_consumer
from lookalike.errors import Unavailable
from lookalike.settings import Settings

log = logging.getLogger(__name__)


class Rebalance(Protocol):
    """Told, on the polling thread, when partitions are taken away and when new ones arrive."""

    def revoked(self, partitions: Iterable[TopicPartition]) -> None: ...

    def assigned(self, partitions: Iterable[TopicPartition]) -> None: ...


class Reader:
    """Polls batches; commits exactly the offsets it is given."""

    def __init__(self, settings: Settings, group: str | None = None) -> None:
        self.consumer = make_consumer(settings, group=group)
        self.topic = settings.topic

    def subscribe(self, listener: Rebalance) -> None:
        """Join the group; ``listener`` hears of every revocation and assignment (inside ``poll``)."""
        self.consumer.subscribe([self.topic], listener=_Listener(listener))

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

    def commit(self, offsets: Mapping[TopicPartition, int]) -> bool:
        """Commit these next-to-read offsets; False if the group moved meanwhile (retry after it)."""
        if not offsets:
            return True
        try:
            self.consumer.commit(offsets={tp: OffsetAndMetadata(o, "", -1) for tp, o in offsets.items()})
        except CommitFailedError as exc:
            log.warning("commit refused during a rebalance; retried after it: %s", exc)
            return False
        except KafkaError as exc:
            raise Unavailable("kafka", f"commit failed: {type(exc).__name__}: {exc}") from exc
        return True

    def commit_nowait(self, offsets: Mapping[TopicPartition, int]) -> None:
        """Send a commit without waiting for it (from a rebalance listener, on the client's IO thread)."""
        try:
            self.consumer.commit_async(offsets={tp: OffsetAndMetadata(o, "", -1) for tp, o in offsets.items()})
        except (KafkaError, RuntimeError) as exc:  # the new owner replays from the last commit: harmless
            log.warning("could not send the commit of revoked partitions: %s", exc)

    def close(self) -> None:
        """Leave the group promptly so partitions move to the other workers at once."""
        try:
            self.consumer.close(autocommit=False)
        except KafkaError:
            log.warning("consumer did not close cleanly", exc_info=True)


class _Listener(ConsumerRebalanceListener):
    def __init__(self, target: Rebalance) -> None:
        self.target = target

    def on_partitions_revoked(self, revoked: list[TopicPartition]) -> None:
        self.target.revoked(revoked)

    def on_partitions_assigned(self, assigned: list[TopicPartition]) -> None:
        self.target.assigned(assigned)
