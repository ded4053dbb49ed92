"""Every notification shape we accept, reduced to the same events."""

from __future__ import annotations

import json

import pytest

from lookalike.events import BadEvent, ObjectEvent, clean_etag, parse_message


def _record(name: str, key: str, etag: str | None = '"abc"', size: int | None = 10, **extra: object) -> dict:
    obj: dict[str, object] = {"key": key, **extra}
    if etag is not None:
        obj["eTag"] = etag
    if size is not None:
        obj["size"] = size
    return {
        "eventName": name,
        "eventTime": "2024-05-01T10:00:00.500Z",
        "s3": {"bucket": {"name": "images"}, "object": obj},
    }


def test_sns_envelope_from_moto_with_encoded_key() -> None:
    inner = {"Records": [_record("ObjectCreated:Put", "a+dir%2F%C3%BC+x.jpg", etag="d41d8", size=3)]}
    body = {
        "Type": "Notification",
        "MessageId": "1",
        "TopicArn": "arn:aws:sns:us-east-1:1:t",
        "Message": json.dumps(inner),
    }
    (ev,) = parse_message(json.dumps(body).encode())
    assert ev == ObjectEvent(
        "created", "images", "a dir/ü x.jpg", "d41d8", 3, None, 1714557600500, None, "ObjectCreated:Put"
    )
    assert ev.id == "images/a dir/ü x.jpg"


def test_sns_test_event_and_subscription_confirmation_carry_no_events() -> None:
    test_event = {"Service": "Amazon S3", "Event": "s3:TestEvent", "Bucket": "images"}
    assert parse_message({"Type": "Notification", "Message": json.dumps(test_event)}) == []
    assert parse_message({"Type": "SubscriptionConfirmation", "SubscribeURL": "http://x"}) == []


def test_minio_kafka_shape_put_and_delete_without_etag() -> None:
    put = {
        "EventName": "s3:ObjectCreated:Put",
        "Key": "images/cats/1.jpg",
        "Records": [_record("s3:ObjectCreated:Put", "cats%2F1.jpg", etag="e1", sequencer="17A")],
    }
    delete = {
        "EventName": "s3:ObjectRemoved:Delete",
        "Key": "images/cats/1.jpg",
        "Records": [_record("s3:ObjectRemoved:Delete", "cats%2F1.jpg", etag=None, size=None)],
    }
    (p,) = parse_message(json.dumps(put))
    (d,) = parse_message(json.dumps(delete))
    assert (p.kind, p.key, p.etag, p.sequencer) == ("created", "cats/1.jpg", "e1", "17A")
    assert (d.kind, d.key, d.etag, d.size) == ("removed", "cats/1.jpg", None, None)
    assert p.id == d.id == "images/cats/1.jpg"


def test_bare_records_document_with_many_records() -> None:
    doc = {
        "Records": [
            _record("ObjectCreated:CompleteMultipartUpload", "a.png"),
            _record("ObjectRemoved:DeleteMarkerCreated", "b.png"),
        ]
    }
    events = parse_message(json.dumps(doc))
    assert [(e.kind, e.key) for e in events] == [("created", "a.png"), ("removed", "b.png")]


def test_moto_delete_keeps_no_etag_even_if_sent() -> None:
    (ev,) = parse_message({"Records": [_record("ObjectRemoved:Delete", "k.jpg", etag="zzz")]})
    assert ev.kind == "removed" and ev.etag is None


@pytest.mark.parametrize(
    "body, reason",
    [
        (b"not json", "not JSON"),
        (b"[1, 2]", "not a JSON object"),
        (b"{}", "no Records"),
        (json.dumps({"Records": "x"}).encode(), "not a list"),
        (json.dumps({"Records": [_record("s3:ObjectAccessed:Get", "k")]}).encode(), "unsupported eventName"),
        (json.dumps({"Records": [{"eventName": "ObjectCreated:Put", "s3": {}}]}).encode(), "lacks"),
        (json.dumps({"Type": "Notification", "Message": "{broken"}).encode(), "not JSON"),
        (b"\xff\xfe", "not JSON"),
    ],
)
def test_malformed_messages_raise_bad_event_with_reason(body: bytes, reason: str) -> None:
    with pytest.raises(BadEvent, match=reason):
        parse_message(body)


def test_to_record_round_trips_through_the_parser_with_encoding() -> None:
    ev = ObjectEvent(
        "created", "images", "a dir/plus+sign%.jpg", "e", 5, "image/jpeg", 1714557600500, "01", "s3:ObjectCreated:Put"
    )
    (back,) = parse_message({"Records": [ev.to_record()]})
    assert back == ev


def test_clean_etag() -> None:
    assert clean_etag('"abc"') == "abc"
    assert clean_etag("abc") == "abc"
    assert clean_etag('""') is None
    assert clean_etag(None) is None
