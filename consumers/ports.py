"""The small interfaces the worker's stages meet each other through.

Each stage depends on a Protocol, not on the S3, Milvus or Kafka client behind it, so the planner,
the write stage and the offset logic run in unit tests against in-memory fakes, and the real
classes (``ObjectStore``, ``VectorIndex``, ``Reader``, ``DeadLetterWriter``) satisfy them as they are.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
from kafka.structs import TopicPartition

from lookalike.rows import IndexedState, IndexRow
from lookalike.store import ObjectInfo


@dataclass(frozen=True)
class Message:
    """One record polled from the events topic."""

    topic: str
    partition: int
    offset: int
    key: str | None
    value: bytes

    @property
    def tp(self) -> TopicPartition:
        return TopicPartition(self.topic, self.partition)


class ObjectSource(Protocol):
    """Reads objects as they are now (``lookalike.store.ObjectStore``)."""

    def get(self, bucket: str, key: str) -> tuple[ObjectInfo, bytes] | None: ...


class IndexStates(Protocol):
    """What the index holds per id, without vectors (``lookalike.index.VectorIndex``)."""

    def states(self, ids: Sequence[str]) -> dict[str, IndexedState]: ...


class IndexWrites(Protocol):
    """Idempotent writes keyed by ``bucket/key`` (``lookalike.index.VectorIndex``).

    ``check_target`` refuses writes once the index's alias moved to another model's collection; the
    write stage runs it once per batch and passes ``checked=True`` to the batch's writes."""

    def check_target(self) -> None: ...

    def upsert(self, rows: Sequence[IndexRow], checked: bool = False) -> None: ...

    def delete(self, ids: Sequence[str], checked: bool = False) -> None: ...

    def flush(self) -> None: ...


class DeadLetterSink(Protocol):
    """Publishes dead letters and returns once the broker has them (``DeadLetterWriter``)."""

    def send(self, letters: list[Any]) -> None: ...


class Committer(Protocol):
    """Commits offsets (next offset to read, per partition); False if the group moved meanwhile."""

    def commit(self, offsets: Mapping[TopicPartition, int]) -> bool: ...


class DuplicateLookup(Protocol):
    """Nearest-other searches and reverse marks for near-duplicates (``lookalike.index.VectorIndex``)."""

    has_duplicates: bool

    def nearest_other(self, vectors: np.ndarray, exclude: Sequence[str]) -> list[tuple[str, float] | None]: ...

    def marked_as_copies_of(self, ids: Sequence[str]) -> list[IndexRow]: ...
