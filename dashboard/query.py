"""The dashboard's search side, free of Streamlit: what to search with (an image, or words on a CLIP
index), the search, thumbnails.

Every failure a user can cause (a text file, a truncated JPEG, a 20000x20000 PNG, a file over the
size limit) or meet (Milvus down, an index made by another model) becomes a sentence in
``QueryOutcome.error``; the page shows it and never a stack trace.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from itertools import islice

from dashboard.health import LABELS as SERVICE_LABELS
from lookalike.errors import BadInput, BadText, LookalikeError, ModelMismatch, NoTextTower, NotIndexed, Unavailable
from lookalike.imaging import BadImage, thumbnail_bytes
from lookalike.search import Searcher, SearchResult
from lookalike.store import ObjectRefused, ObjectStore, ObjectTooLarge
from lookalike.window import Window

log = logging.getLogger(__name__)

THUMB_PX = 256
PREVIEW_PX = 384


class QueryTooLarge(BadInput):
    """The query file is over the byte limit; it is refused before decoding."""


class ObjectMissing(BadInput):
    """The chosen bucket object no longer exists."""


@dataclass(frozen=True)
class QuerySource:
    """What the user searches with: an uploaded file, an object already in the bucket, or words."""

    kind: str  # "upload" | "object" | "text"
    name: str
    bucket: str = ""
    key: str = ""
    upload_id: str = ""
    text: str = ""

    @classmethod
    def upload(cls, name: str, upload_id: str) -> QuerySource:
        return cls("upload", name, upload_id=upload_id)

    @classmethod
    def object(cls, bucket: str, key: str) -> QuerySource:
        return cls("object", f"s3://{bucket}/{key}", bucket=bucket, key=key)

    @classmethod
    def words(cls, text: str) -> QuerySource:
        return cls("text", f"“{text}”", text=text)

    @property
    def exclude_id(self) -> str | None:
        """A bucket object is its own best match: leave it out of "more like this"."""
        return f"{self.bucket}/{self.key}" if self.kind == "object" else None


@dataclass(frozen=True)
class QueryOutcome:
    source: QuerySource
    preview: bytes | None = None
    result: SearchResult | None = None
    error: str | None = None
    total_ms: float = 0.0
    transient: bool = False  # the error may go away by itself (a service is down)

    @property
    def ok(self) -> bool:
        return self.result is not None and self.error is None


def friendly_error(exc: BaseException) -> str:
    """One sentence a user can act on; the details stay in the log."""
    if isinstance(exc, QueryTooLarge | ObjectMissing):
        return str(exc)
    if isinstance(exc, ObjectTooLarge):
        return f"That object is too large to search with ({exc})."
    if isinstance(exc, BadImage):
        reason = str(exc)
        if reason.startswith("zero-byte"):
            return "That file is empty, so there is nothing to search with."
        if reason.startswith("not an image"):
            return "That file is not an image the dashboard can read. Use a JPEG, PNG, GIF, WebP, BMP or TIFF image."
        if reason.startswith("corrupt"):
            return "That image is corrupt or truncated and cannot be decoded. Try another copy of it."
        if "pixel limit" in reason or "decompression bomb" in reason or "too large" in reason:
            return f"That image is too large to search with: {reason}."
        return f"That image cannot be used as a query: {reason}."
    if isinstance(exc, Unavailable):
        label = SERVICE_LABELS.get(exc.service, exc.service)
        return f"Search is unavailable right now: the {label} is not reachable. Try again once it is back."
    if isinstance(exc, ModelMismatch):
        if isinstance(exc, NotIndexed):
            return "The index is empty: nothing has been indexed yet. Upload images to the bucket first."
        return f"The index cannot be searched with this model: {exc}"
    if isinstance(exc, ObjectRefused):
        return f"S3 refused it: {exc}"
    if isinstance(exc, BadText):
        return f"Those words cannot be searched with: {exc}."
    if isinstance(exc, NoTextTower):
        return str(exc)
    if isinstance(exc, LookalikeError):
        return f"Search failed: {exc}"
    return f"Search failed unexpectedly ({type(exc).__name__}); the dashboard log has the details."


def read_object(store: ObjectStore, bucket: str, key: str) -> bytes:
    got = store.get(bucket, key)
    if got is None:
        raise ObjectMissing(f"s3://{bucket}/{key} is no longer in the bucket.")
    return got[1]


def fetch_thumbnail(
    store: ObjectStore, bucket: str, key: str, px: int = THUMB_PX, max_pixels: int = 80_000_000
) -> bytes | None:
    """The object's thumbnail, or ``None`` if it is gone or not an image. ``Unavailable`` propagates
    (so a caller's cache does not remember an outage)."""
    try:
        got = store.get(bucket, key)
        if got is None:
            return None
        return thumbnail_bytes(got[1], px, max_pixels, square=True)
    except BadInput:
        return None


def run_query(
    searcher: Callable[[], Searcher],
    source: QuerySource,
    load: Callable[[], bytes],
    k: int,
    max_bytes: int,
    max_pixels: int = 80_000_000,
    window: Window | None = None,
) -> QueryOutcome:
    """Read the query, check it, preview it and search; any failure becomes ``error``.

    ``total_ms`` is the search itself: decode, embed and the Milvus query. ``window`` limits which
    indexed objects may come back.

    ``searcher`` and ``load`` are called here, inside the guard, so that a Milvus outage while the
    searcher is created or an S3 outage while the object is read gets the same treatment as a bad file.
    """
    preview: bytes | None = None
    try:
        data = load()
        if len(data) > max_bytes:
            raise QueryTooLarge(
                f"That file is {format_size(len(data))}; queries are limited to {format_size(max_bytes)}."
            )
        preview = thumbnail_bytes(data, PREVIEW_PX, max_pixels)
        ready = searcher()  # may load the model once per process: not part of the query's time
        start = time.perf_counter()
        result = ready.search_bytes(data, k=k, window=window, exclude_id=source.exclude_id)
    except Exception as exc:
        return failed(source, exc, preview)
    return QueryOutcome(source, preview=preview, result=result, total_ms=(time.perf_counter() - start) * 1000)


def run_text_query(
    searcher: Callable[[], Searcher], source: QuerySource, k: int, window: Window | None = None
) -> QueryOutcome:
    """Search by words (``source.text``) with the index's text tower; any failure becomes ``error``,
    as for an image. ``total_ms``: embedding the text and the Milvus query."""
    try:
        ready = searcher()  # may load the model once per process: not part of the query's time
        start = time.perf_counter()
        result = ready.search_text(source.text, k=k, window=window)
    except Exception as exc:
        return failed(source, exc)
    return QueryOutcome(source, result=result, total_ms=(time.perf_counter() - start) * 1000)


def failed(source: QuerySource, exc: Exception, preview: bytes | None = None) -> QueryOutcome:
    """A query's failure as the page shows it. Transient (tried again on the next rerun) unless the
    query itself is at fault; an index that cannot read words may be swapped for one that can."""
    if isinstance(exc, LookalikeError):
        log.info("query %s refused: %s", source.name, exc)
    else:
        log.exception("query %s failed", source.name)
    transient = not isinstance(exc, BadInput)  # e.g. Milvus down, or no collection yet
    return QueryOutcome(source, preview=preview, error=friendly_error(exc), transient=transient)


def list_keys(store: ObjectStore, bucket: str, prefix: str = "", limit: int = 200) -> list[str]:
    """The first ``limit`` keys under ``prefix`` (S3 lists in key order), for the object picker."""
    return [o.key for o in islice(store.list(bucket, prefix), limit)]


def format_size(n: int) -> str:
    size = float(n)
    for unit in ("B", "KB", "MB", "GB"):
        if size < 1024 or unit == "GB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{n} B"


def format_time(ms: int) -> str:
    """UTC wall time of a millisecond timestamp; an em dash for "unknown"."""
    if ms <= 0:
        return "—"
    return datetime.fromtimestamp(ms / 1000, tz=timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")


def format_age(ms: int, now_ms: int) -> str:
    if ms <= 0:
        return "—"
    seconds = max(0.0, (now_ms - ms) / 1000)
    if seconds < 60:
        return f"{seconds:.0f} s ago"
    if seconds < 3600:
        return f"{seconds / 60:.0f} min ago"
    if seconds < 86400:
        return f"{seconds / 3600:.1f} h ago"
    return f"{seconds / 86400:.1f} d ago"
