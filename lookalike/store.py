"""The object store: a thin, typed face on the ``minio`` client (any S3 server: SeaweedFS locally).

Every S3 failure is classified once, here, into what the worker does about it:

* the object is absent (``NoSuchKey``): ``get``/``stat`` return ``None`` and the worker removes its
  vector;
* the service is down or pushing back (connection errors, 5xx, ``SlowDown``/throttling, and bad
  credentials, which refuse every object alike): ``Unavailable``, so the batch is retried with
  backoff and nothing is committed;
* anything else is about this one object or bucket (``NoSuchBucket``, ``AccessDenied``,
  ``InvalidObjectName``, an unexpected error code): ``ObjectRefused``, a ``BadInput`` that the
  worker dead-letters with the reason and moves on from.

Keys with ``.`` or ``..`` path segments are legal S3 keys that the minio client refuses (and that
URL normalisation would silently turn into *another* key); those are fetched by a request signed
with the client's own signer and sent with the path exactly as it is.
"""

from __future__ import annotations

import contextlib
import io
import logging
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlparse, urlunsplit

import urllib3
from minio import Minio
from minio.error import InvalidResponseError, S3Error, ServerError
from minio.signer import sign_v4_s3

from lookalike.errors import BadInput, Unavailable
from lookalike.events import clean_etag
from lookalike.settings import Settings

log = logging.getLogger(__name__)

_MISSING = {"NoSuchKey", "NoSuchObject", "NoSuchVersion"}
# the service as a whole is failing or pushing back: retry later, the object is not at fault
_RETRYABLE = {
    "SlowDown",
    "Throttling",
    "ThrottlingException",
    "RequestLimitExceeded",
    "TooManyRequests",
    "RequestTimeout",
    "InternalError",
    "ServiceUnavailable",
    "XMinioServerNotInitialized",
}
# wrong credentials refuse every object alike: dead-lettering them all would lose every event
_CREDENTIALS = {"InvalidAccessKeyId", "SignatureDoesNotMatch", "ExpiredToken", "InvalidToken"}


class ObjectTooLarge(BadInput):
    """The object is bigger than ``max_object_bytes``; it is refused before it is read."""


class ObjectRefused(BadInput):
    """S3 refuses this one object or bucket (no such bucket, access denied, invalid name)."""


@dataclass(frozen=True)
class ObjectInfo:
    bucket: str
    key: str
    etag: str
    size: int
    content_type: str
    last_modified_ms: int


