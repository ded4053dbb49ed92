"""SeaweedFS filer notifications (protobuf ``EventNotification``) reduced to object changes.

SeaweedFS does not publish S3 event JSON: its filer publishes every metadata change of every path
(``notification.kafka``), keyed by the entry's full path (``/buckets/images/cat.jpg``, the *old*
path for a delete or rename), with ``old_entry`` and ``new_entry``: create (new only), update (both,
same path), delete (old only) and rename (both, different paths). S3 objects live under
``/buckets/<bucket>/<key>``; everything else (directories, ``/buckets/.system``, multipart parts
under ``<bucket>/.uploads``, paths outside ``/buckets``) is SeaweedFS's own bookkeeping and yields
no event at all, rather than a dead letter per internal write.

ETag and size are read as SeaweedFS's S3 gateway reports them, but they stay hints: the worker looks
at the bucket now, whatever the event says. ``lookalike.events`` turns each ``FilerChange`` into an
``ObjectEvent`` and each ``FilerEventError`` into a ``BadEvent`` (this module stays below it).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from dataclasses import dataclass
from typing import Literal

from google.protobuf.message import DecodeError

from lookalike.seaweed import filer_pb2

BUCKETS = "/buckets/"
ETAG_KEY = "Seaweed-X-Amz-ETag"  # s3_constants.ExtETagKey: the S3 ETag, multipart "<md5>-<parts>" included
UPLOADS = ".uploads"  # s3_constants.MultipartUploadsFolder, at the bucket's root
VERSIONS = ".versions"  # s3_constants.VersionsFolder: "<key>.versions/<version>" in versioned buckets
_MAX_MS = 253_402_300_799_000


Kind = Literal["created", "removed"]


class FilerEventError(ValueError):
    """A filer notification we cannot act on (the message becomes a dead letter)."""


class NotFilerEvent(FilerEventError):
    """The bytes are no ``EventNotification`` at all (as opposed to one we cannot act on)."""


@dataclass(frozen=True)
class FilerChange:
    """One S3 object a notification touches; etag, size and type only for ``created``."""

    kind: Kind
    bucket: str
    key: str
    etag: str | None = None
    size: int | None = None
    content_type: str | None = None
    mtime_ms: int = 0


def parse_filer_event(payload: bytes, key: str | None) -> list[FilerChange]:
    """The object events one filer notification means; ``[]`` for SeaweedFS's internal paths.

    A rename is a removal of the old key and a creation of the new one. ``key`` (the Kafka key) is
    needed whenever there is an ``old_entry``: the notification names the old entry but not its
    directory.
    """
    note = decode(payload)
    old = note.old_entry if note.HasField("old_entry") else None
    new = note.new_entry if note.HasField("new_entry") else None
    old_path = _old_path(old, key) if old is not None else None
    new_path = _new_path(new, note.new_parent_path, key) if new is not None else None
    events: list[FilerChange] = []
    if old is not None and old_path is not None and (new is None or new.is_directory or new_path != old_path):
        events += _events("removed", old_path, old)
    if new is not None and new_path is not None:
        events += _events("created", new_path, new)
    return events


def decode(payload: bytes) -> filer_pb2.EventNotification:
    """Parse the bytes; ``NotFilerEvent`` unless they hold an entry with a name."""
    note = filer_pb2.EventNotification()
    try:
        note.ParseFromString(payload)
    except (DecodeError, RecursionError, ValueError) as exc:
        raise NotFilerEvent(f"not a SeaweedFS EventNotification: {exc}") from exc
    entries = [e for e in (note.old_entry, note.new_entry) if e.ByteSize()]
    if not entries:
        raise NotFilerEvent("not a SeaweedFS EventNotification: neither old_entry nor new_entry")
    if any(not e.name or "/" in e.name for e in entries):
        raise NotFilerEvent("not a SeaweedFS EventNotification: an entry without a valid name")
    return note


def object_of(path: str) -> tuple[str, str] | None:
    """``(bucket, key)`` for a path that holds an S3 object, ``None`` for SeaweedFS's own paths."""
    if not path.startswith(BUCKETS):
        return None
    bucket, sep, key = path[len(BUCKETS) :].partition("/")
    if not bucket or bucket.startswith(".") or not sep or not key:
        return None  # the bucket's own entry, or an internal folder such as /buckets/.system
    if key.startswith(UPLOADS + "/") and "/" in key[len(UPLOADS) + 1 :]:
        # multipart parts live in ``.uploads/<upload id>/``: the object appears when the upload
        # completes. A file right under ``.uploads/`` is a user's object like any other.
        return None
    return bucket, key


