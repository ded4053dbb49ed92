"""Query logic shared by the CLI, the dashboard, the API and the eval: image bytes (or, on a CLIP
index, words: ``lookalike.text_search``) in, neighbours out."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import Any

import numpy as np

from lookalike.embedder import Embedder, TimmEmbedder
from lookalike.errors import ModelMismatch
from lookalike.imaging import decode_image
from lookalike.index import VectorIndex
from lookalike.rows import Hit, ModelTag
from lookalike.settings import Settings
from lookalike.targets import settings_for_target
from lookalike.text_search import text_tower
from lookalike.versions import Versions
from lookalike.window import Window


@dataclass(frozen=True)
class Neighbour:
    id: str
    bucket: str
    key: str
    score: float
    etag: str
    size: int
    content_type: str
    event_time: int
    indexed_at: int
    duplicate_of: str = ""  # id (bucket/key) of the original when the worker marked this a near-copy
    duplicate_score: float = 0.0

    @classmethod
    def from_hit(cls, hit: Hit) -> Neighbour:
        f = hit.fields
        return cls(
            id=hit.id,
            bucket=hit.bucket,
            key=hit.key,
            score=round(hit.score, 6),
            etag=str(f.get("etag", "")),
            size=int(f.get("size", 0) or 0),
            content_type=str(f.get("content_type", "")),
            event_time=int(f.get("event_time", 0) or 0),
            indexed_at=int(f.get("indexed_at", 0) or 0),
            duplicate_of=str(f.get("duplicate_of", "") or ""),
            duplicate_score=round(float(f.get("duplicate_score", 0.0) or 0.0), 6),
        )

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass(frozen=True)
class SearchResult:
    """The neighbours and where one query's time went (milliseconds)."""

    neighbours: list[Neighbour]
    embed_ms: float  # the model alone (preprocessing included)
    search_ms: float  # the Milvus query
    decode_ms: float = 0.0  # bytes to an upright RGB image
    collection: str = ""  # the physical collection that answered (the alias's target then)
    model: str = ""  # the model that embedded the query and made every vector searched

    @property
    def total_ms(self) -> float:
        return self.decode_ms + self.embed_ms + self.search_ms


class Models:
    """The embedder for each model tag a collection records: the given one, others built on first need
    from the tag and the weights file it names (``lookalike.targets``), never from the configured model."""

    def __init__(self, settings: Settings, index: VectorIndex, embedder: Embedder | None = None) -> None:
        self.settings = settings
        self.index = index
        # an unloaded embedder's tag (dim 0) matches no collection's, so it is never handed out
        self._embedders: dict[ModelTag, Embedder] = {embedder.tag: embedder} if embedder is not None else {}
        self._lock = threading.Lock()

    def get(self, collection: str, tag: ModelTag) -> Embedder:
        """The embedder whose vectors ``collection`` (tagged ``tag``) holds; raises ``ModelMismatch``."""
        with self._lock:
            found = self._embedders.get(tag)
            if found is not None:
                return found
            target = Versions(self.index).describe(collection)
            if target is None or target.tag != tag:
                raise ModelMismatch(f"{collection} no longer holds {tag} (dropped or changed meanwhile)")
            embedder = TimmEmbedder(settings_for_target(self.settings, target))
            embedder.load()
            if embedder.tag != tag:
                raise ModelMismatch(f"{collection} holds {tag} but the model built from it is {embedder.tag}")
            self._embedders[tag] = embedder
            return embedder


