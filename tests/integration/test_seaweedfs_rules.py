"""SeaweedFS's own ETag and Last-Modified against the worker's two rules, on the real server.

* A multipart upload's ETag is ``<md5>-<parts>``: the index must hold the ETag the bucket lists, and
  a redelivered filer event (whose ETag is that same one) is skipped before any download.
* Last-Modified has whole seconds here. The worker never writes bytes older than what is indexed
  (``last_modified`` below the row's), but bytes of the *same* second with another ETag are newer
  bytes (an overwrite within that second), and must replace the row.
"""

from __future__ import annotations

import io
import random

import numpy as np
import pytest
from kafka import KafkaProducer
from PIL import Image
from prometheus_client import REGISTRY

from tests.conftest import Pipeline
from tests.helpers import topic_messages, wait_committed, wait_for

pytestmark = pytest.mark.integration

PART = 5 * 1024 * 1024  # S3's smallest part but the last


def _big_jpeg() -> bytes:
    """A small JPEG padded past one part: decoders stop at its end-of-image marker."""
    rng = random.Random(5)
    out = io.BytesIO()
    Image.new("RGB", (64, 64), tuple(rng.randrange(256) for _ in range(3))).save(out, "JPEG")  # type: ignore[arg-type]
    return out.getvalue() + b"\0" * (PART + 1024)


def _skipped() -> float:
    """Events skipped before any download (their ETag is the indexed one)."""
    return REGISTRY.get_sample_value("lookalike_events_total", {"outcome": "skipped"}) or 0.0


def _replay(p: Pipeline, message: tuple[str | None, bytes]) -> None:
    """Send one message of the topic again, as a redelivery would."""
    s = p.settings
    producer = KafkaProducer(bootstrap_servers=s.kafka_bootstrap, acks="all")  # type: ignore[attr-defined]
    try:
        key, value = message
        producer.send(s.topic, key=key.encode() if key else None, value=value)  # type: ignore[attr-defined]
        producer.flush()
    finally:
        producer.close()


def _put_row(p: Pipeline, oid: str, etag: str, last_modified: int) -> None:
    """What the index would hold had it indexed some other bytes of that object, at that time."""
    from lookalike.rows import IndexRow

    dim = p.embedder.tag.dim  # type: ignore[attr-defined]
    vector = np.ones(dim, dtype=np.float32) / np.sqrt(dim)
    idx = p.index()
    try:
        idx.upsert([IndexRow(oid, vector, etag, 1, "image/jpeg", last_modified, last_modified)])
    finally:
        idx.close()


def test_multipart_etag_and_whole_second_last_modified_meet_the_worker_rules(pipeline: Pipeline) -> None:
    import boto3

    s = pipeline.settings
    pipeline.start_worker()
    s3 = boto3.client(
        "s3",
        endpoint_url=s.s3_endpoint,  # type: ignore[attr-defined]
        region_name=s.s3_region,  # type: ignore[attr-defined]
        aws_access_key_id=s.s3_access_key,  # type: ignore[attr-defined]
        aws_secret_access_key=s.s3_secret_key.get_secret_value(),  # type: ignore[attr-defined]
    )
    body, bucket, key = _big_jpeg(), s.bucket, "big/multipart.jpg"  # type: ignore[attr-defined]
    upload = s3.create_multipart_upload(Bucket=bucket, Key=key)["UploadId"]
    parts = [
        {
            "PartNumber": n + 1,
            "ETag": s3.upload_part(Bucket=bucket, Key=key, UploadId=upload, PartNumber=n + 1, Body=chunk)["ETag"],
        }
        for n, chunk in enumerate((body[:PART], body[PART:]))
    ]
    done = s3.complete_multipart_upload(Bucket=bucket, Key=key, UploadId=upload, MultipartUpload={"Parts": parts})
    etag, oid = done["ETag"].strip('"'), f"{bucket}/{key}"
    assert etag.endswith("-2"), etag
    wait_for(lambda: pipeline.indexed().get(oid) == etag, 90, what="the multipart object indexed")
    assert pipeline.bucket_state()[oid] == etag  # the ETag the bucket lists, not the bytes' md5

    # the filer's event for it, redelivered: its ETag is the indexed one, so no download
    (event,) = [m for m in topic_messages(s.kafka_bootstrap, s.topic) if m[0] == f"/buckets/{oid}"][-1:]  # type: ignore[attr-defined]
    before = _skipped()
    _replay(pipeline, event)
    wait_for(lambda: _skipped() == before + 1, 60, what="the redelivered event skipped before download")

    info = pipeline.store.stat(bucket, key)
    assert info is not None and info.last_modified_ms % 1000 == 0  # whole seconds on this server
    # other bytes indexed at the same second: the object's are not older, so they replace them
    _put_row(pipeline, oid, "same-second-other-bytes", info.last_modified_ms)
    _replay(pipeline, event)
    wait_for(lambda: pipeline.indexed().get(oid) == etag, 60, what="the same second's other bytes replaced")
    # bytes a second newer indexed: the object's are older and never written over them
    _put_row(pipeline, oid, "a-second-newer", info.last_modified_ms + 1000)
    _replay(pipeline, event)
    wait_committed(s.kafka_bootstrap, s.group, s.topic, 60)  # type: ignore[attr-defined]
    assert pipeline.indexed()[oid] == "a-second-newer"
    assert all(t.is_alive() for t in pipeline.threads) and not pipeline.errors