def filer_etag(entry: filer_pb2.Entry) -> str | None:
    """The ETag SeaweedFS's S3 gateway reports for this entry (``getObjectETag``), unquoted.

    The stored S3 ETag first (multipart uploads keep ``<md5>-<parts>`` there), then the content's
    md5, then one derived from the chunks' md5s as ``filer.ETagChunks`` does. ``None`` where a part
    is unreadable: the worker then compares against the object's own ETag.
    """
    stored = entry.extended.get(ETAG_KEY)
    if stored:
        try:
            return stored.decode("utf-8").strip().strip('"') or None
        except UnicodeDecodeError:
            return None
    if entry.attributes.md5:
        return entry.attributes.md5.hex()
    digests = [_b64(chunk.e_tag) for chunk in entry.chunks]
    known = [d for d in digests if d]
    if not known or len(known) != len(digests):
        return None
    if len(known) == 1:
        return known[0].hex()
    return f"{hashlib.md5(b''.join(known), usedforsecurity=False).hexdigest()}-{len(known)}"


def filer_size(entry: filer_pb2.Entry) -> int:
    """Bytes in the object, as ``filer.FileSize`` counts them (attributes, chunks or inline content)."""
    chunks = max((c.offset + c.size for c in entry.chunks), default=0)
    return max(entry.attributes.file_size, chunks, len(entry.content))


def _events(kind: Kind, path: str, entry: filer_pb2.Entry) -> list[FilerChange]:
    """The event for a file at ``path``; in a versioned bucket also one for the object it is a version of.

    ``photo.jpg.versions/v1`` may be a version of ``photo.jpg`` or an object of that very name:
    an event for each costs one look at the bucket, and the one that names nothing is a no-op.
    """
    where = object_of(path)
    if entry.is_directory or where is None:
        return []
    bucket, key = where
    attrs = entry.attributes
    created = kind == "created"
    mtime_ms = attrs.mtime * 1000 + attrs.mtime_ns // 1_000_000
    event = FilerChange(
        kind=kind,
        bucket=bucket,
        key=key,
        etag=filer_etag(entry) if created else None,
        size=filer_size(entry) if created else None,
        content_type=attrs.mime or None,
        mtime_ms=mtime_ms if created and 0 < mtime_ms < _MAX_MS else 0,
    )
    folder, _, _ = key.rpartition("/")
    if folder.endswith(VERSIONS) and folder.rpartition("/")[2] != VERSIONS:
        return [event, FilerChange(kind=kind, bucket=bucket, key=folder.removesuffix(VERSIONS))]
    return [event]


def _old_path(entry: filer_pb2.Entry, key: str | None) -> str:
    """Where the old entry was: the Kafka key, which must end with the entry's name."""
    if not key or not key.startswith("/"):
        raise FilerEventError("a SeaweedFS delete, update or rename needs its Kafka key (the entry's full path)")
    if key.rpartition("/")[2] != entry.name:
        raise FilerEventError(f"Kafka key {key!r} does not end with the old entry's name {entry.name!r}")
    return key


def _new_path(entry: filer_pb2.Entry, parent: str, key: str | None) -> str:
    """Where the new entry is: ``new_parent_path`` and its name (or the key's folder, if no parent)."""
    if not parent:
        if not key or not key.startswith("/"):
            raise FilerEventError("a SeaweedFS event without new_parent_path needs its Kafka key")
        parent = key.rpartition("/")[0]
    if not parent.startswith("/"):
        raise FilerEventError(f"new_parent_path {parent!r} is not absolute")
    return f"{parent.rstrip('/')}/{entry.name}"


def _b64(text: str) -> bytes | None:
    """A chunk's md5, stored base64 (``util.Base64Md5ToBytes``); ``None`` if it is not."""
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        return None
