"""Hostile or odd notification bodies: each is parsed or refused with ``BadEvent``, never anything else."""

from __future__ import annotations

import json

import pytest

from lookalike.events import BadEvent, ObjectEvent, parse_message


def _doc(**obj: object) -> dict:
    record = {
        "eventName": "s3:ObjectCreated:Put",
        "eventTime": obj.pop("eventTime", "2024-05-01T10:00:00Z"),
        "s3": {"bucket": {"name": "images"}, "object": {"key": "k.jpg", **obj}},
    }
    return {"Records": [record]}


@pytest.mark.parametrize(
    "obj, field, expected",
    [
        ({"eTag": 5}, "etag", None),
        ({"eTag": {"x": 1}}, "etag", None),
        ({"size": 1e999}, "size", None),
        ({"size": -1}, "size", None),
        ({"size": True}, "size", None),
        ({"size": 12.0}, "size", 12),
        ({"contentType": 7}, "content_type", None),
        ({"sequencer": ["a"]}, "sequencer", None),
        ({"eventTime": "99999-01-01T00:00:00Z"}, "event_time_ms", 0),
        ({"eventTime": "0001-01-01T00:00:00-23:59"}, "event_time_ms", 0),
        ({"eventTime": "1969-01-01T00:00:00Z"}, "event_time_ms", 0),
        ({"eventTime": 12}, "event_time_ms", 0),
    ],
)
def test_odd_field_types_are_read_as_unknown(obj: dict, field: str, expected: object) -> None:
    (ev,) = parse_message(json.dumps(_doc(**obj)))
    assert getattr(ev, field) == expected
    ObjectEvent(**{**ev.__dict__}).to_record()  # renders back without raising


@pytest.mark.parametrize(
    "body",
    [
        json.dumps({"Type": "Notification", "Message": 5}).encode(),
        json.dumps({"Type": "Notification", "Message": {"Records": []}}).encode(),
        json.dumps({"Type": ["Notification"], "Records": 1}).encode(),
        json.dumps({"Records": [{"eventName": "s3:ObjectCreated:Put", "s3": {"bucket": {"name": 5}}}]}).encode(),
        json.dumps({"Records": [{"eventName": "s3:ObjectCreated:Put", "s3": [1]}]}).encode(),
        json.dumps({"Records": [{"eventName": "s3:ObjectCreated:Put", "s3": {"bucket": [], "object": 1}}]}).encode(),
        b"\xff\xfe\xfd",
        b"[" * 50_000,
        b"",
        b"null",
    ],
)
def test_hostile_bodies_raise_bad_event_only(body: bytes) -> None:
    with pytest.raises(BadEvent):
        parse_message(body)


def test_an_event_time_out_of_range_still_renders() -> None:
    ev = ObjectEvent("created", "images", "k.jpg", event_time_ms=10**20)
    assert ev.to_record()["eventTime"] == "1970-01-01T00:00:00.000Z"
