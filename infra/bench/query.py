"""(d) Query latency: warm ``Searcher.search_bytes`` as ``lookalike search`` runs it, and the model alone."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass

from infra.bench.images import BenchImage
from lookalike.embedder import Embedder
from lookalike.imaging import decode_image
from lookalike.settings import Settings


def model_single_ms(embedder: Embedder, images: Sequence[BenchImage], settings: Settings, n: int) -> list[float]:
    """Decode + prepare + model on one image (batch 1), as a query does it, without Milvus."""
    out: list[float] = []
    for i in range(n + 3):
        data = images[i % len(images)].data
        start = time.perf_counter()
        embedder.embed([decode_image(data, max_pixels=settings.max_image_pixels, min_side=embedder.decode_size)])
        if i >= 3:  # the first calls warm up
            out.append((time.perf_counter() - start) * 1000)
    return out


@dataclass(frozen=True)
class QueryTimes:
    total_ms: list[float]
    search_ms: list[float]  # the Milvus part alone


def query_ms(settings: Settings, embedder: Embedder, images: Sequence[BenchImage], n: int) -> QueryTimes:
    """``Searcher.search_bytes`` (decode + embed + Milvus search), warm, ``n`` times."""
    from lookalike.search import Searcher

    searcher = Searcher(settings, embedder=embedder)
    try:
        out = QueryTimes([], [])
        for i in range(n + 3):
            result = searcher.search_bytes(images[i % len(images)].data, k=10)
            if i >= 3:
                out.total_ms.append(result.total_ms)
                out.search_ms.append(result.search_ms)
        return out
    finally:
        searcher.close()


def flush(settings: Settings) -> None:
    """Seal the collection's growing rows (a diagnostic: Milvus Lite scans unflushed rows one by one)."""
    from lookalike.index import VectorIndex

    index = VectorIndex(settings, timeout=60)
    try:
        index.flush()
    finally:
        index.close()
