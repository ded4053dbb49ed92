"""The event model: every bucket notification shape reduced to one ``ObjectEvent``.

Four shapes reach us. MinIO publishes ``{"EventName", "Key", "Records"}`` straight to Kafka (and
POSTs the same body to a webhook); AWS S3 and moto wrap ``{"Records": [...]}`` in an SNS envelope
whose ``Message`` is a JSON string; Ceph RGW and some other senders publish the bare ``Records``
document. Object keys arrive URL-encoded (``a+dir%2Fx.jpg``), event names with or without the ``s3:``
prefix, and removal events may lack size and etag. SeaweedFS publishes no JSON at all but its
filer's protobuf ``EventNotification`` keyed by the path (``lookalike.seaweed.events``): a message
that is not JSON is read as one, so the content decides, never a guess from its words.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Literal
from urllib.parse import quote_plus, unquote_plus

from lookalike.seaweed.events import FilerEventError, NotFilerEvent, parse_filer_event

EventKind = Literal["created", "removed"]


class BadEvent(ValueError):
    """A message that is not a bucket notification we can act on (it goes to the dead letters)."""


class NotJSON(BadEvent):
    """The body does not parse as JSON (it may still be another server's binary notification)."""


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
    # the sender publishes every bucket's changes (SeaweedFS's filer), not the ones it was told to:
    # another bucket's event is then another tenant's, not a misrouted message
    server_wide: bool = False

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


def clean_etag(etag: object) -> str | None:
    """S3 quotes etags (``"abc"``); MinIO sometimes does not. Compare them unquoted.

    Anything but a string (a number or object from a hand-made message) counts as no etag: the
    worker then decides from the object's current state, which it fetches anyway.
    """
    if not isinstance(etag, str):
        return None
    etag = etag.strip().strip('"')
    return etag or None


def parse_message(payload: bytes | str | dict[str, Any], key: str | None = None) -> list[ObjectEvent]:
    """Parse any supported notification body into events (test events give an empty list).

    ``key`` is the Kafka message key: SeaweedFS's filer puts the entry's path there, and a delete or
    rename names its object only through it; the JSON shapes do not need it. Raises ``BadEvent``
    with a reason for anything else.
    """
    try:
        doc = _load(payload)
    except NotJSON as not_json:
        if not isinstance(payload, (bytes, bytearray)):
            raise
        return _filer_events(bytes(payload), key, not_json)
    kind = doc.get("Type")
    if isinstance(kind, str) and kind in ("Notification", "SubscriptionConfirmation", "UnsubscribeConfirmation"):
        if kind != "Notification":
            return []
        message = doc.get("Message", "")
        if not isinstance(message, (str, bytes)):
            raise BadEvent(f"SNS Message is a {type(message).__name__}, not a JSON string")
        doc = _load(message)
    if doc.get("Event") == "s3:TestEvent" or doc.get("Event") == "TestEvent":
        return []
    records = doc.get("Records")
    if records is None:
        raise BadEvent("no Records in notification")
    if not isinstance(records, list):
        raise BadEvent("Records is not a list")
    return [parse_record(record) for record in records]


def _filer_events(payload: bytes, key: str | None, not_json: NotJSON) -> list[ObjectEvent]:
    """Bytes that are not JSON: a SeaweedFS filer notification, or a ``BadEvent`` naming both tries."""
    try:
        changes = parse_filer_event(payload, key)
    except NotFilerEvent as exc:
        raise BadEvent(f"{not_json}; {exc}") from exc
    except FilerEventError as exc:
        raise BadEvent(str(exc)) from exc
    return [
        ObjectEvent(c.kind, c.bucket, c.key, c.etag, c.size, c.content_type, event_time_ms=c.mtime_ms, server_wide=True)
        for c in changes
    ]


def parse_record(record: Any) -> ObjectEvent:
    """Parse one S3/MinIO notification record."""
    if not isinstance(record, dict):
        raise BadEvent("record is not an object")
    name = str(record.get("eventName", ""))
    bare = name.removeprefix("s3:")
    if bare.startswith("ObjectCreated:"):
        kind: EventKind = "created"
    elif bare.startswith(_REMOVALS):
        kind = "removed"
    else:
        raise BadEvent(f"unsupported eventName {name!r}")
    try:
        s3 = record["s3"]
        bucket = s3["bucket"]["name"]
        obj = s3["object"]
        raw_key = obj["key"]
    except (KeyError, TypeError, IndexError) as exc:
        raise BadEvent(f"record lacks s3.bucket.name or s3.object.key ({exc!r})") from exc
    if not isinstance(bucket, str) or not isinstance(raw_key, str) or not isinstance(obj, dict):
        raise BadEvent("s3.bucket.name and s3.object.key must be strings")
    # S3, MinIO and moto URL-encode the key; Ceph RGW sends it as stored (its eventSource says which)
    key = raw_key if record.get("eventSource") == "ceph:s3" else unquote_plus(raw_key)
    if not bucket or not key:
        raise BadEvent("empty bucket or key")
    return ObjectEvent(
        kind=kind,
        bucket=bucket,
        key=key,
        etag=clean_etag(obj.get("eTag") or obj.get("etag")) if kind == "created" else None,
        size=_size(obj.get("size")),
        content_type=_text(obj.get("contentType")),
        event_time_ms=_parse_time(record.get("eventTime")),
        sequencer=_text(obj.get("sequencer")),
        name=name,
    )


# lifecycle expirations remove objects too: S3 names them LifecycleExpiration:*, Ceph RGW
# ObjectLifecycle:Expiration:*; the worker then looks at the bucket, as for any removal
_REMOVALS = ("ObjectRemoved:", "LifecycleExpiration:", "ObjectLifecycle:Expiration:")


def _text(value: Any) -> str | None:
    """A non-empty string field, or ``None`` for anything else (absent, empty, a number, an object)."""
    return value if isinstance(value, str) and value else None


def _size(value: Any) -> int | None:
    """A byte count: a non-negative whole number; anything else (``1e999``, ``-1``, ``"9"``) is unknown.

    The size only lets the worker refuse a huge object before fetching it; an unknown size falls
    back to ``Content-Length`` and a bounded read, so nothing is lost by dropping a strange one.
    """
    if isinstance(value, bool):
        return None
    if isinstance(value, float):
        if not math.isfinite(value) or not value.is_integer():
            return None
        value = int(value)
    return value if isinstance(value, int) and value >= 0 else None


def _load(payload: object) -> dict[str, Any]:
    if isinstance(payload, dict):
        return payload
    if not isinstance(payload, (str, bytes, bytearray)):
        raise BadEvent(f"notification is a {type(payload).__name__}, not JSON text")
    try:
        doc = json.loads(payload)
    except (ValueError, RecursionError) as exc:  # UnicodeDecodeError is a ValueError
        raise NotJSON(f"not JSON: {exc}") from exc
    if not isinstance(doc, dict):
        raise BadEvent("notification is not a JSON object")
    return doc


def _parse_time(value: Any) -> int:
    """Event time in ms since the epoch; 0 (unknown) for anything unparsable or out of range.

    The time is informational (the worker decides from the object's Last-Modified), so a strange
    one must never cost the event.
    """
    if not isinstance(value, str) or not value:
        return 0
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
        if parsed.tzinfo is None:
            parsed = parsed.replace(tzinfo=timezone.utc)
        ms = int(parsed.timestamp() * 1000)
    except (ValueError, OverflowError, OSError):
        return 0
    return ms if 0 <= ms < _MAX_MS else 0


_MAX_MS = 253_402_300_799_000  # 9999-12-31T23:59:59Z: the last instant ISO 8601 text can carry


def _format_time(ms: int) -> str:
    ms = ms if 0 <= ms < _MAX_MS else 0
    return datetime.fromtimestamp(ms / 1000, tz=timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")
