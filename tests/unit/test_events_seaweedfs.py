"""SeaweedFS filer notifications (protobuf ``EventNotification``, keyed by path) reduced to events.

Messages are built with the generated classes, serialized, and parsed back from bytes, as the worker
receives them; one set is bytes captured from a real SeaweedFS 4.48 (``data/``).
"""

from __future__ import annotations

import base64
import hashlib
import json
from datetime import datetime
from pathlib import Path

import pytest

from consumers.dlq import DeadLetter
from consumers.metrics import EVENTS
from consumers.prepare import latest_events
from lookalike.events import BadEvent, ObjectEvent, parse_message
from lookalike.seaweed import filer_pb2 as pb
from lookalike.seaweed.events import ETAG_KEY, filer_etag
from tests.unit.fakes import Topic

CAPTURED = Path(__file__).parent / "data" / "seaweedfs-4.48-filer-events.json"
MD5 = hashlib.md5(b"cat").digest()


def _entry(name: str, size: int = 3, md5: bytes = MD5, directory: bool = False, **attrs: object) -> pb.Entry:
    return pb.Entry(
        name=name,
        is_directory=directory,
        attributes=pb.FuseAttributes(file_size=size, md5=md5, mime="image/jpeg", **attrs),  # type: ignore[arg-type]
    )


def _note(old: pb.Entry | None = None, new: pb.Entry | None = None, parent: str = "") -> bytes:
    note = pb.EventNotification(new_parent_path=parent)
    if old is not None:
        note.old_entry.CopyFrom(old)
    if new is not None:
        note.new_entry.CopyFrom(new)
    return note.SerializeToString()


def test_create_maps_the_path_to_bucket_and_key_with_etag_size_and_mtime() -> None:
    body = _note(new=_entry("c+t %41.jpg", mtime=1_700_000_000, mtime_ns=250_000_000), parent="/buckets/images/a dir")
    (ev,) = parse_message(body, key="/buckets/images/a dir/c+t %41.jpg")
    assert (ev.kind, ev.bucket, ev.key) == ("created", "images", "a dir/c+t %41.jpg")  # paths are not URL-encoded
    assert (ev.etag, ev.size, ev.content_type) == (MD5.hex(), 3, "image/jpeg")
    assert ev.event_time_ms == 1_700_000_000_250


def test_update_in_place_is_one_create() -> None:
    body = _note(old=_entry("k.jpg"), new=_entry("k.jpg", size=9), parent="/buckets/images")
    (ev,) = parse_message(body, key="/buckets/images/k.jpg")
    assert (ev.kind, ev.key, ev.size) == ("created", "k.jpg", 9)


def test_delete_names_its_object_through_the_kafka_key() -> None:
    (ev,) = parse_message(_note(old=_entry("k.jpg")), key="/buckets/images/x/k.jpg")
    assert (ev.kind, ev.bucket, ev.key, ev.etag, ev.size) == ("removed", "images", "x/k.jpg", None, None)
    with pytest.raises(BadEvent, match="Kafka key"):
        parse_message(_note(old=_entry("k.jpg")))
    with pytest.raises(BadEvent, match="does not end with"):
        parse_message(_note(old=_entry("k.jpg")), key="/buckets/images/other.jpg")


def test_rename_is_a_removal_of_the_old_key_and_a_creation_of_the_new() -> None:
    body = _note(old=_entry("a.jpg"), new=_entry("b.jpg"), parent="/buckets/images/moved")
    events = parse_message(body, key="/buckets/images/a.jpg")
    assert [(e.kind, e.bucket, e.key) for e in events] == [
        ("removed", "images", "a.jpg"),
        ("created", "images", "moved/b.jpg"),
    ]
    into = parse_message(_note(old=_entry("a.jpg"), new=_entry("a.jpg"), parent="/buckets/b2"), key="/tmp/a.jpg")
    assert [(e.kind, e.bucket, e.key) for e in into] == [("created", "b2", "a.jpg")]  # from outside: only the new side


