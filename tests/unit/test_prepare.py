"""The plan stage against in-memory fakes: containment, watched buckets, and planning ahead of writes.

The worker plans batch N+1 while batch N is still being embedded and written. These tests run that
interleaving deterministically: plan N, plan N+1, then write N, then write N+1.
"""

from __future__ import annotations

import json

import pytest

from consumers.batch import Work
from consumers.embed import embed
from consumers.prepare import PrepareStage
from consumers.writer import Writer
from lookalike.errors import Unavailable
from lookalike.settings import Settings
from tests.unit.fakes import FakeDeadLetters, FakeEmbedder, FakeIndex, FakeStore, Topic, png

B = "images"


@pytest.fixture()
def env():  # type: ignore[no-untyped-def]
    settings = Settings(_env_file=None, bucket=B, buckets=["more"])  # type: ignore[call-arg]
    store, index, dlq, emb = FakeStore(), FakeIndex(), FakeDeadLetters(), FakeEmbedder()
    planner = PrepareStage(settings, store, index, emb, threads=2)
    writer = Writer(index, dlq, flush_rows=0)

    def write(work: Work) -> None:
        writer.write(*embed(work, emb))
        planner.inflight.release(work.batch_id)

    yield store, index, dlq, planner, write
    planner.close()


def test_put_then_delete_in_consecutive_batches_leaves_no_ghost(env) -> None:  # type: ignore[no-untyped-def]
    store, index, _, planner, write = env
    t = Topic()
    store.put(B, "k.png", png((200, 0, 0)))
    n = planner.prepare([t.event("created", B, "k.png")])
    store.remove(B, "k.png")
    n1 = planner.prepare([t.event("removed", B, "k.png")])  # planned while N is not yet written
    write(n)
    write(n1)
    assert index.rows == {}
    assert len(planner.inflight) == 0


def test_delete_then_reput_of_the_same_bytes_ends_indexed(env) -> None:  # type: ignore[no-untyped-def]
    store, index, _, planner, write = env
    t = Topic()
    data = png((0, 200, 0))
    etag = store.put(B, "k.png", data)
    write(planner.prepare([t.event("created", B, "k.png", etag)]))
    assert index.etags() == {f"{B}/k.png": etag}

    store.remove(B, "k.png")
    n = planner.prepare([t.event("removed", B, "k.png")])
    assert store.put(B, "k.png", data) == etag  # same bytes, same etag
    n1 = planner.prepare([t.event("created", B, "k.png", etag)])  # the index still shows etag: not a skip
    assert n1.skipped == 0 and len(n1.upserts) == 1
    write(n)
    write(n1)
    assert index.etags() == {f"{B}/k.png": etag}


def test_overwrite_across_batches_the_newer_bytes_win(env) -> None:  # type: ignore[no-untyped-def]
    store, index, _, planner, write = env
    t = Topic()
    a = store.put(B, "k.png", png((10, 10, 10)))
    n = planner.prepare([t.event("created", B, "k.png", a)])
    b = store.put(B, "k.png", png((240, 240, 240)))
    n1 = planner.prepare([t.event("created", B, "k.png", b)])
    n2 = planner.prepare([t.event("created", B, "k.png", a)])  # a late replay of the first event
    for w in (n, n1, n2):
        write(w)
    assert index.etags() == {f"{B}/k.png": b}
    assert index.rows[f"{B}/k.png"].vector[0] > 200


def test_gone_and_dead_objects_are_deleted_without_trusting_index_state(env) -> None:  # type: ignore[no-untyped-def]
    store, _, _, planner, _ = env
    t = Topic()
    store.put(B, "bad.png", b"not an image")
    work = planner.prepare([t.event("created", B, "never.png"), t.event("created", B, "bad.png")])
    assert sorted(d.id for d in work.deletes) == [f"{B}/bad.png", f"{B}/never.png"]
    assert [d.key for d in work.dead] == [f"{B}/bad.png"]
    assert work.dead[0].reason.startswith("not an image")  # BadInput reasons are kept as written


