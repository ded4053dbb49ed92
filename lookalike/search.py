"""Query logic shared by the CLI, the dashboard and the eval: image bytes in, neighbours out."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from lookalike.embedder import Embedder, TimmEmbedder
from lookalike.imaging import decode_image
from lookalike.index import Hit, VectorIndex
from lookalike.settings import Settings


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
        )

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass(frozen=True)
class SearchResult:
    neighbours: list[Neighbour]
    embed_ms: float
    search_ms: float

    @property
    def total_ms(self) -> float:
        return self.embed_ms + self.search_ms


class Searcher:
    """Loads the model once and answers queries against the configured collection."""

    def __init__(self, settings: Settings, embedder: Embedder | None = None) -> None:
        self.settings = settings
        self.embedder = embedder or TimmEmbedder(settings)
        self.embedder.load()
        self.index = VectorIndex(settings)
        self.index.open(self.embedder.tag, create=False)

    def search_bytes(self, data: bytes, k: int = 10, exclude_id: str | None = None) -> SearchResult:
        """Raises ``BadImage`` for bytes that are not a usable image."""
        start = time.perf_counter()
        image = decode_image(data, max_pixels=self.settings.max_image_pixels, min_side=self.embedder.decode_size)
        vector = self.embedder.embed([image])
        embedded = time.perf_counter()
        limit = k + 1 if exclude_id else k
        hits = self.index.search(vector, limit)[0]
        done = time.perf_counter()
        neighbours = [Neighbour.from_hit(h) for h in hits if h.id != exclude_id][:k]
        return SearchResult(neighbours, (embedded - start) * 1000, (done - embedded) * 1000)

    def close(self) -> None:
        self.index.close()
