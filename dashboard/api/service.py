"""What the API does, free of HTTP: search by image bytes, search from an indexed object, read a row,
make a thumbnail. The routes only translate these calls and their exceptions.

One ``QueryService`` lives per process. The model is loaded once at start-up; the Milvus client is
opened on first use and kept, so the API starts (and ``/healthz`` says what is missing) even while
Milvus is down or nothing has been indexed yet. Every method blocks (decode, embed, gRPC, S3): the
routes run them in the threadpool, never on the event loop.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import numpy as np

from dashboard.health import PartHealth
from dashboard.query import thumbnail_bytes
from lookalike import filters
from lookalike.deadletters import DeadLetterLog, describe
from lookalike.duplicates import DuplicateGroup, find_groups
from lookalike.embedder import Embedder
from lookalike.errors import BadInput, LookalikeError, ModelMismatch, Unavailable
from lookalike.imaging import decode_image
from lookalike.index import VectorIndex
from lookalike.net import connects
from lookalike.search import Models, Neighbour
from lookalike.settings import Settings
from lookalike.store import ObjectStore

log = logging.getLogger(__name__)


class NotFound(LookalikeError):
    """The key is not indexed (or not in the bucket, for thumbnails)."""


class TooLarge(BadInput):
    """The query is over the byte limit; refused before it is decoded."""


class IndexNotReady(LookalikeError):
    """The collection cannot be searched with this process's model (made by another one)."""


@dataclass(frozen=True)
class Window:
    """Which rows a search may return: keys under ``prefix``, uploaded within ``[since, until]``."""

    prefix: str = ""
    since: datetime | None = None
    until: datetime | None = None


@dataclass(frozen=True)
class Found:
    neighbours: list[Neighbour]
    took_ms: float


