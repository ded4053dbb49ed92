"""The event model: every bucket notification shape reduced to one ``ObjectEvent``.

Three shapes reach us. MinIO publishes ``{"EventName", "Key", "Records"}`` straight to Kafka (and
POSTs the same body to a webhook); AWS S3 and moto wrap ``{"Records": [...]}`` in an SNS envelope
whose ``Message`` is a JSON string; and some senders post the bare ``Records`` document. Object keys
arrive URL-encoded (``a+dir%2Fx.jpg``), event names with or without the ``s3:`` prefix, and removal
events may lack size and etag.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Literal
from urllib.parse import quote_plus, unquote_plus

EventKind = Literal["created", "removed"]


class BadEvent(ValueError):
    """A message that is not a bucket notification we can act on (it goes to the dead letters)."""


@dataclass(frozen=True)
class ObjectEvent:
    """One change to one object, in the terms the worker acts on."""

    kind: EventKind
    bucket: str
    key: str
    etag: str | None = None
    size: int | None = None
    content_type: str | None = None
    event_time_ms: int = 0
    sequencer: str | None = None
    name: str = ""

    @property
    def id(self) -> str:
        """The primary key in the index and the Kafka message key: ``bucket/key``."""
        return object_id(self.bucket, self.key)

    def to_record(self) -> dict[str, Any]:
        """Render as one S3 notification record (what the bridge publishes, per record)."""
        obj: dict[str, Any] = {"key": quote_plus(self.key, safe="")}  # encoded, as S3 and MinIO send it
        if self.etag is not None:
            obj["eTag"] = self.etag
        if self.size is not None:
            obj["size"] = self.size
        if self.content_type:
            obj["contentType"] = self.content_type
        if self.sequencer:
            obj["sequencer"] = self.sequencer
        return {
            "eventName": self.name or ("s3:ObjectCreated:Put" if self.kind == "created" else "s3:ObjectRemoved:Delete"),
            "eventTime": _format_time(self.event_time_ms),
            "s3": {"bucket": {"name": self.bucket}, "object": obj},
        }


def object_id(bucket: str, key: str) -> str:
    return f"{bucket}/{key}"


def split_id(oid: str) -> tuple[str, str]:
    """``bucket/key`` back into its parts (bucket names hold no slash; keys may)."""
    bucket, _, key = oid.partition("/")
    return bucket, key


def clean_etag(etag: str | None) -> str | None:
    """S3 quotes etags (``"abc"``); MinIO sometimes does not. Compare them unquoted."""
    if etag is None:
        return None
    etag = etag.strip().strip('"')
    return etag or None


def parse_message(payload: bytes | str | dict[str, Any]) -> list[ObjectEvent]:
    """Parse any supported notification body into events (test events give an empty list).

    Raises ``BadEvent`` with a reason for anything else.
    """
    doc = _load(payload)
    if doc.get("Type") in ("Notification", "SubscriptionConfirmation", "UnsubscribeConfirmation"):
        if doc["Type"] != "Notification":
            return []
        doc = _load(doc.get("Message", ""))
    if doc.get("Event") == "s3:TestEvent" or doc.get("Event") == "TestEvent":
        return []
    records = doc.get("Records")
    if records is None:
        raise BadEvent("no Records in notification")
    if not isinstance(records, list):
        raise BadEvent("Records is not a list")
    return [parse_record(record) for record in records]


def parse_record(record: Any) -> ObjectEvent:
    """Parse one S3/MinIO notification record."""
    if not isinstance(record, dict):
        raise BadEvent("record is not an object")
    name = str(record.get("eventName", ""))
    bare = name.removeprefix("s3:")
    if bare.startswith("ObjectCreated:"):
        kind: EventKind = "created"
    elif bare.startswith("ObjectRemoved:"):
        kind = "removed"
    else:
        raise BadEvent(f"unsupported eventName {name!r}")
    try:
        s3 = record["s3"]
        bucket = str(s3["bucket"]["name"])
        obj = s3["object"]
        raw_key = str(obj["key"])
    except (KeyError, TypeError) as exc:
        raise BadEvent(f"record lacks s3.bucket.name or s3.object.key ({exc})") from exc
    key = unquote_plus(raw_key)
    if not bucket or not key:
        raise BadEvent("empty bucket or key")
    size = obj.get("size")
    return ObjectEvent(
        kind=kind,
        bucket=bucket,
        key=key,
        etag=clean_etag(obj.get("eTag") or obj.get("etag")) if kind == "created" else None,
        size=int(size) if isinstance(size, (int, float)) else None,
        content_type=obj.get("contentType") or None,
        event_time_ms=_parse_time(record.get("eventTime")),
        sequencer=obj.get("sequencer") or None,
        name=name,
    )


def _load(payload: bytes | str | dict[str, Any]) -> dict[str, Any]:
    if isinstance(payload, dict):
        return payload
    try:
        doc = json.loads(payload)
    except (ValueError, UnicodeDecodeError) as exc:
        raise BadEvent(f"not JSON: {exc}") from exc
    if not isinstance(doc, dict):
        raise BadEvent("notification is not a JSON object")
    return doc


def _parse_time(value: Any) -> int:
    if not isinstance(value, str) or not value:
        return 0
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return 0
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=timezone.utc)
    return int(parsed.timestamp() * 1000)


def _format_time(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, tz=timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")
