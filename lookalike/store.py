"""The object store: a thin, typed face on the ``minio`` client (MinIO in production, moto here)."""

from __future__ import annotations

import contextlib
import io
import logging
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import urllib3
from minio import Minio
from minio.error import S3Error, ServerError

from lookalike.errors import BadInput, Unavailable
from lookalike.events import clean_etag
from lookalike.settings import Settings

log = logging.getLogger(__name__)

_MISSING = {"NoSuchKey", "NoSuchObject", "NoSuchVersion"}


class ObjectTooLarge(BadInput):
    """The object is bigger than ``max_object_bytes``; it is refused before it is read."""


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
        http = urllib3.PoolManager(
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
                response = self.client.get_object(bucket, key)
                headers = response.headers
                length = int(headers.get("Content-Length") or 0)
                if length > self.max_bytes:
                    raise ObjectTooLarge(f"object is {length} bytes, limit {self.max_bytes}")
                data = response.read(self.max_bytes + 1)
                if len(data) > self.max_bytes:
                    raise ObjectTooLarge(f"object is over the limit of {self.max_bytes} bytes")
        except _Missing:
            return None
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

    def remove(self, bucket: str, key: str) -> None:
        with _translate():
            self.client.remove_object(bucket, key)

    def list(self, bucket: str, prefix: str = "") -> Iterator[ObjectInfo]:
        with _translate():
            for obj in self.client.list_objects(bucket, prefix=prefix or None, recursive=True):
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

    # ---- bucket administration (the local stack and private runs; production sets these up itself)
    def buckets(self) -> set[str]:
        with _translate():
            return {b.name for b in self.client.list_buckets()}

    def notify(self, bucket: str, topic_arn: str) -> None:
        """Send the bucket's create and remove events to ``topic_arn`` (SNS on the local stack)."""
        from minio.notificationconfig import NotificationConfig, TopicConfig

        config = NotificationConfig(
            topic_config_list=[TopicConfig(topic=topic_arn, events=["s3:ObjectCreated:*", "s3:ObjectRemoved:*"])]
        )
        with _translate():
            self.client.set_bucket_notification(bucket, config)

    def stop_notifications(self, bucket: str) -> None:
        with _translate():
            self.client.delete_bucket_notification(bucket)

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


@contextlib.contextmanager
def _translate() -> Iterator[None]:
    """Map client errors to ``_Missing`` (object absent) or ``Unavailable`` (retry later)."""
    try:
        yield
    except (BadInput, _Missing):
        raise
    except S3Error as exc:
        if exc.code in _MISSING:
            raise _Missing() from exc
        if exc.code in ("NoSuchBucket", "AccessDenied", "InvalidAccessKeyId", "SignatureDoesNotMatch"):
            raise Unavailable("s3", f"{exc.code}: {exc.message}") from exc
        raise
    except (urllib3.exceptions.HTTPError, OSError, ServerError) as exc:
        raise Unavailable("s3", f"{type(exc).__name__}: {exc}") from exc


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
