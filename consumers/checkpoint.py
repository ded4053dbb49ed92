"""The commit order of a batch, owned by one object and stated in numbered steps.

A message's offset may be committed only once everything it asked for is durable; a failure at any
step raises before the later steps run, so nothing of the batch is committed and its messages come
back (every step is idempotent, so the replay is harmless). For each batch, in this order:

1. **write**: Milvus accepts the batch's upserts (with their near-duplicate marks) and deletes. An
   object Milvus refuses alone is bisected out and joins the dead letters (``Writer.write``).
2. **dead letters**: Kafka acknowledges every dead letter of the batch (``Writer.write``).
3. **feed**: Kafka acknowledges the batch's change-feed records (``Writer.write``).
4. **durable**: the batch's messages are queued as durable, and the prepare stage's in-flight overlay
   forgets the batch: the index itself now tells the truth for its ids (``Checkpoint.settle``).
5. **commit**: on the polling thread (the Kafka consumer is not thread-safe), the durable offsets are
   committed in order, for the partitions this member still owns (``Checkpoint.commit``).

Steps 1 to 4 run on the write thread inside the revocation fence (``consumers.offsets.Ownership``),
so nothing is written for a partition this member no longer owns.
"""

from __future__ import annotations

import queue
from collections.abc import Callable

from kafka.structs import TopicPartition

from consumers.batch import Work
from consumers.offsets import Offsets
from consumers.ports import Committer, Message
from consumers.writer import Writer
from lookalike.rows import IndexRow


class Checkpoint:
    """Settles written batches (steps 1 to 4) and commits their offsets (step 5)."""

    def __init__(self, writer: Writer, committer: Committer, release: Callable[[int], None]) -> None:
        self.writer = writer
        self.release = release  # the prepare stage's in-flight overlay: this batch is settled
        self._done: queue.Queue[list[Message]] = queue.Queue()
        self.offsets = Offsets(committer, collect=self.finished)

    def settle(self, work: Work, rows: list[IndexRow]) -> None:
        """Steps 1 to 4 for one embedded batch; raises (``Unavailable``) before step 4 on a failure."""
        self.writer.write(work, rows)  # 1. write, 2. dead letters, 3. feed
        self._done.put(work.messages)  # 4. durable ...
        self.release(work.batch_id)  # ... and no longer in flight

    def abandon(self, work: Work) -> None:
        """Stopped during an outage: the batch is dropped, nothing of it is committed."""
        self.release(work.batch_id)

    def finished(self) -> list[Message]:
        """Messages of every batch settled since the last call (in settle order)."""
        out: list[Message] = []
        while True:
            try:
                out.extend(self._done.get_nowait())
            except queue.Empty:
                return out

    def idle(self) -> bool:
        return self._done.empty()

    def commit(self, owned: set[TopicPartition]) -> bool:
        """Step 5: commit every durable offset of the partitions in ``owned``; False if the group moved.

        The polling thread collects what was settled first (``offsets.durable``, which counts it)."""
        return self.offsets.commit(owned)
