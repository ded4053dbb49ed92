"""A phone photo as the query: drafted, turned upright, found, and the time accounted for."""

from __future__ import annotations

from pathlib import Path

import pytest

from infra.bench.photos import make_photo
from lookalike.search import Searcher
from tests.helpers import dataset_images, wait_for

pytestmark = pytest.mark.integration


def test_a_12mp_rotated_photo_finds_its_thumbnail_and_says_where_time_went(pipeline, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    images = dataset_images(3)
    s = pipeline.settings
    pipeline.start_worker()
    for i, path in enumerate(images):
        pipeline.store.put_file(s.bucket, f"thumbs/{i}.jpg", path, "image/jpeg")
    wait_for(lambda: len(pipeline.indexed()) == 3, 120, what="three vectors")
    photo = tmp_path / "photo.jpg"
    make_photo(images[1], photo, megapixels=12.0, quality=90, orientation=6)  # stored sideways

    searcher = Searcher(s, embedder=pipeline.embedder)
    try:
        result = searcher.search_bytes(photo.read_bytes(), k=3)
        timings = searcher.timings(result)
        line = searcher.describe_timings(result)
    finally:
        searcher.close()
    top = result.neighbours[0]
    assert top.key == "thumbs/1.jpg" and top.score > 0.98  # upright and drafted, still the same picture
    assert list(timings) == ["model_load_ms", "milvus_connect_ms", "decode_ms", "embed_ms", "search_ms"]
    assert all(ms >= 0 for ms in timings.values())
    assert result.decode_ms > 0 and result.embed_ms > 0 and result.search_ms > 0
    assert result.total_ms == pytest.approx(result.decode_ms + result.embed_ms + result.search_ms)
    assert "decode" in line and "embed" in line and "search" in line and "total" in line
