"""The worker never dies on data, on the real local stack: odd keys, garbage and foreign events on the
topic, MinIO's own message shape, and PUT/DELETE/re-PUT/overwrite races while two workers chew a
backlog. After each: every worker is alive, a later upload is indexed, and index == bucket (keys and
etags), with every refused message in the dead letters with a reason."""

from __future__ import annotations

import io
import json
import random
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import quote_plus

import pytest
from kafka import KafkaProducer
from PIL import Image

from tests.conftest import Pipeline, open_pipeline
from tests.helpers import remove_object, topic_messages, unique, wait_committed, wait_for

pytestmark = pytest.mark.integration


def _jpeg(seed: int, size: int = 48) -> bytes:
    rng = random.Random(seed)
    img = Image.new("RGB", (size, size), tuple(rng.randrange(256) for _ in range(3)))  # type: ignore[arg-type]
    for _ in range(6):
        x, y = rng.randrange(size - 8), rng.randrange(size - 8)
        img.paste(tuple(rng.randrange(256) for _ in range(3)), (x, y, x + 8, y + 8))  # type: ignore[arg-type]
    out = io.BytesIO()
    img.save(out, "JPEG", quality=85)
    return out.getvalue()


def _boto3(p: Pipeline):  # type: ignore[no-untyped-def]
    import boto3

    s = p.settings
    return boto3.client(
        "s3",
        endpoint_url=s.s3_endpoint,  # type: ignore[attr-defined]
        region_name=s.s3_region,  # type: ignore[attr-defined]
        aws_access_key_id=s.s3_access_key,  # type: ignore[attr-defined]
        aws_secret_access_key=s.s3_secret_key.get_secret_value(),  # type: ignore[attr-defined]
    )


def _produce(p: Pipeline, messages: list[tuple[str | None, bytes]]) -> None:
    s = p.settings
    producer = KafkaProducer(bootstrap_servers=s.kafka_bootstrap, acks="all")  # type: ignore[attr-defined]
    try:
        for key, value in messages:
            producer.send(s.topic, key=key.encode() if key else None, value=value)  # type: ignore[attr-defined]
        producer.flush()
    finally:
        producer.close()


def _dead_letters(p: Pipeline) -> list[dict]:
    s = p.settings
    return [json.loads(v) for _, v in topic_messages(s.kafka_bootstrap, s.dead_letter_topic)]  # type: ignore[attr-defined]


def _settled(
    p: Pipeline, workers: int = 1, timeout: float = 120, announce: Callable[[str, str], None] | None = None
) -> None:
    """Every worker alive, a later upload indexed, index == bucket (keys and etags), all committed.

    ``announce(key, etag)`` sends the later upload's event where the S3 server does not."""
    s = p.settings
    assert all(t.is_alive() for t in p.threads) and len(p.threads) == workers, "a worker died"
    assert not p.errors, p.errors
    later = p.store.put_bytes(s.bucket, "later/after.jpg", _jpeg(999_999), "image/jpeg")  # type: ignore[attr-defined]
    if announce is not None:
        announce("later/after.jpg", later)
    wait_for(lambda: p.indexed().get(f"{s.bucket}/later/after.jpg") == later, timeout, what="a later upload")  # type: ignore[attr-defined]
    try:
        wait_for(lambda: p.indexed() == p.bucket_state(), timeout, what="index == bucket (keys and etags)")
    except AssertionError:
        index, bucket = p.indexed(), p.bucket_state()
        diff = {k: (index.get(k), bucket.get(k)) for k in index.keys() | bucket.keys() if index.get(k) != bucket.get(k)}
        raise AssertionError(f"index != bucket, (index, bucket) per key: {diff}") from None
    wait_committed(s.kafka_bootstrap, s.group, s.topic, 60)  # type: ignore[attr-defined]
    assert all(t.is_alive() for t in p.threads), "a worker died"


# SeaweedFS refuses these legal S3 keys at PUT (InvalidRequest for '.'/'..' segments, KeyTooLongError for
# a segment over 255 bytes), and stores these others under another name ('//' and '\\' as '/', no
# leading '/'; a trailing '/' makes a directory, not an object). Either way index == bucket must hold.
REFUSED = ["photos/./a.jpg", "photos/../b.jpg", "./c.jpg", "long/" + "x" * 256 + ".jpg"]
RENAMED = ["photos//d.jpg", "/lead.jpg", "back\\slash.jpg", "trail/"]