class ObjectStore:
    """Reads and writes objects; turns transport failures into ``Unavailable``."""

    def __init__(self, settings: Settings) -> None:
        url = urlparse(settings.s3_endpoint if "://" in settings.s3_endpoint else f"http://{settings.s3_endpoint}")
        self.http = http = urllib3.PoolManager(
            timeout=urllib3.Timeout(connect=3.0, read=30.0),
            maxsize=16,
            retries=urllib3.Retry(total=2, backoff_factor=0.2, status_forcelist=[500, 502, 503, 504]),
        )
        self.client = Minio(
            url.netloc,
            access_key=settings.s3_access_key,
            secret_key=settings.s3_secret_key.get_secret_value(),
            secure=url.scheme == "https",
            region=settings.s3_region,
            http_client=http,
        )
        self.max_bytes = settings.max_object_bytes

    def ensure_bucket(self, bucket: str) -> None:
        with _translate():
            if not self.client.bucket_exists(bucket):
                self.client.make_bucket(bucket)

    def stat(self, bucket: str, key: str) -> ObjectInfo | None:
        """Current metadata, or ``None`` if the object does not exist (any more)."""
        try:
            with _translate():
                st = self.client.stat_object(bucket, key)
        except _Missing:
            return None
        return ObjectInfo(
            bucket=bucket,
            key=key,
            etag=clean_etag(st.etag) or "",
            size=int(st.size or 0),
            content_type=st.content_type or "",
            last_modified_ms=_ms(st.last_modified),
        )

    def get(self, bucket: str, key: str) -> tuple[ObjectInfo, bytes] | None:
        """Fetch the object's bytes and the metadata of exactly the version read.

        ``None`` if it is gone; ``ObjectTooLarge`` before reading more than the limit.
        """
        response: Any = None
        try:
            with _translate():
                response = self._open(bucket, key)
                headers = response.headers
                length = int(headers.get("Content-Length") or 0)
                if length > self.max_bytes:
                    raise ObjectTooLarge(f"object is {length} bytes, limit {self.max_bytes}")
                data = response.read(self.max_bytes + 1)
                if len(data) > self.max_bytes:
                    raise ObjectTooLarge(f"object is over the limit of {self.max_bytes} bytes")
        except _Missing:
            return None
        except ET.ParseError as exc:
            # The error body echoes the key, and XML 1.0 cannot carry a control character or U+FFFE:
            # the client fails parsing it (a NoSuchKey for 'a\x01b'). A HEAD has no body to parse.
            if self.stat(bucket, key) is None:
                return None
            raise ObjectRefused(f"the error S3 returned for key {key!r} is not readable XML: {exc}") from exc
        finally:
            if response is not None:
                response.close()
                response.release_conn()
        info = ObjectInfo(
            bucket=bucket,
            key=key,
            etag=clean_etag(headers.get("ETag")) or "",
            size=len(data),
            content_type=headers.get("Content-Type") or "",
            last_modified_ms=_http_date_ms(headers.get("Last-Modified")),
        )
        return info, data

    def put_file(self, bucket: str, key: str, path: Path, content_type: str) -> str:
        with _translate():
            result = self.client.fput_object(bucket, key, str(path), content_type=content_type)
        return clean_etag(result.etag) or ""

    def put_bytes(self, bucket: str, key: str, data: bytes, content_type: str = "application/octet-stream") -> str:
        with _translate():
            result = self.client.put_object(bucket, key, io.BytesIO(data), len(data), content_type=content_type)
        return clean_etag(result.etag) or ""

    def _open(self, bucket: str, key: str) -> Any:
        """GET the object, streaming; through the minio client unless it refuses the key."""
        segments = key.split("/")
        if "." not in segments and ".." not in segments:
            return self.client.get_object(bucket, key)
        return self._open_raw(bucket, key)

    def _open_raw(self, bucket: str, key: str) -> Any:
        """GET a key with ``.``/``..`` segments: signed by minio's signer, sent with the path untouched.

        ``PoolManager.urlopen`` would remove the dot segments (fetching another object), so the
        request goes to the host's connection pool, which sends the target as given.
        """
        client: Any = self.client  # the client's request builder, signer and credentials
        region = client._get_region(bucket)
        url = client._base_url.build(method="GET", region=region, bucket_name=bucket, object_name=key)
        creds = client._provider.retrieve() if client._provider else None
        headers, date = client._build_headers(url.netloc, {}, None, creds)
        if creds:
            headers = sign_v4_s3(
                method="GET",
                url=url,
                region=region,
                headers=headers,
                credentials=creds,
                content_sha256=headers["x-amz-content-sha256"],
                date=date,
            )
        pool = self.http.connection_from_url(urlunsplit(url))
        target = url.path + (f"?{url.query}" if url.query else "")
        response = pool.urlopen("GET", target, headers=headers, preload_content=False, redirect=False)
        if response.status in (200, 206):
            return response
        body = response.read(64 * 1024)
        response.release_conn()
        code, message = _error_code(body)
        if response.status == 404 and code in (None, *_MISSING):
            raise _Missing()
        if response.status >= 500 or code in _RETRYABLE or code in _CREDENTIALS:
            raise Unavailable("s3", f"{code or response.status}: {message}")
        raise ObjectRefused(f"{code or f'HTTP {response.status}'}: {message} (key {key!r})")

    def list(self, bucket: str, prefix: str = "", start_after: str = "", page: int = 1000) -> Iterator[ObjectInfo]:
        """Objects under ``prefix`` in key order, ``page`` keys per request (S3 lists sorted).

        ``list_objects`` is minio's ``_list_objects`` with every page 1,000 keys; calling the latter
        directly lets a streaming reader (backfill) bound its memory by its own chunk size.
        """
        with _translate():
            listing = self.client._list_objects(
                bucket,
                prefix=prefix or None,
                start_after=start_after or None,
                max_keys=max(1, min(page, 1000)),
                encoding_type="url",
            )
            for obj in listing:
                if obj.is_dir or obj.object_name is None:
                    continue
                yield ObjectInfo(
                    bucket=bucket,
                    key=obj.object_name,
                    etag=clean_etag(obj.etag) or "",
                    size=int(obj.size or 0),
                    content_type="",
                    last_modified_ms=_ms(obj.last_modified),
                )

    # ---- bucket administration (the local stack and private runs; production sets these up itself;
    # events need no S3 call: SeaweedFS's filer is configured at start, MinIO with `mc event add`)
    def buckets(self) -> set[str]:
        with _translate():
            return {b.name for b in self.client.list_buckets()}

    def delete_bucket(self, bucket: str) -> tuple[str, ...]:
        """Remove every object, then the bucket; returns the keys that could not be removed (logged)."""
        from minio.deleteobjects import DeleteObject

        with _translate():
            doomed = [DeleteObject(o.key) for o in self.list(bucket)]
            failed = tuple(str(error.name) for error in self.client.remove_objects(bucket, doomed))
            for name in failed:
                log.warning("could not delete s3://%s/%s", bucket, name)
            if not failed:
                self.client.remove_bucket(bucket)
        return failed


