"""Streaming backfill on real SeaweedFS and Milvus Lite: memory that does not grow with the bucket, the
server-side prefix, and resuming from the checkpoint a crashed run leaves."""

from __future__ import annotations

import tracemalloc
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from consumers.backfill import BackfillReport, Checkpoint, backfill
from dashboard import live
from lookalike.index import VectorIndex
from lookalike.rows import IndexRow
from lookalike.store import ObjectStore
from tests.conftest import make_settings
from tests.helpers import dataset_images

pytestmark = pytest.mark.integration


def _fill(settings, embedder, n: int) -> None:  # type: ignore[no-untyped-def]
    """``n`` tiny objects; every other one indexed, plus ``n // 4`` vectors whose objects are gone."""
    store = ObjectStore(settings)
    store.ensure_bucket(settings.bucket)  # no notifications: nothing else runs
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda i: store.put_bytes(settings.bucket, f"k/{i:06d}", b"x"), range(n)))
    index = VectorIndex(settings)
    index.open(embedder.tag, create=True)
    vec = np.ones(embedder.tag.dim, dtype=np.float32)
    ids = [f"k/{i:06d}" for i in range(0, n, 2)] + [f"k/{i:06d}x" for i in range(n // 4)]
    for start in range(0, len(ids), 500):
        index.upsert([IndexRow(f"{settings.bucket}/{k}", vec, "stale", 1, "x", 0, 0) for k in ids[start : start + 500]])
    index.close()


def _peak(settings, embedder) -> tuple[int, BackfillReport]:  # type: ignore[no-untyped-def]
    tracemalloc.start()
    try:
        report = backfill(settings, embedder, dry_run=True, progress=False, chunk=20)
        return tracemalloc.get_traced_memory()[1], report
    finally:
        tracemalloc.stop()


def test_backfill_memory_stays_flat_as_the_bucket_grows(servers, embedder, tmp_path) -> None:  # type: ignore[no-untyped-def]
    peaks = {}
    for n in (200, 800):
        s = make_settings(servers, state_dir=tmp_path)
        _fill(s, embedder, n)
        try:
            peaks[n], report = _peak(s, embedder)
        finally:
            VectorIndex(s).drop()
        # every object's vector is stale or missing; the extra vectors are gone
        assert (report.added, report.updated, report.removed) == (n // 2, n // 2, n // 4)
    # four times the objects: a design that holds the listing or the index would need 4x the memory
    assert peaks[800] < 1.5 * peaks[200], peaks


def test_prefix_is_applied_by_both_servers_and_a_crashed_run_resumes(servers, embedder, tmp_path) -> None:  # type: ignore[no-untyped-def]
    s = make_settings(servers, state_dir=tmp_path)
    store = ObjectStore(s)
    store.ensure_bucket(s.bucket)
    imgs = dataset_images(4)
    for i, img in enumerate(imgs):
        store.put_file(s.bucket, f"in/{i}.jpg", img, "image/jpeg")
    store.put_file(s.bucket, "out/0.jpg", imgs[0], "image/jpeg")
    try:
        # a run that crashed after in/0 and in/1 (as its checkpoint says): the rest is done now
        Checkpoint(s, "in/").save(f"{s.bucket}/in/1.jpg", BackfillReport(added=2))
        report = backfill(s, embedder, prefix="in/", progress=False, chunk=1)
        assert (report.added, report.removed, report.failed) == (4, 0, 0)  # 2 from before the crash
        index = VectorIndex(s)
        index.open(embedder.tag, create=False)
        ids = sorted(r["id"] for r in index.iter_rows())
        index.close()
        assert ids == [f"{s.bucket}/in/2.jpg", f"{s.bucket}/in/3.jpg"]  # out/ untouched, in/0-1 trusted
        assert not Checkpoint(s, "in/").path.exists()  # finished: no checkpoint left behind
        watch = live.KafkaWatch(s)
        try:
            fed = {(r.id, r.outcome) for r in watch.feed_tail()}
        finally:
            watch.close()
        assert fed == {(f"{s.bucket}/in/2.jpg", "indexed"), (f"{s.bucket}/in/3.jpg", "indexed")}  # in the feed
        again = backfill(s, embedder, prefix="in/", progress=False)
        assert (again.added, again.unchanged) == (2, 2)  # a fresh run reconciles all of in/
    finally:
        VectorIndex(s).drop()