def test_odd_keys_put_with_boto3_are_indexed(pipeline) -> None:  # type: ignore[no-untyped-def]
    from botocore.exceptions import ClientError

    s = pipeline.settings
    pipeline.start_worker()
    s3 = _boto3(pipeline)
    kept = ["photos/a.jpg", "a\x01b.jpg", "tab\tnew\nline.jpg", "del\x7f.jpg", "ü +%2F?.jpg", "/".join(["y" * 255] * 4)]
    for i, key in enumerate(REFUSED):
        with pytest.raises(ClientError) as refused:
            s3.put_object(Bucket=s.bucket, Key=key, Body=_jpeg(i))
        assert refused.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400, key
    etags = {}
    for i, key in enumerate(kept + RENAMED):
        etags[key] = s3.put_object(Bucket=s.bucket, Key=key, Body=_jpeg(100 + i))["ETag"].strip('"')
    bucket = pipeline.bucket_state()
    assert {f"{s.bucket}/{k}" for k in kept} <= set(bucket)
    assert len(bucket) == len(kept) + 3  # the renamed ones, bar the directory
    wait_for(lambda: pipeline.indexed() == bucket, 90, what="odd keys indexed with their own bytes")
    # messages naming the refused keys (MinIO's shape, as another server would send them): the '.'/'..'
    # ones are dead letters with S3's reason; the long one is absent (404), so there is nothing to index
    names = [f"{s.bucket}/{k}" for k in REFUSED]
    _produce(pipeline, [(f"{s.bucket}/{k}", json.dumps({"Records": [_record(s.bucket, k)]}).encode()) for k in REFUSED])
    wait_committed(s.kafka_bootstrap, s.group, s.topic, 60)  # type: ignore[attr-defined]
    dead = {d["key"]: d["reason"] for d in _dead_letters(pipeline)}
    assert set(dead) == set(names[:3]) and all(dead.values()), dead
    s3.delete_object(Bucket=s.bucket, Key="photos/a.jpg")
    del bucket[f"{s.bucket}/photos/a.jpg"]
    wait_for(lambda: pipeline.indexed() == bucket, 60, what="odd key removed, the others kept")
    _settled(pipeline)


def _record(bucket: str, key: str, **obj: object) -> dict:
    """One S3 event record as MinIO sends it (key URL-encoded)."""
    return {
        "eventName": "s3:ObjectCreated:Put",
        "eventTime": "2024-01-01T00:00:00Z",
        "s3": {"bucket": {"name": bucket}, "object": {"key": quote_plus(key), **obj}},
    }


def test_garbage_and_foreign_bucket_messages_go_to_the_dead_letters(pipeline) -> None:  # type: ignore[no-untyped-def]
    s = pipeline.settings
    pipeline.start_worker()

    def record(bucket: str, key: str, **obj: object) -> dict:
        o = {"key": key, **obj}
        return {
            "eventName": "s3:ObjectCreated:Put",
            "eventTime": "2024-01-01T00:00:00Z",
            "s3": {"bucket": {"name": bucket}, "object": o},
        }

    garbage: list[tuple[str | None, bytes]] = [
        ("junk/1", b"\xff\xfe not json at all"),
        ("junk/2", json.dumps({"Type": "Notification", "Message": 5}).encode()),
        ("junk/3", json.dumps({"Records": [5, "x"]}).encode()),
        ("junk/4", json.dumps([1, 2, 3]).encode()),
        ("junk/5", b"[" * 100_000),
        (None, b""),
        ("foreign/x.jpg", json.dumps({"Records": [record("not-watched-bucket", "x.jpg", size=3)]}).encode()),
    ]
    # odd field types in an otherwise valid event for a real object: indexed, not dead
    etag = pipeline.store.put_bytes(s.bucket, "odd-fields.jpg", _jpeg(1), "image/jpeg")
    odd = record(s.bucket, "odd-fields.jpg", eTag=5, size=1e999, contentType=7)
    odd["eventTime"] = "99999-12-31T00:00:00Z"
    _produce(pipeline, [*garbage, (f"{s.bucket}/odd-fields.jpg", json.dumps({"Records": [odd]}).encode())])

    def letters() -> list[dict]:
        out = _dead_letters(pipeline)
        return out if len(out) >= len(garbage) else []

    dead = wait_for(letters, 90, what="a dead letter per bad message")
    assert len(dead) == len(garbage), dead
    assert all(d["reason"] and d["source_offset"] >= 0 for d in dead), dead
    reasons = [d["reason"] for d in dead]
    assert sum(r.startswith("bad event:") for r in reasons) == len(garbage) - 1, reasons
    assert "bucket not watched: not-watched-bucket" in reasons
    assert pipeline.indexed().get(f"{s.bucket}/odd-fields.jpg") == etag
    _settled(pipeline)


