"""The live path on the real local stack: S3 put -> SeaweedFS filer -> Tansu -> worker -> Milvus Lite."""

from __future__ import annotations

import numpy as np
import pytest

from lookalike.search import Searcher
from tests.helpers import dataset_images, remove_object, wait_for

pytestmark = pytest.mark.integration


def _upload(pipeline, paths, prefix=""):  # type: ignore[no-untyped-def]
    from producers.upload import plan_upload, upload

    items = plan_upload(paths, prefix=prefix)
    upload(pipeline.store, pipeline.settings.bucket, items, progress=False)
    return items


def test_every_uploaded_image_is_searchable_and_finds_itself(pipeline, tmp_path):  # type: ignore[no-untyped-def]
    images = dataset_images(24)
    folder = tmp_path / "imgs"
    for i, src in enumerate(images):
        dst = folder / src.parent.name / f"{i:02d} {src.name}"  # spaces: keys arrive URL-encoded
        dst.parent.mkdir(parents=True, exist_ok=True)
        dst.write_bytes(src.read_bytes())
    pipeline.start_worker()
    items = _upload(pipeline, [folder])
    bucket = pipeline.settings.bucket
    expected = {f"{bucket}/{it.key}" for it in items}
    wait_for(lambda: set(pipeline.indexed()) == expected, 120, what="all images indexed")

    searcher = Searcher(pipeline.settings, embedder=pipeline.embedder)
    try:
        for it in items[:8]:
            result = searcher.search_bytes(it.path.read_bytes(), k=3)
            assert result.neighbours[0].key == it.key
            assert result.neighbours[0].score == pytest.approx(1.0, abs=1e-3)
            assert result.neighbours[0].content_type == "image/jpeg"
    finally:
        searcher.close()


def test_delete_disappears_and_overwrite_reembeds(pipeline):  # type: ignore[no-untyped-def]
    a, b, c = dataset_images(3)
    s = pipeline.settings
    store = pipeline.store
    pipeline.start_worker()
    store.put_file(s.bucket, "x/photo.jpg", a, "image/jpeg")
    store.put_file(s.bucket, "x/other.jpg", c, "image/jpeg")
    wait_for(lambda: len(pipeline.indexed()) == 2, 60, what="two vectors")

    searcher = Searcher(s, embedder=pipeline.embedder)
    try:
        first = searcher.search_bytes(a.read_bytes(), k=1).neighbours[0]
        assert first.key == "x/photo.jpg" and first.score > 0.999

        # overwrite the key with another image: its vector must become b's
        new_etag = store.put_file(s.bucket, "x/photo.jpg", b, "image/jpeg")
        wait_for(lambda: pipeline.indexed().get(f"{s.bucket}/x/photo.jpg") == new_etag, 60, what="overwrite")
        idx = pipeline.index()
        row = idx.get([f"{s.bucket}/x/photo.jpg"], with_vectors=True)[0]
        want = pipeline.embedder.embed([__import__("lookalike.imaging", fromlist=["x"]).decode_image(b.read_bytes())])[
            0
        ]
        assert float(np.dot(np.asarray(row["vector"], dtype=np.float32), want)) > 0.999
        top = searcher.search_bytes(b.read_bytes(), k=1).neighbours[0]
        assert top.key == "x/photo.jpg" and top.etag == new_etag

        # delete: gone from results
        remove_object(store, s.bucket, "x/photo.jpg")
        wait_for(lambda: f"{s.bucket}/x/photo.jpg" not in pipeline.indexed(), 60, what="delete")
        keys = [n.key for n in searcher.search_bytes(b.read_bytes(), k=5).neighbours]
        assert keys == ["x/other.jpg"]
        idx.close()
    finally:
        searcher.close()


def test_same_image_twice_leaves_one_vector(pipeline):  # type: ignore[no-untyped-def]
    (a,) = dataset_images(1)
    s = pipeline.settings
    pipeline.start_worker()
    for _ in range(3):
        pipeline.store.put_file(s.bucket, "dup.jpg", a, "image/jpeg")
    pipeline.store.put_file(s.bucket, "marker.jpg", dataset_images(2)[1], "image/jpeg")
    wait_for(lambda: len(pipeline.indexed()) == 2, 60, what="two vectors")
    idx = pipeline.index()
    try:
        assert idx.count() == 2
        assert set(pipeline.indexed()) == {f"{s.bucket}/dup.jpg", f"{s.bucket}/marker.jpg"}
    finally:
        idx.close()


def test_odd_keys_survive_encoding(pipeline):  # type: ignore[no-untyped-def]
    (a,) = dataset_images(1)
    s = pipeline.settings
    pipeline.start_worker()
    keys = ["a dir/ü x.jpg", "quote\"d/it's.jpg", "plus+sign&amp.jpg", "back\\slash.jpg"]
    for k in keys:
        pipeline.store.put_file(s.bucket, k, a, "image/jpeg")
    stored = [k.replace("\\", "/") for k in keys]  # SeaweedFS stores a backslash as a slash
    want = {f"{s.bucket}/{k}" for k in stored}
    assert set(pipeline.bucket_state()) == want
    wait_for(lambda: set(pipeline.indexed()) == want, 60, what="odd keys indexed")
    for k in keys[:2]:
        remove_object(pipeline.store, s.bucket, k)
    wait_for(lambda: set(pipeline.indexed()) == {f"{s.bucket}/{k}" for k in stored[2:]}, 60, what="odd keys deleted")


def test_other_model_is_refused(pipeline):  # type: ignore[no-untyped-def]
    from lookalike.errors import ModelMismatch
    from lookalike.index import VectorIndex
    from lookalike.rows import ModelTag

    pipeline.start_worker()
    (a,) = dataset_images(1)
    pipeline.store.put_file(pipeline.settings.bucket, "a.jpg", a, "image/jpeg")
    wait_for(lambda: pipeline.indexed(), 60, what="one vector")
    idx = VectorIndex(pipeline.settings)
    with pytest.raises(ModelMismatch, match="resnet50"):
        idx.open(ModelTag("resnet50", "timm-pretrained", 2048))
    idx.close()