@pytest.mark.parametrize(
    "value, reason",
    [
        (b"\xff\xfe\x00garbage", "bad event: not JSON"),
        (json.dumps({"Type": "Notification", "Message": 5}).encode(), "bad event: SNS Message is a int"),
        (json.dumps({"Records": [5]}).encode(), "bad event: record is not an object"),
        (json.dumps({"Records": "x"}).encode(), "bad event: Records is not a list"),
        (json.dumps([1, 2]).encode(), "bad event: notification is not a JSON object"),
        (b"[" * 100_000, "bad event: not JSON"),
    ],
)
def test_malformed_messages_become_dead_letters(env, value: bytes, reason: str) -> None:  # type: ignore[no-untyped-def]
    _, _, _, planner, _ = env
    work = planner.prepare([Topic().raw(value)])
    assert [d.reason.split(":")[0] for d in work.dead] == ["bad event"]
    assert work.dead[0].reason.startswith(reason), work.dead[0].reason


def test_odd_field_types_do_not_cost_the_event(env) -> None:  # type: ignore[no-untyped-def]
    store, _, _, planner, _ = env
    etag = store.put(B, "k.png", png((1, 2, 3)))
    record = {
        "eventName": "s3:ObjectCreated:Put",
        "eventTime": "99999-01-01T00:00:00Z",
        "s3": {"bucket": {"name": B}, "object": {"key": "k.png", "eTag": 5, "size": 1e999, "contentType": 7}},
    }
    work = planner.prepare([Topic().raw(json.dumps({"Records": [record]}).encode())])
    assert work.dead == [] and [u.row.etag for u in work.upserts] == [etag]


def test_foreign_bucket_is_dead_lettered_and_watched_ones_are_not(env) -> None:  # type: ignore[no-untyped-def]
    store, _, _, planner, _ = env
    t = Topic()
    store.put("more", "m.png", png((5, 5, 5)))
    work = planner.prepare([t.event("created", "elsewhere", "x.png"), t.event("created", "more", "m.png")])
    assert [(d.key, d.reason) for d in work.dead] == [("elsewhere/x.png", "bucket not watched: elsewhere")]
    assert [u.row.id for u in work.upserts] == ["more/m.png"]
    assert work.deletes == []  # never touch vectors of a bucket this worker does not own


def test_any_exception_of_one_object_is_contained_but_outages_propagate(env) -> None:  # type: ignore[no-untyped-def]
    store, _, _, planner, _ = env
    t = Topic()
    store.put(B, "ok.png", png((9, 9, 9)))
    store.fail["boom.png"] = RuntimeError("client bug")
    store.fail["odd/./a.png"] = ValueError("object name with '.' or '..' path segment is not supported")
    work = planner.prepare(
        [t.event("created", B, "ok.png"), t.event("created", B, "boom.png"), t.event("created", B, "odd/./a.png")]
    )
    assert [u.row.id for u in work.upserts] == [f"{B}/ok.png"]
    reasons = {d.key: d.reason for d in work.dead}
    assert reasons == {
        f"{B}/boom.png": "RuntimeError: client bug",
        f"{B}/odd/./a.png": "ValueError: object name with '.' or '..' path segment is not supported",
    }
    store.fail["down.png"] = Unavailable("s3", "connection refused")
    before = len(planner.inflight)
    with pytest.raises(Unavailable):
        planner.prepare([t.event("created", B, "ok.png", "other"), t.event("created", B, "down.png")])
    assert len(planner.inflight) == before  # a failed plan records nothing


def test_a_decoder_bug_is_this_objects_dead_letter(env) -> None:  # type: ignore[no-untyped-def]
    store, _, _, planner, _ = env

    def broken(image):  # type: ignore[no-untyped-def]
        raise ZeroDivisionError("division by zero")

    planner.embedder.prepare = broken
    store.put(B, "k.png", png((1, 1, 1)))
    work = planner.prepare([Topic().event("created", B, "k.png")])
    assert [d.reason for d in work.dead] == ["ZeroDivisionError: division by zero"]


def test_revoked_partitions_are_forgotten_by_the_overlay(env) -> None:  # type: ignore[no-untyped-def]
    store, index, _, planner, write = env
    t = Topic()
    data = png((50, 50, 50))
    etag = store.put(B, "k.png", data)
    dropped = planner.prepare([t.event("created", B, "k.png", etag, partition=1)])
    from kafka.structs import TopicPartition

    planner.inflight.forget({TopicPartition("events", 1)})  # the batch will never be written here
    again = planner.prepare([t.event("created", B, "k.png", etag, partition=1)])  # the replay after re-assignment
    assert again.skipped == 0 and len(again.upserts) == 1
    write(again)
    assert index.etags() == {f"{B}/k.png": etag} and dropped.upserts
