"""The commit stage and the revocation fence, with fakes: no broker, no Milvus."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import pytest
from kafka.structs import TopicPartition

from consumers.checkpoint import Checkpoint
from consumers.offsets import Handoff, OffsetRegression, Offsets, Ownership
from consumers.ports import Message
from consumers.prepare import PrepareStage
from consumers.write_thread import WriteThread
from consumers.writer import Writer
from lookalike.settings import Settings
from tests.helpers import wait_for
from tests.unit.fakes import FakeCommitter, FakeDeadLetters, FakeEmbedder, FakeIndex, FakeStore, Topic, png

P0, P1 = TopicPartition("events", 0), TopicPartition("events", 1)


def _msg(partition: int, offset: int) -> Message:
    return Message("events", partition, offset, None, b"")


def test_offsets_commit_in_order_only_for_owned_partitions() -> None:
    committer = FakeCommitter()
    offsets = Offsets(committer)
    offsets.durable([_msg(0, 0), _msg(0, 1), _msg(1, 5)])
    assert offsets.commit({P0})
    assert committer.commits == [{P0: 2}]
    assert offsets.pending == {P1: 6}  # P1 is not owned now: kept until an assignment settles it
    offsets.forget({P1})  # lost to another member: never committed by this one
    assert offsets.pending == {}
    offsets.durable([_msg(0, 2)])
    assert offsets.commit({P0, P1}) and committer.commits[-1] == {P0: 3}


def test_an_offset_going_backwards_raises() -> None:
    offsets = Offsets(FakeCommitter())
    offsets.durable([_msg(0, 9)])
    offsets.commit({P0})
    with pytest.raises(OffsetRegression):
        offsets.durable([_msg(0, 3)])


def test_hand_over_sends_what_is_durable_and_forget_drops_the_partition() -> None:
    committer = FakeCommitter()
    finished = [[_msg(0, 5)]]
    offsets = Offsets(committer, collect=lambda: finished.pop() if finished else [])
    offsets.durable([_msg(0, 4), _msg(1, 7)])
    offsets.hand_over({P0}, committer.commit)
    assert committer.commits == [{P0: 6}]  # includes what the write stage had just finished
    offsets.forget({P0})
    assert offsets.pending == {P1: 8}
    offsets.durable([_msg(0, 0)])  # owned again later, replayed from an older commit: not a regression


class BlockingIndex(FakeIndex):
    """Blocks the first upsert until released, so a revocation can arrive mid-write."""

    def __init__(self) -> None:
        super().__init__()
        self.entered = threading.Event()
        self.release = threading.Event()

    def upsert(self, rows, checked=False):  # type: ignore[no-untyped-def]
        if not self.entered.is_set():
            self.entered.set()
            assert self.release.wait(30)
        super().upsert(rows, checked)


@dataclass
class Rig:
    """The prepare stage, the write thread and the hand-off of one worker, on fakes; the second
    model call (batch N+1) waits until ``returned`` is set (the revocation callback has returned)."""

    index: BlockingIndex
    store: FakeStore
    planner: PrepareStage
    ownership: Ownership
    committer: FakeCommitter
    stage: WriteThread
    handoff: Handoff
    returned: threading.Event


@contextmanager
def rig() -> Iterator[Rig]:
    settings = Settings(_env_file=None, bucket="images")  # type: ignore[call-arg]
    index, store, emb, returned = BlockingIndex(), FakeStore(), FakeEmbedder(), threading.Event()
    planner = PrepareStage(settings, store, index, emb, threads=2)
    embed_batch, calls = emb.embed_prepared, []

    def embed_after_the_callback(batch):  # type: ignore[no-untyped-def]
        calls.append(len(batch))
        if len(calls) == 2:  # batch N+1 reaches its write only once the revocation has returned
            assert returned.wait(30)
        return embed_batch(batch)

    emb.embed_prepared = embed_after_the_callback  # type: ignore[method-assign]
    ownership, committer, halt = Ownership(), FakeCommitter(), threading.Event()
    checkpoint = Checkpoint(Writer(index, FakeDeadLetters(), flush_rows=0), committer, planner.inflight.release)
    stage = WriteThread(checkpoint, emb, ownership, halt, 0.0)
    handoff = Handoff(ownership, checkpoint.offsets, committer.commit, planner.inflight.forget)
    handoff.assigned({P0, P1})
    stage.start()
    try:
        yield Rig(index, store, planner, ownership, committer, stage, handoff, returned)
    finally:
        index.release.set()
        stage.closing.set()
        halt.set()
        stage.join(10)
        planner.close()


def revoke_mid_write(r: Rig) -> int:
    """Revokes both partitions while batch N is blocked inside Milvus' upsert; returns how many
    writes the index had seen when the callback returned."""
    marks: list[int] = []

    def revoke() -> None:
        r.handoff.revoked({P0, P1})  # an eager rebalance revokes everything...
        marks.append(len(r.index.log))  # every write after this is after the callback returned
        r.returned.set()

    revoker = threading.Thread(target=revoke)
    revoker.start()
    r.index.release.set()  # batch N finishes; the callback then gets the fence
    revoker.join(30)
    assert r.returned.is_set()
    return marks[0]


def test_nothing_planned_for_a_revoked_partition_is_written_after_the_callback() -> None:
    t = Topic()
    with rig() as r:
        for i in range(4):
            r.store.put("images", f"k{i}.png", png((i * 40, 0, 0)))
        first = [t.event("created", "images", f"k{i}.png", partition=i) for i in (0, 1)]
        second = [t.event("created", "images", f"k{i + 2}.png", partition=i) for i in (0, 1)]
        assert r.stage.submit(r.planner.prepare(first, r.ownership.epochs({P0, P1})))
        assert r.index.entered.wait(30)  # the write stage is blocked inside Milvus' upsert of batch N
        assert r.stage.submit(r.planner.prepare(second, r.ownership.epochs({P0, P1}))), r.stage.error  # N+1 waits

        writes_at_return = revoke_mid_write(r)
        # batch N was written before the callback returned, and its P0 offset committed by it
        assert {"images/k0.png", "images/k1.png"} <= {i for _, i in r.index.log[:writes_at_return]}
        assert r.committer.committed() == {P0: 1, P1: 1}
        r.handoff.assigned({P1})  # ...and gives back P1 only

        settled = lambda: r.stage.inbox.empty() and len(r.planner.inflight) == 0  # noqa: E731
        wait_for(settled, 30, what="batch N+1 settled")
        after = r.index.log[writes_at_return:]
        assert ("upsert", "images/k2.png") not in after  # planned for P0, which this member lost
        assert after == [("upsert", "images/k3.png")]  # P1 is still ours
        r.stage.checkpoint.offsets.durable()
        r.stage.checkpoint.offsets.commit(r.ownership.owned())
        assert r.committer.committed() == {P0: 1, P1: 2}