def test_minio_message_shape_on_the_topic_is_indexed(servers, embedder, tmp_path) -> None:  # type: ignore[no-untyped-def]
    with open_pipeline(servers, embedder, tmp_path, events_topic=unique("filer")) as pipeline:
        _minio_messages_indexed(pipeline)  # SeaweedFS's events go elsewhere: only our messages arrive


def _minio_messages_indexed(pipeline: Pipeline) -> None:
    s = pipeline.settings
    store = pipeline.store
    pipeline.start_worker()

    def minio_message(name: str, key: str, **obj: object) -> tuple[str, bytes]:
        record = {
            "eventVersion": "2.0",
            "eventSource": "minio:s3",
            "eventName": name,
            "eventTime": "2026-12-01T10:00:00.000Z",
            "s3": {
                "bucket": {"name": s.bucket, "arn": f"arn:aws:s3:::{s.bucket}"},
                "object": {"key": quote_plus(key), **obj},
            },
        }
        oid = f"{s.bucket}/{key}"
        return oid, json.dumps({"EventName": name, "Key": oid, "Records": [record]}).encode()

    keys = ["minio/a b.jpg", "minio/ü/c.jpg", "minio/gone.jpg"]
    infos = {}
    for i, key in enumerate(keys):
        data = _jpeg(100 + i)
        etag = store.put_bytes(s.bucket, key, data, "image/jpeg")
        infos[key] = (etag, len(data))
    created = [
        minio_message("s3:ObjectCreated:Put", k, size=n, eTag=e, contentType="image/jpeg", sequencer="17A")
        for k, (e, n) in infos.items()
    ]
    _produce(pipeline, created)
    want = {f"{s.bucket}/{k}": e for k, (e, _) in infos.items()}
    wait_for(lambda: pipeline.indexed() == want, 90, what="MinIO-shaped events indexed")
    remove_object(store, s.bucket, "minio/gone.jpg")
    _produce(pipeline, [minio_message("s3:ObjectRemoved:Delete", "minio/gone.jpg")])  # no size, no eTag
    del want[f"{s.bucket}/minio/gone.jpg"]
    wait_for(lambda: pipeline.indexed() == want, 60, what="MinIO-shaped delete applied")
    assert _dead_letters(pipeline) == []

    def announce(key: str, etag: str) -> None:
        _produce(pipeline, [minio_message("s3:ObjectCreated:Put", key, eTag=etag, contentType="image/jpeg")])

    _settled(pipeline, announce=announce)


N_BACKLOG = 240


def test_put_delete_and_reput_races_under_a_backlog_with_two_workers(servers, embedder, tmp_path) -> None:  # type: ignore[no-untyped-def]
    with open_pipeline(servers, embedder, tmp_path, batch_size=16) as p:
        s = p.settings
        store = p.store
        blobs = [_jpeg(i) for i in range(N_BACKLOG)]
        with ThreadPoolExecutor(8) as pool:  # the backlog arrives before any worker runs
            list(
                pool.map(
                    lambda i: store.put_bytes(s.bucket, f"backlog/{i:03d}.jpg", blobs[i], "image/jpeg"),
                    range(N_BACKLOG),
                )
            )
        p.start_worker()
        p.start_worker()
        same = _jpeg(7_000)
        for r in range(12):  # each sequence lands on one key's partition, between backlog batches
            k = f"race/{r:02d}.jpg"
            store.put_bytes(s.bucket, f"{k}.put-delete", _jpeg(8_000 + r), "image/jpeg")
            remove_object(store, s.bucket, f"{k}.put-delete")  # PUT then DELETE: no ghost
            store.put_bytes(s.bucket, f"{k}.reput", same, "image/jpeg")
            remove_object(store, s.bucket, f"{k}.reput")
            store.put_bytes(s.bucket, f"{k}.reput", same, "image/jpeg")  # DELETE then re-PUT, same bytes
            store.put_bytes(s.bucket, f"{k}.overwrite", _jpeg(9_000 + r), "image/jpeg")
            store.put_bytes(s.bucket, f"{k}.overwrite", _jpeg(9_500 + r), "image/jpeg")  # A then B: B wins
        _settled(p, workers=2, timeout=120)
        assert not [d for d in _dead_letters(p)], "nothing here should be refused"