class Searcher:
    """The one searcher: the CLI, the dashboard, the API, the eval and the bench all query through it.

    The collection is an alias (``lookalike.versions``): each query re-resolves it and embeds with
    the model its target records, loading that model on first need, so a search follows a
    ``reindex`` swap at once without a restart and never mixes two models' vectors.

    Without an ``embedder`` it loads only the model the target records: the configured one may be
    stale (``LOOKALIKE_WEIGHTS`` naming the previous model's checkpoint after a reindex). With
    ``load=False`` (the API) nothing is loaded until the first query, not even the given embedder
    (it may be the stale configured one), so rows and duplicates stay readable while the index's
    model cannot be loaded here. An ``index`` passed in is owned
    from then on: ``close`` closes it.

    ``load_ms`` and ``connect_ms`` say what construction cost (model load, Milvus connection), so a
    one-shot ``lookalike search`` can tell a user where its seconds went (``timings``).
    """

    def __init__(
        self, settings: Settings, embedder: Embedder | None = None, index: VectorIndex | None = None, load: bool = True
    ) -> None:
        self.settings = settings
        start = time.perf_counter()
        self.index = index if index is not None else VectorIndex(settings)
        try:
            collection, tag = self.index.follow()
            connected = time.perf_counter()
            if embedder is not None and load:
                embedder.load()
            self.models = Models(settings, self.index, embedder)
            self.embedder = self.models.get(collection, tag) if load or embedder is None else embedder
        except BaseException:
            self.index.close()
            raise
        self.connect_ms = (connected - start) * 1000
        self.load_ms = (time.perf_counter() - connected) * 1000

    def current(self) -> tuple[Embedder, str]:
        """The model of the collection the alias points at now, and that collection. Raises
        ``ModelMismatch`` when it was dropped or changed meanwhile, or cannot be built here."""
        collection, tag = self.index.follow()
        self.embedder = self.models.get(collection, tag)
        return self.embedder, collection

    def search_bytes(
        self, data: bytes, k: int = 10, window: Window | None = None, exclude_id: str | None = None
    ) -> SearchResult:
        """Neighbours of an image. Raises ``BadImage`` for bytes that are not a usable image."""
        start = time.perf_counter()
        embedder, collection = self.current()
        image = decode_image(data, max_pixels=self.settings.max_image_pixels, min_side=embedder.decode_size)
        decoded = time.perf_counter()
        vector = embedder.embed([image])
        embed_ms = (time.perf_counter() - decoded) * 1000
        decode_ms = (decoded - start) * 1000
        return self._answer(vector, k, window, exclude_id, collection, embedder.tag.model, embed_ms, decode_ms)

    def search_text(self, text: str, k: int = 10, window: Window | None = None) -> SearchResult:
        """Neighbours of a description in words, embedded by the text tower of the model the index
        records (a CLIP model's). Raises ``NoTextTower`` naming that model when it embeds images
        only, and ``BadText`` for empty text or text over the tower's context (refused, never cut)."""
        embedder, collection = self.current()
        start = time.perf_counter()
        words = text_tower(embedder, embedder.tag.model)
        words.check_text(text)  # tokenizes only: a refusal costs no model call
        vector = words.embed_texts([text])
        embed_ms = (time.perf_counter() - start) * 1000
        return self._answer(vector, k, window, None, collection, embedder.tag.model, embed_ms)

    def _answer(
        self,
        vector: np.ndarray,
        k: int,
        window: Window | None,
        exclude_id: str | None,
        collection: str,
        model: str,
        embed_ms: float,
        decode_ms: float = 0.0,
    ) -> SearchResult:
        """The neighbours of a query vector in ``collection``, timed: the one result assembly that
        image and text queries share, so both report the same fields."""
        started = time.perf_counter()
        neighbours = self.search_vector(vector, k, window, exclude_id, collection)
        search_ms = (time.perf_counter() - started) * 1000
        return SearchResult(neighbours, embed_ms, search_ms, decode_ms, collection, model)

    def similar(self, object_id: str, k: int = 10, window: Window | None = None) -> list[Neighbour] | None:
        """More like an indexed object, by its stored vector, the object itself left out; ``None``
        when ``object_id`` is not indexed."""
        rows = self.index.get([object_id], with_vectors=True)
        if not rows:
            return None
        return self.search_vector(np.asarray([rows[0]["vector"]], dtype=np.float32), k, window, object_id)

    def search_vector(
        self,
        vector: np.ndarray,
        k: int,
        window: Window | None = None,
        exclude_id: str | None = None,
        collection: str | None = None,
    ) -> list[Neighbour]:
        """The ``k`` best rows inside ``window`` (filtered in Milvus, so ``k`` still come back)."""
        expr = (window or Window()).expression(exclude_id or "")
        level = self.settings.search_consistency
        hits = self.index.search(vector, k, filter=expr, collection=collection, consistency=level)[0]
        return [Neighbour.from_hit(h) for h in hits]

    def timings(self, result: SearchResult) -> dict[str, float]:
        """Every phase of a one-shot search, in milliseconds, in the order they happened."""
        phases = {
            "model_load_ms": self.load_ms,
            "milvus_connect_ms": self.connect_ms,
            "decode_ms": result.decode_ms,
            "embed_ms": result.embed_ms,
            "search_ms": result.search_ms,
        }
        return {name: round(ms, 1) for name, ms in phases.items()}

    def describe_timings(self, result: SearchResult) -> str:
        """One line for ``--verbose``: the phases and their sum."""
        phases = self.timings(result)
        parts = ", ".join(f"{name.removesuffix('_ms').replace('_', ' ')} {ms:.0f} ms" for name, ms in phases.items())
        return f"time: {parts}; total {sum(phases.values()):.0f} ms (runtime {self.embedder_runtime})"

    @property
    def embedder_runtime(self) -> str:
        return str(getattr(self.embedder, "runtime", "torch"))

    def close(self) -> None:
        self.index.close()
