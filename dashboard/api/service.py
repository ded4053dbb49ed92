"""What the API does, free of HTTP: search by image bytes, by words (a CLIP index), from an indexed
object, read a row, make a thumbnail. The routes only translate these calls and their exceptions.

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
from typing import Any, TypeVar

from dashboard.health import PartHealth
from lookalike.deadletters import DeadLetterLog, describe
from lookalike.duplicates import DuplicateGroup, find_groups
from lookalike.embedder import Embedder
from lookalike.errors import BadInput, LookalikeError, ModelMismatch, Unavailable
from lookalike.imaging import decode_image, thumbnail_bytes
from lookalike.index import VectorIndex
from lookalike.net import connects
from lookalike.search import Neighbour, Searcher
from lookalike.settings import Settings
from lookalike.store import ObjectStore
from lookalike.text_search import text_tower
from lookalike.window import Window

log = logging.getLogger(__name__)
T = TypeVar("T")


class NotFound(LookalikeError):
    """The key is not indexed (or not in the bucket, for thumbnails)."""


class TooLarge(BadInput):
    """The query is over the byte limit; refused before it is decoded."""


class IndexNotReady(LookalikeError):
    """The collection cannot be searched with this process's model (made by another one)."""


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
        open_index: Callable[[], VectorIndex] | None = None,
    ) -> None:
        self.settings = settings
        self.embedder = embedder
        self.store = store or ObjectStore(settings)
        self.milvus_timeout = milvus_timeout
        # how the Milvus client is made: VectorIndex by default, an in-memory fake in unit tests
        self.open_index = open_index or (lambda: VectorIndex(settings, timeout=milvus_timeout))
        self._searcher: Searcher | None = None
        self._lock = threading.Lock()
        self.dead_letters = DeadLetterLog(settings)  # read on the first 404 only

    # ---------------------------------------------------------------- lifecycle
    def start(self) -> None:
        """Load the model the index's target records, not the configured one, which may be stale
        after a reindex; the configured one only while there is no index to ask."""
        try:
            self.embedder = self._use(lambda searcher: searcher.current()[0], self.embedder)
        except LookalikeError as exc:  # unknown, or cannot load here: searches answer 503 naming it
            log.warning("the index's model is not available for now (%s); loading the configured one", exc)
        self.embedder.load()  # once: a loaded embedder returns at once

    def close(self) -> None:
        self.forget_index()
        self.dead_letters.close()

    def forget_index(self) -> None:
        """Drop the Milvus client after an outage, so the next request connects afresh."""
        with self._lock:
            searcher, self._searcher = self._searcher, None
        if searcher is not None:
            searcher.close()

    def searcher(self) -> Searcher | None:
        """The searcher over the opened collection, or ``None`` while it does not exist (nothing
        indexed yet). Raises ``Unavailable`` (Milvus down; the next call tries again) or ``IndexNotReady``.

        Its model is resolved per query (``Searcher.current``), not here: rows and duplicates stay
        readable while the index's model cannot be loaded in this process.
        """
        with self._lock:
            if self._searcher is not None:
                return self._searcher
            index = self.open_index()
            try:
                if not index.exists():
                    index.close()
                    return None
            except BaseException:
                index.close()
                raise
            try:  # the searcher owns the index from here, and closes it if it fails
                self._searcher = Searcher(self.settings, self.embedder, index=index, load=False)
            except ModelMismatch as exc:
                raise IndexNotReady(str(exc)) from exc
            return self._searcher

    def index(self) -> VectorIndex | None:
        searcher = self.searcher()
        return searcher.index if searcher is not None else None

    # ---------------------------------------------------------------- queries
    def object_id(self, key: str) -> str:
        return f"{self.settings.bucket}/{key}"

    def window(self, window: Window) -> Window:
        """The request's window, inside the configured bucket: the only one whose keys the API names."""
        return Window(window.prefix, window.since, window.until, bucket=self.settings.bucket)

    def search_image(self, data: bytes, k: int, window: Window) -> Found:
        """Neighbours of an uploaded image, best first. Raises ``TooLarge`` or ``BadImage``."""
        if len(data) > self.settings.max_object_bytes:
            raise TooLarge(f"the image is {len(data)} bytes, over the limit of {self.settings.max_object_bytes}")
        start = time.perf_counter()
        limits = self.window(window)
        neighbours = self._use(lambda s: s.search_bytes(data, k, limits).neighbours, None)
        if neighbours is None:  # nothing indexed: still refuse what is not a usable image
            image = decode_image(data, max_pixels=self.settings.max_image_pixels, min_side=self.embedder.decode_size)
            self.embedder.embed([image])
            neighbours = []
        return Found(neighbours, (time.perf_counter() - start) * 1000)

    def search_text(self, text: str, k: int, window: Window) -> Found:
        """Neighbours of a description in words, best first. Raises ``NoTextTower`` (the index's model
        embeds images only) or ``BadText`` (empty, or over the text tower's context)."""
        start = time.perf_counter()
        limits = self.window(window)
        neighbours = self._use(lambda s: s.search_text(text, k, limits).neighbours, None)
        if neighbours is None:  # nothing indexed: still refuse what the model could never search for
            text_tower(self.embedder, self.embedder.tag.model).check_text(text)
            neighbours = []
        return Found(neighbours, (time.perf_counter() - start) * 1000)

    def similar(self, key: str, k: int, window: Window) -> Found:
        """More like an indexed object, by its stored vector, leaving the object itself out."""
        start = time.perf_counter()
        limits = self.window(window)
        neighbours = self._use(lambda s: s.similar(self.object_id(key), k, limits), None)
        if neighbours is None:
            raise self.not_indexed(key)
        return Found(neighbours, (time.perf_counter() - start) * 1000)

    def row(self, key: str) -> dict[str, Any]:
        """The indexed row of ``key`` (without its vector)."""
        none: list[dict[str, Any]] = []
        rows = self._use(lambda s: s.index.get([self.object_id(key)]), none)
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
        nothing: tuple[list[DuplicateGroup], str | None] = ([], None)
        return self._use(lambda s: find_groups(s.index, threshold, prefix, limit, cursor), nothing)

    def thumbnail(self, key: str, px: int) -> bytes:
        """A JPEG that fits in ``px`` x ``px``. Raises ``NotFound``, ``BadImage`` or ``ObjectTooLarge``."""
        got = self.store.get(self.settings.bucket, key)
        if got is None:
            raise NotFound(f"{key!r} is not in the bucket")
        return thumbnail_bytes(got[1], px, self.settings.max_image_pixels)

    def _use(self, call: Callable[[Searcher], T], empty: T) -> T:
        """``call`` with the searcher; ``empty`` while the collection does not exist. After an outage
        the client is dropped, so a Milvus that comes back is reconnected to on the next request."""
        try:
            searcher = self.searcher()
            return call(searcher) if searcher is not None else empty
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
