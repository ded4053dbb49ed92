"""The commit stage: the one place that owns offsets, partition ownership and the revocation fence.

* ``Offsets`` collects the offsets of durable messages and commits them, in order, only for the
  partitions this member owns. An offset that would go backwards within one ownership of a
  partition is a bug (it would replay or skip work silently), so it raises ``OffsetRegression``.
* ``Ownership`` numbers each assignment of a partition (its epoch). A planned batch remembers the
  epochs it was polled under; the write stage writes only the items whose partition is still owned
  under that same epoch, checked while holding ``Ownership.lock`` for the whole write attempt.
* ``Handoff`` is the rebalance listener's logic. On revocation it takes the lock, which waits for
  a write attempt in progress to end, suspends the partitions, and sends the commit of what is
  durable for them. From then on nothing planned for them is written until the assignment that
  follows says whether they stay here: kept partitions carry on where they were (the consumer keeps
  their positions, so their planned work must be written, not dropped), lost ones have their planned
  work dropped and forgotten. Either way nothing planned for a partition this member no longer owns
  is ever written: the fence.

kafka-python 3 runs rebalance listeners on its IO thread, where blocking consumer calls fail; so the
listener never waits on the network (the revocation commit is sent asynchronously) and never takes
a lock that a thread holds while it talks to Kafka.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable, Mapping

from kafka.structs import TopicPartition

from consumers.ports import Committer, Message

log = logging.getLogger(__name__)


class OffsetRegression(RuntimeError):
    """An offset would move backwards: the pipeline lost track of order (a bug, never data)."""


class Offsets:
    """Pending offsets (next to read) of durable messages, committed in order per partition."""

    def __init__(self, committer: Committer, collect: Callable[[], list[Message]] = list) -> None:
        self.committer = committer
        self.collect = collect  # messages made durable by the write stage, not yet handed in
        self.pending: dict[TopicPartition, int] = {}
        self.committed: dict[TopicPartition, int] = {}
        self._lock = threading.Lock()  # never held during network calls (see the module doc)

    def durable(self, messages: Iterable[Message] = ()) -> int:
        """These messages (and all the write stage finished) may be committed; returns how many."""
        with self._lock:
            batch = [*messages, *self.collect()]  # collected under the lock: order is kept
            for m in batch:
                floor = max(self.pending.get(m.tp, -1), self.committed.get(m.tp, -1))
                if m.offset + 1 < floor:
                    raise OffsetRegression(f"{m.topic}[{m.partition}] offset {m.offset + 1} is behind {floor}")
                self.pending[m.tp] = m.offset + 1
            return len(batch)

    def commit(self, owned: set[TopicPartition]) -> bool:
        """Commit pending offsets of owned partitions; False if the group moved (retry after it)."""
        with self._lock:
            offsets = {tp: o for tp, o in self.pending.items() if tp in owned}
        if not offsets:
            return True
        if not self.committer.commit(offsets):
            return False
        with self._lock:
            self.committed.update(offsets)
            for tp, o in offsets.items():
                if self.pending.get(tp) == o:
                    del self.pending[tp]
        return True

    def hand_over(self, revoked: set[TopicPartition], send: Callable[[Mapping[TopicPartition, int]], None]) -> None:
        """Send (without waiting) the commit of what is durable for partitions being revoked."""
        self.durable()
        with self._lock:
            offsets = {tp: o for tp, o in self.pending.items() if tp in revoked}
        if offsets:
            send(offsets)
            log.info("committing %d revoked partition(s) before handing them over", len(offsets))

    def forget(self, lost: set[TopicPartition]) -> None:
        """Partitions gone to other members: their offsets are theirs to commit now."""
        with self._lock:
            for tp in lost:
                self.pending.pop(tp, None)
                self.committed.pop(tp, None)


class Ownership:
    """Which partitions this member owns, with an epoch per assignment, and the fence's lock."""

    def __init__(self) -> None:
        self.lock = threading.RLock()  # the fence: held by the write stage for a whole write attempt
        self._state = threading.Condition()  # guards the epochs only, so polling never waits on a write
        self._epochs: dict[TopicPartition, int] = {}
        self._suspended: dict[TopicPartition, int] = {}  # revoked, awaiting the next assignment
        self._next = 0

    def assign(self, partitions: Iterable[TopicPartition]) -> set[TopicPartition]:
        """A new assignment; kept partitions keep their epoch. Returns the partitions lost."""
        with self._state:
            for tp in partitions:
                if tp in self._suspended:
                    self._epochs[tp] = self._suspended.pop(tp)
                else:
                    self._next += 1
                    self._epochs[tp] = self._next
            lost = set(self._suspended)
            self._suspended.clear()
            self._state.notify_all()
            return lost

    def suspend(self, partitions: Iterable[TopicPartition]) -> None:
        """Revoked: nothing of these is written until the next assignment settles them."""
        with self._state:
            for tp in partitions:
                if tp in self._epochs:
                    self._suspended[tp] = self._epochs.pop(tp)

    def owned(self) -> set[TopicPartition]:
        with self._state:
            return set(self._epochs)

    def epochs(self, partitions: Iterable[TopicPartition]) -> dict[TopicPartition, int]:
        """The epoch of each partition (-1 if not owned): stamped on a batch when polled."""
        with self._state:
            return {tp: self._epochs.get(tp, self._suspended.get(tp, -1)) for tp in partitions}

    def unsettled(self, partitions: Iterable[TopicPartition]) -> bool:
        with self._state:
            return any(tp in self._suspended for tp in partitions)

    def wait_settled(self, partitions: set[TopicPartition], stop: threading.Event) -> None:
        """Wait while any of these partitions is between a revocation and the next assignment."""
        with self._state:
            while not stop.is_set() and any(tp in self._suspended for tp in partitions):
                self._state.wait(0.2)

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
        send_commit: Callable[[Mapping[TopicPartition, int]], None],
        forget: Callable[[set[TopicPartition]], None],
        on_assigned: Callable[[], None] | None = None,
    ) -> None:
        self.ownership = ownership
        self.offsets = offsets
        self.send_commit = send_commit  # a commit that does not wait for the broker
        self.forget = forget  # drop the planner's in-flight writes of these partitions
        self.on_assigned = on_assigned

    def revoked(self, partitions: Iterable[TopicPartition]) -> None:
        revoked = set(partitions)
        with self.ownership.lock:  # waits for a write attempt in progress; none starts meanwhile
            self.ownership.suspend(revoked)
        self.offsets.hand_over(revoked, self.send_commit)

    def assigned(self, partitions: Iterable[TopicPartition]) -> None:
        assigned = set(partitions)
        lost = self.ownership.assign(assigned)  # queued work of lost partitions is dropped when reached
        self.forget(lost)
        self.offsets.forget(lost)
        log.info("assigned partitions %s", sorted(tp.partition for tp in assigned))
        if self.on_assigned is not None:
            self.on_assigned()