class _Missing(Exception):
    pass


def _error_code(body: bytes) -> tuple[str | None, str]:
    """``Code`` and ``Message`` of an S3 XML error body (``None`` and the text if it is not one)."""
    try:
        root = ET.fromstring(body)
    except ET.ParseError:
        return None, body[:200].decode("utf-8", "replace")
    return root.findtext("Code"), root.findtext("Message") or ""


@contextlib.contextmanager
def _translate() -> Iterator[None]:
    """Map client errors to ``_Missing``, ``Unavailable`` (retry later) or ``ObjectRefused``."""
    try:
        yield
    except (BadInput, _Missing, Unavailable):
        raise
    except S3Error as exc:
        status = exc.response.status if exc.response is not None else 0
        if exc.code in _MISSING:
            raise _Missing() from exc
        if status >= 500 or status == 429 or exc.code in _RETRYABLE or exc.code in _CREDENTIALS:
            raise Unavailable("s3", f"{exc.code}: {exc.message}") from exc
        raise ObjectRefused(f"{exc.code}: {exc.message}") from exc
    except ServerError as exc:  # a 5xx without an S3 error body
        raise Unavailable("s3", f"{type(exc).__name__}: {exc}") from exc
    except InvalidResponseError as exc:  # not S3 XML: a proxy or gateway answered
        status = getattr(exc, "_code", 0) or 0
        if status >= 500 or status in (0, 429):
            raise Unavailable("s3", f"{type(exc).__name__}: {exc}") from exc
        raise ObjectRefused(f"{type(exc).__name__}: {exc}") from exc
    except (urllib3.exceptions.HTTPError, OSError) as exc:
        raise Unavailable("s3", f"{type(exc).__name__}: {exc}") from exc
    except ValueError as exc:  # a name the client refuses to send (e.g. '.' segments on put/stat)
        raise ObjectRefused(f"{type(exc).__name__}: {exc}") from exc


def _ms(value: datetime | None) -> int:
    return int(value.timestamp() * 1000) if value else 0


def _http_date_ms(value: str | None) -> int:
    if not value:
        return 0
    from email.utils import parsedate_to_datetime

    try:
        return _ms(parsedate_to_datetime(value))
    except (TypeError, ValueError):
        return 0
