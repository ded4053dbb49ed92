"""The commit stage: the one place that owns offsets, partition ownership and the revocation fence.

* ``Offsets`` collects the offsets of durable messages and commits them, in order, only for the
  partitions this member still owns. An offset that would go backwards within one ownership of a
  partition is a bug (it would replay or skip work silently), so it raises ``OffsetRegression``.
* ``Ownership`` numbers each assignment of a partition (its epoch). A planned batch remembers the
  epochs it was polled under; the write stage writes only the items whose partition is still owned
  under that same epoch, checked while holding ``Ownership.lock`` for the whole write attempt.
* ``Handoff`` is the rebalance listener. On revocation it takes the lock, which waits for a write
  attempt in progress to end, marks the partitions revoked, drops their planned writes from the
  planner's overlay, and commits what became durable for them before returning. After it returns,
  nothing planned for those partitions is ever written by this member: the fence.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable, Mapping

from kafka.structs import TopicPartition

from consumers.ports import Committer, Message
from lookalike.errors import Unavailable

log = logging.getLogger(__name__)


class OffsetRegression(RuntimeError):
    """An offset would move backwards: the pipeline lost track of order (a bug, never data)."""


class Offsets:
    """Pending offsets (next to read) of durable messages, committed in order per partition."""

    def __init__(self, committer: Committer) -> None:
        self.committer = committer
        self.pending: dict[TopicPartition, int] = {}
        self.committed: dict[TopicPartition, int] = {}

    def durable(self, messages: Iterable[Message]) -> None:
        """These messages are written (or dead-lettered): their offsets may be committed."""
        for m in messages:
            floor = max(self.pending.get(m.tp, -1), self.committed.get(m.tp, -1))
            if m.offset + 1 < floor:
                raise OffsetRegression(f"{m.topic}[{m.partition}] offset {m.offset + 1} is behind {floor}")
            self.pending[m.tp] = m.offset + 1

    def commit(self, owned: set[TopicPartition]) -> bool:
        """Commit pending offsets of owned partitions; False if the group moved (retry after it)."""
        self.pending = {tp: o for tp, o in self.pending.items() if tp in owned}
        if not self.pending:
            return True
        offsets = dict(self.pending)
        if not self.committer.commit(offsets):
            return False
        self.committed.update(offsets)
        for tp, o in offsets.items():
            if self.pending.get(tp) == o:
                del self.pending[tp]
        return True

    def revoke(self, revoked: set[TopicPartition]) -> None:
        """Commit what is durable for partitions being handed over, then forget them."""
        offsets = {tp: o for tp, o in self.pending.items() if tp in revoked}
        if offsets:
            try:
                if self.committer.commit(offsets):
                    log.info("committed %d partition(s) before handing them over", len(offsets))
            except Unavailable as exc:  # the new owner replays from the last commit: harmless
                log.warning("could not commit revoked partitions: %s", exc)
        for tp in revoked:
            self.pending.pop(tp, None)
            self.committed.pop(tp, None)


class Ownership:
    """Which partitions this member owns, with an epoch per assignment, and the fence's lock."""

    def __init__(self) -> None:
        self.lock = threading.RLock()  # the fence: held by the write stage for a whole write attempt
        self._state = threading.Lock()  # guards the epochs only, so polling never waits on a write
        self._epochs: dict[TopicPartition, int] = {}
        self._next = 0

    def assign(self, partitions: Iterable[TopicPartition]) -> None:
        with self._state:
            for tp in partitions:
                self._next += 1
                self._epochs[tp] = self._next

    def revoke(self, partitions: Iterable[TopicPartition]) -> None:
        with self._state:
            for tp in partitions:
                self._epochs.pop(tp, None)

    def owned(self) -> set[TopicPartition]:
        with self._state:
            return set(self._epochs)

    def epochs(self, partitions: Iterable[TopicPartition]) -> dict[TopicPartition, int]:
        """The current epoch of each partition (-1 if not owned): stamped on a batch when polled."""
        with self._state:
            return {tp: self._epochs.get(tp, -1) for tp in partitions}

    def still_owned(self, epochs: Mapping[TopicPartition, int]) -> set[TopicPartition]:
        """Partitions owned now under the same assignment as when the batch was polled."""
        with self._state:
            return {tp for tp, e in epochs.items() if e >= 0 and self._epochs.get(tp) == e}


class Handoff:
    """The rebalance listener's logic: the revocation fence and the rebalance commit."""

    def __init__(
        self,
        ownership: Ownership,
        offsets: Offsets,
        collect: Callable[[], list[Message]],
        forget: Callable[[set[TopicPartition]], None],
        on_assigned: Callable[[], None] | None = None,
    ) -> None:
        self.ownership = ownership
        self.offsets = offsets
        self.collect = collect  # messages the write stage made durable, not yet handed in
        self.forget = forget  # drop the planner's in-flight writes of these partitions
        self.on_assigned = on_assigned

    def revoked(self, partitions: Iterable[TopicPartition]) -> None:
        revoked = set(partitions)
        with self.ownership.lock:  # waits for a write attempt in progress; none starts meanwhile
            self.ownership.revoke(revoked)
            self.forget(revoked)
            self.offsets.durable(self.collect())
        self.offsets.revoke(revoked)

    def assigned(self, partitions: Iterable[TopicPartition]) -> None:
        assigned = set(partitions)
        self.ownership.assign(assigned)
        log.info("assigned partitions %s", sorted(tp.partition for tp in assigned))
        if self.on_assigned is not None:
            self.on_assigned()