def test_a_file_replaced_by_a_folder_is_removed() -> None:
    body = _note(old=_entry("k"), new=_entry("k", directory=True), parent="/buckets/images")
    assert [(e.kind, e.key) for e in parse_message(body, key="/buckets/images/k")] == [("removed", "k")]


@pytest.mark.parametrize(
    "parent, name, directory",
    [
        ("/buckets/images", "a dir", True),  # folders
        ("/buckets", "images", True),  # the bucket itself
        ("/buckets/.system/owners/app", "images", False),  # SeaweedFS's own records
        ("/buckets/images/.uploads/u1", "0001_x.part", False),  # multipart parts
        ("/buckets/images", ".uploads", True),
        ("/topics/.system/log", "x", False),  # anything outside /buckets
        ("/", "buckets", True),
    ],
)
def test_internal_paths_and_folders_give_no_event_and_no_dead_letter(parent: str, name: str, directory: bool) -> None:
    body = _note(new=_entry(name, directory=directory), parent=parent)
    assert parse_message(body, key=f"{parent.rstrip('/')}/{name}") == []
    assert parse_message(_note(old=_entry(name, directory=directory)), key=f"{parent.rstrip('/')}/{name}") == []


@pytest.mark.parametrize(
    "parent, name", [("/buckets/images/.uploads", "x.jpg"), ("/buckets/images/a/.system", "x.jpg")]
)
def test_user_objects_with_internal_looking_names_are_objects(parent: str, name: str) -> None:
    """Only ``.uploads/<upload id>/`` and ``/buckets/.system`` are SeaweedFS's own; these are listable objects."""
    events = parse_message(_note(new=_entry(name), parent=parent), key=f"{parent}/{name}")
    assert [(e.kind, e.bucket, e.key) for e in events] == [
        ("created", "images", f"{parent[len('/buckets/images/') :]}/{name}")
    ]


def test_a_version_file_also_points_at_the_object_it_is_a_version_of() -> None:
    body = _note(new=_entry("v_0a1b"), parent="/buckets/images/cat.jpg.versions")
    events = parse_message(body, key="/buckets/images/cat.jpg.versions/v_0a1b")
    assert [(e.kind, e.key, e.etag) for e in events] == [
        ("created", "cat.jpg.versions/v_0a1b", MD5.hex()),  # the worker looks at both keys now
        ("created", "cat.jpg", None),
    ]


def _chunk(data: bytes, offset: int = 0) -> pb.FileChunk:
    e_tag = base64.b64encode(hashlib.md5(data).digest()).decode()
    return pb.FileChunk(offset=offset, size=len(data), e_tag=e_tag)


def test_etag_as_the_s3_gateway_reports_it() -> None:
    stored = pb.Entry(name="m", extended={ETAG_KEY: b'"0123abcd-3"'}, attributes=pb.FuseAttributes(md5=MD5))
    assert filer_etag(stored) == "0123abcd-3"  # multipart: the stored S3 ETag wins
    assert filer_etag(pb.Entry(name="m", attributes=pb.FuseAttributes(md5=MD5))) == MD5.hex()
    one = pb.Entry(name="m", chunks=[_chunk(b"ab")])
    assert filer_etag(one) == hashlib.md5(b"ab").hexdigest()
    two = pb.Entry(name="m", chunks=[_chunk(b"ab"), _chunk(b"cd", 2)])
    joined = hashlib.md5(b"ab").digest() + hashlib.md5(b"cd").digest()
    assert filer_etag(two) == f"{hashlib.md5(joined).hexdigest()}-2"
    assert filer_etag(pb.Entry(name="m", chunks=[pb.FileChunk(e_tag="not base64!")])) is None
    assert filer_etag(pb.Entry(name="m")) is None
    assert filer_etag(pb.Entry(name="m", extended={ETAG_KEY: b"\xff"})) is None


def test_size_counts_chunks_when_attributes_lag() -> None:
    entry = pb.Entry(name="k.jpg", chunks=[_chunk(b"ab"), _chunk(b"cdef", 2)], attributes=pb.FuseAttributes())
    (ev,) = parse_message(_note(new=entry, parent="/buckets/images"), key="/buckets/images/k.jpg")
    assert (ev.size, ev.event_time_ms, ev.content_type) == (6, 0, None)


