"""The commit stage and the revocation fence, with fakes: no broker, no Milvus."""

from __future__ import annotations

import threading

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

    def upsert(self, rows):  # type: ignore[no-untyped-def]
        if not self.entered.is_set():
            self.entered.set()
            assert self.release.wait(30)
        super().upsert(rows)


def test_nothing_planned_for_a_revoked_partition_is_written_after_the_callback() -> None:
    settings = Settings(_env_file=None, bucket="images")  # type: ignore[call-arg]
    store, index, dlq, emb = FakeStore(), BlockingIndex(), FakeDeadLetters(), FakeEmbedder()
    planner = PrepareStage(settings, store, index, emb, threads=2)
    ownership = Ownership()
    committer = FakeCommitter()
    halt = threading.Event()
    returned = threading.Event()
    embed_batch = emb.embed_prepared
    calls: list[int] = []

    def embed_after_the_callback(batch):  # type: ignore[no-untyped-def]
        calls.append(len(batch))
        if len(calls) == 2:  # batch N+1 reaches its write only once the revocation has returned
            assert returned.wait(30)
        return embed_batch(batch)

    emb.embed_prepared = embed_after_the_callback  # type: ignore[method-assign]
    checkpoint = Checkpoint(Writer(index, dlq, flush_rows=0), committer, planner.inflight.release)
    stage = WriteThread(checkpoint, emb, ownership, halt, 0.0)
    offsets = checkpoint.offsets
    handoff = Handoff(ownership, offsets, committer.commit, planner.inflight.forget)
    handoff.assigned({P0, P1})
    t = Topic()
    for i in range(4):
        store.put("images", f"k{i}.png", png((i * 40, 0, 0)))
    first = [t.event("created", "images", "k0.png", partition=0), t.event("created", "images", "k1.png", partition=1)]
    second = [t.event("created", "images", "k2.png", partition=0), t.event("created", "images", "k3.png", partition=1)]
    stage.start()
    try:
        assert stage.submit(planner.prepare(first, ownership.epochs({P0, P1})))
        assert index.entered.wait(30)  # the write stage is blocked inside Milvus' upsert of batch N
        assert stage.submit(planner.prepare(second, ownership.epochs({P0, P1}))), stage.error  # N+1 waits its turn

        marks: list[int] = []

        def revoke() -> None:
            handoff.revoked({P0, P1})  # an eager rebalance revokes everything...
            marks.append(len(index.log))  # every write after this is after the callback returned
            returned.set()

        revoker = threading.Thread(target=revoke)
        revoker.start()
        index.release.set()  # batch N finishes; the callback then gets the fence
        revoker.join(30)
        assert returned.is_set()
        (writes_at_return,) = marks
        # batch N was written before the callback returned, and its P0 offset committed by it
        assert {"images/k0.png", "images/k1.png"} <= {i for _, i in index.log[:writes_at_return]}
        assert committer.committed() == {P0: 1, P1: 1}
        handoff.assigned({P1})  # ...and gives back P1 only

        wait_for(lambda: stage.inbox.empty() and len(planner.inflight) == 0, 30, what="batch N+1 settled")
        after = index.log[writes_at_return:]
        assert ("upsert", "images/k2.png") not in after  # planned for P0, which this member lost
        assert after == [("upsert", "images/k3.png")]  # P1 is still ours
        offsets.durable()
        offsets.commit(ownership.owned())
        assert committer.committed() == {P0: 1, P1: 2}
    finally:
        index.release.set()
        stage.closing.set()
        halt.set()
        stage.join(10)
        planner.close()


def test_kept_partitions_keep_their_epoch_and_lost_ones_never_come_back_with_it() -> None:
    ownership = Ownership()
    ownership.assign({P0, P1})
    polled = ownership.epochs({P0, P1})
    ownership.suspend({P0, P1})  # eager rebalance: everything revoked...
    assert ownership.unsettled({P0}) and ownership.still_owned(polled) == set()
    assert ownership.epochs({P0}) == {P0: polled[P0]}  # a batch polled just now still belongs to it
    assert ownership.assign({P0}) == {P1}  # ...P0 kept (the consumer keeps its position), P1 lost
    assert ownership.still_owned(polled) == {P0}  # planned work of P0 is written, not lost
    ownership.assign({P1})  # P1 back later: replayed from the committed offset, under a new epoch
    assert ownership.still_owned(polled) == {P0}
