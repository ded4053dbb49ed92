"""The change feed with fakes: outcomes of a batch, order per key, and no commit when a publish fails."""

from __future__ import annotations

import threading

import pytest
from kafka.structs import TopicPartition

from consumers.batch import Work
from consumers.checkpoint import Checkpoint
from consumers.embed import embed
from consumers.offsets import Handoff, Ownership
from consumers.prepare import PrepareStage
from consumers.write_thread import WriteThread
from consumers.writer import Writer
from lookalike.feed import FeedRecord
from lookalike.settings import Settings
from tests.helpers import wait_for
from tests.unit.fakes import FakeCommitter, FakeDeadLetters, FakeEmbedder, FakeFeed, FakeIndex, FakeStore, Topic, png

B = "images"


@pytest.fixture()
def env():  # type: ignore[no-untyped-def]
    settings = Settings(_env_file=None, bucket=B)  # type: ignore[call-arg]
    store, index, dlq, emb, feed = FakeStore(), FakeIndex(), FakeDeadLetters(), FakeEmbedder(), FakeFeed()
    planner = PrepareStage(settings, store, index, emb, threads=2)
    writer = Writer(index, dlq, flush_rows=0, feed=feed)

    def write(work: Work) -> None:
        writer.write(*embed(work, emb))
        planner.inflight.release(work.batch_id)

    yield store, feed, planner, write
    planner.close()


def test_one_record_per_outcome_with_its_fields(env) -> None:  # type: ignore[no-untyped-def]
    store, feed, planner, write = env
    t = Topic()
    etag = store.put(B, "ok.png", png((10, 20, 30)))
    store.put(B, "gone.png", png((1, 2, 3)))
    write(planner.prepare([t.event("created", B, "gone.png")], {}))
    store.remove(B, "gone.png")
    store.put(B, "bad.jpg", b"not an image at all")
    feed.records.clear()
    write(
        planner.prepare(
            [
                t.event("created", B, "ok.png"),
                t.event("removed", B, "gone.png"),
                t.event("created", B, "bad.jpg"),
                t.raw(b"junk that names no object"),
            ],
            {},
        )
    )
    by_id = {r.id: r for r in feed.records}
    assert set(by_id) == {f"{B}/ok.png", f"{B}/gone.png", f"{B}/bad.jpg"}  # the junk names no object
    ok = by_id[f"{B}/ok.png"]
    assert (ok.outcome, ok.etag, ok.size) == ("indexed", etag, len(png((10, 20, 30))))
    assert ok.at > 0 and ok.duplicate_of is None
    assert by_id[f"{B}/gone.png"].outcome == "removed"
    bad = by_id[f"{B}/bad.jpg"]
    assert bad.outcome == "dead" and bad.reason
    parsed = FeedRecord.parse(ok.to_json())
    assert parsed == ok
    assert b'"indexed_at"' in ok.to_json()


def test_outcomes_of_one_key_are_published_in_the_order_written(env) -> None:  # type: ignore[no-untyped-def]
    store, feed, planner, write = env
    t = Topic()
    first = store.put(B, "k.png", png((255, 0, 0)))
    write(planner.prepare([t.event("created", B, "k.png")], {}))
    second = store.put(B, "k.png", png((0, 255, 0)))
    write(planner.prepare([t.event("created", B, "k.png")], {}))
    store.remove(B, "k.png")
    write(planner.prepare([t.event("removed", B, "k.png")], {}))
    mine = [(r.outcome, r.etag) for r in feed.records if r.id == f"{B}/k.png"]
    assert mine == [("indexed", first), ("indexed", second), ("removed", None)]


def test_a_failed_publish_commits_nothing_until_it_succeeds() -> None:
    settings = Settings(_env_file=None, bucket=B)  # type: ignore[call-arg]
    store, index, dlq, emb, feed = FakeStore(), FakeIndex(), FakeDeadLetters(), FakeEmbedder(), FakeFeed()
    planner = PrepareStage(settings, store, index, emb, threads=2)
    ownership, committer, halt = Ownership(), FakeCommitter(), threading.Event()
    checkpoint = Checkpoint(Writer(index, dlq, flush_rows=0, feed=feed), committer, planner.inflight.release)
    stage = WriteThread(checkpoint, emb, ownership, halt, 0)
    offsets = checkpoint.offsets
    Handoff(ownership, offsets, committer.commit, planner.inflight.forget).assigned({TopicPartition("events", 0)})
    store.put(B, "a.png", png((9, 9, 9)))
    feed.fail = 2  # Kafka refuses the feed twice: the write attempt is retried as an outage
    stage.start()
    try:
        assert stage.submit(
            planner.prepare([Topic().event("created", B, "a.png")], ownership.epochs(ownership.owned()))
        )
        wait_for(lambda: feed.attempts >= 2, 30, what="two failed publishes")
        assert f"{B}/a.png" in index.rows  # Milvus has it...
        offsets.durable()
        offsets.commit(ownership.owned())
        assert committer.commits == [] and feed.records == []  # ...but nothing is committed yet
        wait_for(lambda: offsets.durable() or offsets.pending, 30, what="the batch durable after the outage")
        offsets.commit(ownership.owned())
        assert committer.committed() == {TopicPartition("events", 0): 1}
        assert [r.id for r in feed.records] == [f"{B}/a.png"]
    finally:
        stage.closing.set()
        halt.set()
        stage.join(10)
        planner.close()


@pytest.mark.parametrize("value", [b"", b"[]", b"{}", b'{"outcome": "exploded"}', b"\xff"])
def test_anything_that_is_not_a_feed_record_parses_to_none(value: bytes) -> None:
    assert FeedRecord.parse(value) is None


def test_a_record_without_id_takes_the_message_key() -> None:
    rec = FeedRecord.parse(b'{"outcome": "removed", "at": 5}', key=b"images/x.jpg")
    assert rec == FeedRecord("images/x.jpg", "removed", 5)