@pytest.mark.parametrize(
    "body, reason",
    [
        (b"", "neither old_entry nor new_entry"),
        (b"\x08\x96\x01", "neither old_entry nor new_entry"),  # a valid protobuf of something else
        (pb.FuseAttributes(file_size=5, mime="x").SerializeToString(), "not a SeaweedFS EventNotification"),
        (b"\x12\x00", "neither old_entry nor new_entry"),
        (_note(new=pb.Entry(name="a/b"), parent="/buckets/b"), "valid name"),
        (_note(new=_entry("k.jpg"), parent="buckets/b"), "not absolute"),
        (b"\x12\x05\x0a\x09abc", "not a SeaweedFS EventNotification"),  # truncated
        (b"\xff\xfe\xfd", "not JSON"),
    ],
)
def test_garbage_and_foreign_protobufs_are_bad_events(body: bytes, reason: str) -> None:
    with pytest.raises(BadEvent, match=reason):
        parse_message(body, key="/buckets/b/k.jpg")


def test_json_messages_ignore_the_key() -> None:
    record = {"eventName": "s3:ObjectCreated:Put", "s3": {"bucket": {"name": "b"}, "object": {"key": "a+b.jpg"}}}
    (ev,) = parse_message(json.dumps({"EventName": "x", "Key": "b/a b.jpg", "Records": [record]}).encode(), key="b/x")
    assert (ev.bucket, ev.key) == ("b", "a b.jpg")


def test_messages_captured_from_a_real_seaweedfs() -> None:
    captured = json.loads(CAPTURED.read_text())
    events = [ev for m in captured["messages"] for ev in parse_message(base64.b64decode(m["value"]), key=m["key"])]
    assert [(e.kind, e.bucket, e.key) for e in events] == [
        ("created", "images", "a dir/cat+1.jpg"),
        ("created", "images", "a dir/cat+1.jpg"),
        ("created", "images", "big.jpg"),
        ("removed", "images", "a dir/cat+1.jpg"),
    ]
    heads = captured["heads"]
    assert [(e.etag, e.size) for e in events[1:3]] == [
        (heads[k]["ETag"].strip('"'), heads[k]["ContentLength"]) for k in ("a dir/cat+1.jpg", "big.jpg")
    ]
    assert events[2].etag.endswith("-2")  # type: ignore[union-attr]  # the multipart ETag, as HEAD reports it
    assert events[1].size == 120 and events[0].size == 100
    last_modified = [int(datetime.fromisoformat(heads[k]["LastModified"]).timestamp()) for k in heads]
    assert [e.event_time_ms // 1000 for e in events[1:3]] == last_modified  # mtime, to HEAD's second


def test_the_worker_passes_the_kafka_key_and_skips_the_filers_other_buckets() -> None:
    topic = Topic()
    messages = [
        topic.raw(_note(old=_entry("k.jpg")), key="/buckets/images/k.jpg"),  # a delete: only the key names it
        topic.raw(_note(new=_entry("o.jpg"), parent="/buckets/other"), key="/buckets/other/o.jpg"),
        topic.raw(_note(new=_entry("p"), parent="/buckets/images/.uploads/u"), key="/buckets/images/.uploads/u/p"),
    ]
    dead: list[DeadLetter] = []
    skipped = EVENTS.labels("other_bucket")._value.get()
    latest = latest_events(messages, ["images"], dead)
    assert [(p.event.kind, p.event.id) for p in latest.values()] == [("removed", "images/k.jpg")]
    # the filer publishes every bucket: another bucket's object is another tenant's, skipped and counted
    assert dead == [] and EVENTS.labels("other_bucket")._value.get() == skipped + 1
    # a JSON sender (MinIO, Ceph) is configured per bucket: an unwatched one is misrouted, a dead letter
    misrouted = [topic.raw(json.dumps({"Records": [ObjectEvent("created", "other", "o.jpg").to_record()]}).encode())]
    assert latest_events(misrouted, ["images"], dead) == {}
    assert [(d.key, d.reason) for d in dead] == [("other/o.jpg", "bucket not watched: other")]
