"""Ceph RGW bucket notifications (to Kafka, HTTP or AMQP: the same JSON) reduced to events.

The message is the one documented in "Bucket Notifications", section Events:
https://docs.ceph.com/en/latest/radosgw/notifications/#events (source: ceph/ceph
doc/radosgw/notifications.rst). RGW differs from S3 in three ways that matter here: ``eventName``
has no ``s3:`` prefix, the key is sent as stored, not URL-encoded (rgw_notify.cc fills
``object_key`` from the object's name; rgw_pubsub.cc writes it as is), and the documented example
quotes ``size`` as a string where the code writes a number.
"""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from lookalike.events import parse_message

DOCUMENTED: dict[str, Any] = {
    "Records": [
        {
            "eventVersion": "2.1",
            "eventSource": "ceph:s3",
            "awsRegion": "zonegroup1",
            "eventTime": "2019-11-22T13:47:35.124724Z",
            "eventName": "ObjectCreated:Put",
            "userIdentity": {"principalId": "tester"},
            "requestParameters": {"sourceIPAddress": ""},
            "responseElements": {
                "x-amz-request-id": "503a4c37-85eb-47cd-8681-2817e80b4281.5330.903595",
                "x-amz-id-2": "14d2-zone1-zonegroup1",
            },
            "s3": {
                "s3SchemaVersion": "1.0",
                "configurationId": "mynotif1",
                "bucket": {
                    "name": "mybucket1",
                    "ownerIdentity": {"principalId": "tester"},
                    "arn": "arn:aws:s3:zonegroup1::mybucket1",
                    "id": "503a4c37-85eb-47cd-8681-2817e80b4281.5332.38",
                },
                "object": {
                    "key": "myimage1.jpg",
                    "size": "1024",
                    "eTag": "37b51d194a7513e45b56f6524f2d51f2",
                    "versionId": "",
                    "sequencer": "F7E6D75DC742D108",
                    "metadata": [],
                    "tags": [],
                },
            },
            "eventId": "",
            "opaqueData": "me@example.com",
        }
    ]
}


def _message(name: str = "ObjectCreated:Put", key: str = "myimage1.jpg", **obj: object) -> bytes:
    doc = copy.deepcopy(DOCUMENTED)
    record = doc["Records"][0]
    record["eventName"] = name
    record["eventVersion"] = "2.2"
    record["s3"]["object"].update(key=key, **obj)
    return json.dumps(doc).encode()


def test_the_documented_message() -> None:
    (ev,) = parse_message(json.dumps(DOCUMENTED).encode(), key=None)
    assert (ev.kind, ev.bucket, ev.key) == ("created", "mybucket1", "myimage1.jpg")
    assert (ev.etag, ev.sequencer, ev.name) == (
        "37b51d194a7513e45b56f6524f2d51f2",
        "F7E6D75DC742D108",
        "ObjectCreated:Put",
    )
    assert ev.size is None  # "1024" as a string is no size: the worker reads Content-Length instead
    assert ev.event_time_ms == 1574430455124


@pytest.mark.parametrize("key", ["a+b.jpg", "dir/50%25 off.jpg", "ü x/./y.jpg", "a%2Fb.jpg"])
def test_keys_arrive_as_stored_and_are_not_decoded(key: str) -> None:
    (ev,) = parse_message(_message(key=key, size=7))
    assert (ev.key, ev.size) == (key, 7)


@pytest.mark.parametrize(
    "name, kind",
    [
        ("ObjectCreated:CompleteMultipartUpload", "created"),
        ("ObjectCreated:Copy", "created"),
        ("ObjectRemoved:Delete", "removed"),
        ("ObjectRemoved:DeleteMarkerCreated", "removed"),
        ("ObjectLifecycle:Expiration:Current", "removed"),
    ],
)
def test_event_names_without_the_s3_prefix(name: str, kind: str) -> None:
    (ev,) = parse_message(_message(name=name))
    assert ev.kind == kind
    assert ev.etag == (DOCUMENTED["Records"][0]["s3"]["object"]["eTag"] if kind == "created" else None)


def test_aws_keys_are_still_decoded() -> None:
    doc = json.loads(_message(key="a+b%2Bc.jpg"))
    doc["Records"][0]["eventSource"] = "aws:s3"
    (ev,) = parse_message(json.dumps(doc).encode())
    assert ev.key == "a b+c.jpg"
