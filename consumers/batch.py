"""The batch types the worker's stages hand each other, and the dead letters they make of items.

A module of their own so that every stage (prepare, embed, write, feed, backfill) imports them from
one place that depends on no stage: ``Work`` is one polled batch as it travels, each item tagged
with the Kafka message it came from (for dead letters, the revocation fence and the commit).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from kafka.structs import TopicPartition

from consumers.dlq import DeadLetter
from consumers.ports import Message
from lookalike.errors import BadInput
from lookalike.events import ObjectEvent
from lookalike.rows import IndexRow


@dataclass(frozen=True)
class Pending:
    """An event and where it came from (for dead letters, the fence and the overlay)."""

    event: ObjectEvent
    source: Message


@dataclass(frozen=True)
class Upsert:
    row: IndexRow  # vector unset: filled by the embed stage
    prepared: Any  # the model's input tensor
    source: Message
    # the id is indexed, or about to be, when planned (the look-up overlaid with writes in flight):
    # only then can other rows be marked as copies of it, so only then are they re-checked
    replaces: bool = True


@dataclass(frozen=True)
class Delete:
    id: str
    source: Message


@dataclass
class Work:
    """What one batch asks of the index, each item tagged with the message it came from."""

    messages: list[Message]
    batch_id: int = 0
    upserts: list[Upsert] = field(default_factory=list)
    deletes: list[Delete] = field(default_factory=list)
    dead: list[DeadLetter] = field(default_factory=list)
    skipped: int = 0
    epochs: dict[TopicPartition, int] = field(default_factory=dict)  # ownership when polled (the fence)

    @property
    def partitions(self) -> set[TopicPartition]:
        return {m.tp for m in self.messages}

    def only(self, keep: set[TopicPartition]) -> Work:
        """The part of this batch that belongs to the partitions in ``keep``."""
        return dataclasses.replace(
            self,
            messages=[m for m in self.messages if m.tp in keep],
            upserts=[u for u in self.upserts if u.source.tp in keep],
            deletes=[d for d in self.deletes if d.source.tp in keep],
            dead=[d for d in self.dead if TopicPartition(d.topic, d.partition) in keep],
        )


def dead_letter(
    source: Message, reason: str, key: str | None = None, etag: str | None = None, size: int | None = None
) -> DeadLetter:
    key = key if key is not None else source.key
    return DeadLetter(key, etag, reason, source.topic, source.partition, source.offset, size)


def reason_of(exc: BaseException) -> str:
    """The dead letter's reason: ``"<ExcType>: <message>"``, enough to find a cause without a traceback.

    ``BadInput`` reasons are already written for people ("not an image", "object is N bytes, limit
    M"; the dashboard shows them as they are), so they go without the type.
    """
    return str(exc) if isinstance(exc, BadInput) else f"{type(exc).__name__}: {exc}"


def refused(source: Message, oid: str, exc: BaseException, row: IndexRow | None = None) -> DeadLetter:
    """The dead letter of an object that a batch-level call refused alone (found by ``bisect``)."""
    return dead_letter(source, reason_of(exc), oid, row.etag if row else None, row.size if row else None)
