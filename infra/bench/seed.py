"""(e) The tutorial's way: one towhee call and one Milvus write per image, for the speedup figure."""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from typing import Any

from infra.bench.images import BenchImage
from infra.bench.stats import rate
from lookalike.embedder import Embedder
from lookalike.imaging import decode_image
from lookalike.index import VectorIndex
from lookalike.rows import IndexRow
from lookalike.settings import Settings

log = logging.getLogger(__name__)


def seed_way(settings: Settings, embedder: Embedder, images: Sequence[BenchImage], collection: str) -> float:
    """The tutorial's loop: a towhee pipeline that decodes, embeds and writes ONE image per call.

    Its own collection (same index type, same model), one ``VectorIndex.upsert`` of one row per
    image (the tutorial's single-row insert), then a Strong count to check every row is searchable.
    Returns images per second over the whole loop.
    """
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from towhee import pipe

    index = VectorIndex(settings.model_copy(update={"collection": collection}), timeout=30)
    try:
        index.drop()
        index.open(embedder.tag, create=True)
        by_key = {img.key: img.data for img in images}

        def decode(path: str) -> Any:
            return decode_image(by_key[path], max_pixels=settings.max_image_pixels)

        def embed_one(img: Any) -> Any:
            return embedder.embed([img])[0]

        def insert_one(path: str, vec: Any) -> None:
            index.upsert([IndexRow(f"{settings.bucket}/{path}", vec, "", len(by_key[path]), "", 0, 0)])

        seed = (
            pipe.input("path")
            .map("path", "img", decode)
            .map("img", "vec", embed_one)
            .map(("path", "vec"), (), insert_one)
            .output()
        )
        seed(images[0].key).get()  # warm-up row, outside the clock
        start = time.perf_counter()
        for img in images:
            seed(img.key).get()
        count = index.count()
        seconds = time.perf_counter() - start
        if count < len({img.key for img in images}):
            log.warning("the tutorial's way holds %d of %d rows", count, len(images))
        return rate(len(images), seconds)
    finally:
        try:
            index.drop()
        finally:
            index.close()