class QueryService:
    """The model, the S3 client and the Milvus client of one API process."""

    def __init__(
        self,
        settings: Settings,
        embedder: Embedder,
        store: ObjectStore | None = None,
        milvus_timeout: float = 10.0,
    ) -> None:
        self.settings = settings
        self.embedder = embedder
        self.store = store or ObjectStore(settings)
        self.milvus_timeout = milvus_timeout
        self._index: VectorIndex | None = None
        self._model_cache: Models | None = None
        self._lock = threading.Lock()
        self.dead_letters = DeadLetterLog(settings)  # read on the first 404 only

    # ---------------------------------------------------------------- lifecycle
    def start(self) -> None:
        """Load the model the index's target records (``Models``), not the configured one, which may
        be stale after a reindex; the configured one only while there is no index to ask."""
        try:
            self.embedder = self._embedder()[0]
        except LookalikeError as exc:  # unknown, or cannot load here: searches answer 503 naming it
            log.warning("the index's model is not available for now (%s); loading the configured one", exc)
        self.embedder.load()  # once: a loaded embedder returns at once

    def close(self) -> None:
        self.forget_index()
        self.dead_letters.close()

    def forget_index(self) -> None:
        """Drop the Milvus client after an outage, so the next request connects afresh."""
        with self._lock:
            index, self._index = self._index, None
        if index is not None:
            index.close()

    def index(self) -> VectorIndex | None:
        """The opened collection, or ``None`` while it does not exist (nothing indexed yet).

        Raises ``Unavailable`` (Milvus down; the next call tries again) or ``IndexNotReady``.
        """
        with self._lock:
            if self._index is not None:
                return self._index
            index = VectorIndex(self.settings, timeout=self.milvus_timeout)
            try:
                if not index.exists():
                    index.close()
                    return None
                index.follow()  # the alias's target, whatever model it holds (``Models`` embeds for it)
            except ModelMismatch as exc:
                index.close()
                raise IndexNotReady(str(exc)) from exc
            except BaseException:
                index.close()
                raise
            self._index = index
            return index

    # ---------------------------------------------------------------- queries
    def object_id(self, key: str) -> str:
        return f"{self.settings.bucket}/{key}"

    def search_image(self, data: bytes, k: int, window: Window) -> Found:
        """Neighbours of an uploaded image, best first. Raises ``TooLarge`` or ``BadImage``."""
        if len(data) > self.settings.max_object_bytes:
            raise TooLarge(f"the image is {len(data)} bytes, over the limit of {self.settings.max_object_bytes}")
        start = time.perf_counter()
        embedder, collection = self._embedder()
        image = decode_image(data, max_pixels=self.settings.max_image_pixels, min_side=embedder.decode_size)
        vector = embedder.embed([image])
        neighbours = self._search(vector, k, window, collection=collection)
        return Found(neighbours, (time.perf_counter() - start) * 1000)

    def similar(self, key: str, k: int, window: Window) -> Found:
        """More like an indexed object, by its stored vector, leaving the object itself out."""
        start = time.perf_counter()
        oid = self.object_id(key)
        rows = self._read(lambda index: index.get([oid], with_vectors=True))
        if not rows:
            raise self.not_indexed(key)
        vector = np.asarray([rows[0]["vector"]], dtype=np.float32)
        neighbours = self._search(vector, k, window, exclude=oid)
        return Found(neighbours, (time.perf_counter() - start) * 1000)

    def row(self, key: str) -> dict[str, Any]:
        """The indexed row of ``key`` (without its vector)."""
        rows = self._read(lambda index: index.get([self.object_id(key)]))
        if not rows:
            raise self.not_indexed(key)
        return dict(rows[0])

    def not_indexed(self, key: str) -> NotFound:
        """The 404 of a key that has no row, saying ``dead-lettered: <reason>`` when the workers
        refused it (``lookalike.deadletters``; Kafka down just leaves the reason out)."""
        letter = self.dead_letters.find(self.object_id(key))
        return NotFound(f"{key!r} is not indexed" + (f": {describe(letter)}" if letter is not None else ""))

    def duplicates(
        self, threshold: float, prefix: str, limit: int, cursor: str | None
    ) -> tuple[list[DuplicateGroup], str | None]:
        """One page of near-duplicate groups (``lookalike.duplicates.find_groups``); ValueError for a bad cursor."""
        try:
            index = self.index()
            return find_groups(index, threshold, prefix, limit, cursor) if index is not None else ([], None)
        except Unavailable:
            self.forget_index()
            raise

    def thumbnail(self, key: str, px: int) -> bytes:
        """A JPEG that fits in ``px`` x ``px``. Raises ``NotFound``, ``BadImage`` or ``ObjectTooLarge``."""
        got = self.store.get(self.settings.bucket, key)
        if got is None:
            raise NotFound(f"{key!r} is not in the bucket")
        return thumbnail_bytes(got[1], px, self.settings.max_image_pixels)

    def _embedder(self) -> tuple[Embedder, str | None]:
        """The model of the collection the alias points at now (after a reindex swap: the new one)."""
        try:
            index = self.index()
            if index is None:
                return self.embedder, None
            collection, tag = index.follow()
            return self._models(index).get(collection, tag), collection
        except Unavailable:
            self.forget_index()
            raise

    def _models(self, index: VectorIndex) -> Models:
        if self._model_cache is None or self._model_cache.index is not index:
            self._model_cache = Models(self.settings, index, self.embedder)
        return self._model_cache

    def _search(
        self, vector: np.ndarray, k: int, window: Window, exclude: str | None = None, collection: str | None = None
    ) -> list[Neighbour]:
        expr = filters.all_of(
            [
                filters.key_prefix(self.settings.bucket, window.prefix),
                filters.uploaded_between(window.since, window.until),
                filters.not_id(exclude) if exclude else "",
            ]
        )
        level = self.settings.search_consistency
        hits = self._read(
            lambda index: index.search(vector, k, filter=expr, collection=collection, consistency=level)[0]
        )
        return [Neighbour.from_hit(h) for h in hits]

    def _read(self, call: Callable[[VectorIndex], list[Any]]) -> list[Any]:
        """``call`` on the open collection; nothing while it does not exist. After an outage the
        client is dropped, so a Milvus that comes back is reconnected to on the next request."""
        try:
            index = self.index()
            return call(index) if index is not None else []
        except Unavailable:
            self.forget_index()
            raise

    # ---------------------------------------------------------------- health
    def health(self, timeout: float = 1.0) -> list[PartHealth]:
        """The services the API needs: S3 (thumbnails) and Milvus (every query); Kafka only adds a
        dead letter's reason to a 404, so it is not a part of health."""
        s = self.settings
        s3 = PartHealth("s3", s.s3_endpoint, connects(*s.s3_host, timeout=timeout))
        remote = "://" in s.milvus_uri  # otherwise a Milvus Lite file opened in-process
        milvus = PartHealth("milvus", s.milvus_uri, connects(*s.milvus_host, timeout=timeout) if remote else True)
        return [s3, milvus]
