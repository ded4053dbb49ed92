"""The change feed on the real local stack: outcomes appear on ``<topic>.indexed``, and the live
panel's "latest" (read from the feed, not Milvus) holds the newest object after a bulk of uploads."""

from __future__ import annotations

import pytest

from dashboard import live
from lookalike.feed import FeedRecord
from tests.helpers import dataset_images, remove_object, wait_for

pytestmark = pytest.mark.integration


def _feed(watch: live.KafkaWatch) -> list[FeedRecord]:
    return watch.feed_tail(per_partition=1000)


def test_feed_has_indexed_removed_and_dead_and_latest_holds_the_newest(pipeline) -> None:  # type: ignore[no-untyped-def]
    s = pipeline.settings
    store = pipeline.store
    images = dataset_images(12)
    pipeline.start_worker()
    watch = live.KafkaWatch(s)
    try:
        for i, path in enumerate(images[:10]):  # a bulk...
            store.put_file(s.bucket, f"bulk/{i:02d}.jpg", path, "image/jpeg")
        wait_for(lambda: len(pipeline.indexed()) == 10, 120, what="the bulk indexed")
        store.put_file(s.bucket, "newest.jpg", images[10], "image/jpeg")  # ...then one more
        wait_for(lambda: f"{s.bucket}/newest.jpg" in pipeline.indexed(), 60, what="the newest indexed")
        wait_for(lambda: any(r.id == f"{s.bucket}/newest.jpg" for r in _feed(watch)), 30, what="its feed record")
        index = pipeline.index()
        try:
            snap = live.snapshot(lambda: index, lambda: watch, down=set(), latest_n=3)
        finally:
            index.close()
        assert not snap.errors, snap.errors
        assert snap.latest and snap.latest[0].id == f"{s.bucket}/newest.jpg"
        assert snap.vectors == 11 and snap.rate_per_s and snap.rate_per_s > 0

        remove_object(store, s.bucket, "bulk/00.jpg")
        store.put_bytes(s.bucket, "broken.jpg", b"this is not a jpeg", "image/jpeg")

        def outcomes() -> dict[str, list[str]]:
            out: dict[str, list[str]] = {}
            for r in _feed(watch):
                out.setdefault(r.id, []).append(r.outcome)
            return out

        got = wait_for(
            lambda: (o := outcomes()).get(f"{s.bucket}/broken.jpg") and f"{s.bucket}/bulk/00.jpg" in o and o,
            60,
            what="removed and dead records",
        )
        assert got[f"{s.bucket}/bulk/00.jpg"] == ["indexed", "removed"]  # in order, one partition
        assert got[f"{s.bucket}/broken.jpg"] == ["dead"]
        indexed = [r for r in _feed(watch) if r.outcome == "indexed" and r.id == f"{s.bucket}/newest.jpg"]
        assert indexed[0].etag and indexed[0].size == images[10].stat().st_size
    finally:
        watch.close()
