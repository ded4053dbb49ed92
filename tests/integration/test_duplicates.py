"""Near-duplicates on the real local stack (SeaweedFS, Tansu, Milvus Lite, a worker, the real model).

An edited copy of an indexed image is marked ``duplicate_of`` its original in the same write; a
distinct image of the same class is not; deleting the original clears the mark. The API's
``/v1/duplicates`` pages through the groups, ``/v1/objects/{key}`` shows the mark, and
``lookalike duplicates --json`` prints the same groups.
"""

from __future__ import annotations

import io
import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from PIL import Image, ImageOps

from lookalike.families import duplicate_threshold
from tests.conftest import Pipeline, open_pipeline
from tests.helpers import CLI, DATASET, remove_object, wait_for

pytestmark = pytest.mark.integration

TOKEN = "test-dup-token"


def edited(path: Path) -> bytes:
    """An edited copy as a user would make one: cropped to the central 90 %, recompressed."""
    with Image.open(path) as src:
        rgb = ImageOps.exif_transpose(src).convert("RGB")
    w, h = rgb.size
    out = io.BytesIO()
    rgb.crop((w // 20, h // 20, w - w // 20, h - h // 20)).save(out, "JPEG", quality=75)
    return out.getvalue()


def images(cls: str) -> list[Path]:
    return sorted((DATASET / "train" / cls).iterdir())


@pytest.fixture(scope="module")
def dup(servers: dict[str, str], embedder: object, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pipeline]:
    """Originals and distinct same-class images indexed first, then the edited copies."""
    with open_pipeline(servers, embedder, tmp_path_factory.mktemp("dup"), api_token=TOKEN) as p:
        p.start_worker()
        bucket = p.settings.bucket  # type: ignore[attr-defined]
        for cls in ("banana", "ambulance"):
            first, other = images(cls)[:2]
            p.store.put_file(bucket, f"{cls}/original.jpg", first, "image/jpeg")
            p.store.put_file(bucket, f"{cls}/distinct.jpg", other, "image/jpeg")
        wait_for(lambda: len(p.indexed()) == 4, 180, interval=0.5, what="originals indexed")
        for cls in ("banana", "ambulance"):
            p.store.put_bytes(bucket, f"{cls}/copy.jpg", edited(images(cls)[0]), "image/jpeg")
        wait_for(lambda: len(p.indexed()) == 6, 180, interval=0.5, what="copies indexed")
        yield p


def rows(p: Pipeline) -> dict[str, dict[str, Any]]:
    idx = p.index()
    try:
        return {r["id"]: r for r in idx.iter_rows(["duplicate_of", "duplicate_score"])}
    finally:
        idx.close()


@pytest.fixture(scope="module")
def client(dup: Pipeline, embedder: object) -> Iterator[Any]:
    from fastapi.testclient import TestClient

    from dashboard.api.app import create_app

    app = create_app(dup.settings, embedder=embedder)  # type: ignore[arg-type]
    with TestClient(app, raise_server_exceptions=False) as c:
        c.headers["Authorization"] = f"Bearer {TOKEN}"
        yield c


def cli_groups(p: Pipeline, *args: str) -> dict[str, Any]:
    done = subprocess.run(
        [*CLI, "duplicates", "--json", *args],
        env={**os.environ, **p.settings.as_env()},  # type: ignore[attr-defined]
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    doc: dict[str, Any] = json.loads(done.stdout)
    return doc


def test_copy_is_marked_distinct_same_class_image_is_not(dup: Pipeline) -> None:
    b = dup.settings.bucket  # type: ignore[attr-defined]
    got = rows(dup)
    settings = dup.settings  # type: ignore[attr-defined]
    threshold = duplicate_threshold(settings.duplicate_threshold, settings.model)  # what the worker used
    assert threshold == 0.85  # unset here: the timm family's calibrated value (lookalike/families.py)
    for cls in ("banana", "ambulance"):
        copy = got[f"{b}/{cls}/copy.jpg"]
        assert copy["duplicate_of"] == f"{b}/{cls}/original.jpg"
        assert copy["duplicate_score"] >= threshold
        assert got[f"{b}/{cls}/distinct.jpg"]["duplicate_of"] == ""
        assert got[f"{b}/{cls}/original.jpg"]["duplicate_of"] == ""  # indexed before its copy existed


def test_api_object_row_and_duplicates_pages(dup: Pipeline, client: Any) -> None:
    row = client.get(f"/v1/objects/{quote('banana/copy.jpg')}").json()
    assert row["duplicate_of"] == "banana/original.jpg" and 0.0 < 1 - row["duplicate_score"] < 0.2
    plain = client.get(f"/v1/objects/{quote('banana/distinct.jpg')}").json()
    assert plain["duplicate_of"] is None and plain["duplicate_score"] is None
    first = client.get("/v1/duplicates", params={"limit": 1})
    assert first.status_code == 200, first.text
    body = first.json()
    assert [g["keys"] for g in body["groups"]] == [["ambulance/copy.jpg", "ambulance/original.jpg"]]
    second = client.get("/v1/duplicates", params={"limit": 1, "cursor": body["next_cursor"]}).json()
    assert [g["keys"] for g in second["groups"]] == [["banana/copy.jpg", "banana/original.jpg"]]
    assert second["next_cursor"] is None
    only = client.get("/v1/duplicates", params={"prefix": "banana/"}).json()
    assert [g["keys"] for g in only["groups"]] == [["banana/copy.jpg", "banana/original.jpg"]]
    assert client.get("/v1/duplicates", params={"threshold": 1.0}).json()["groups"] == []
    for bad in ({"cursor": "nope"}, {"threshold": 2}, {"limit": 0}):
        response = client.get("/v1/duplicates", params=bad)
        assert response.status_code == 422 and "\n" not in response.json()["detail"], response.text
    assert client.get("/v1/duplicates", headers={"Authorization": "Bearer wrong"}).status_code == 401


def test_cli_prints_the_same_groups(dup: Pipeline, client: Any) -> None:
    doc = cli_groups(dup)
    assert [g["keys"] for g in doc["groups"]] == [
        ["ambulance/copy.jpg", "ambulance/original.jpg"],
        ["banana/copy.jpg", "banana/original.jpg"],
    ]
    api = client.get("/v1/duplicates").json()["groups"]
    assert doc["groups"] == api
    assert cli_groups(dup, "--prefix", "ambulance/")["groups"] == doc["groups"][:1]


def test_deleting_the_original_clears_the_mark(dup: Pipeline, client: Any) -> None:
    b = dup.settings.bucket  # type: ignore[attr-defined]
    remove_object(dup.store, b, "banana/original.jpg")
    wait_for(lambda: rows(dup)[f"{b}/banana/copy.jpg"]["duplicate_of"] == "", 120, interval=0.5, what="mark cleared")
    assert f"{b}/banana/original.jpg" not in rows(dup)
    assert client.get(f"/v1/objects/{quote('banana/copy.jpg')}").json()["duplicate_of"] is None
    groups = client.get("/v1/duplicates").json()["groups"]
    assert [g["keys"] for g in groups] == [["ambulance/copy.jpg", "ambulance/original.jpg"]]


def test_a_collection_without_the_duplicate_fields_keeps_working_unmarked(servers: dict[str, str]) -> None:
    """Made by an older lookalike: opened, written and read as before; no marks, no groups."""
    import numpy as np
    from pymilvus import DataType, MilvusClient

    from lookalike.duplicates import find_groups
    from lookalike.index import VectorIndex
    from lookalike.rows import TAG_PROPERTY, IndexRow, ModelTag
    from tests.conftest import make_settings

    settings = make_settings(servers)
    tag = ModelTag("fake", "none", 3)
    client = MilvusClient(uri=settings.milvus_uri)
    schema = MilvusClient.create_schema(auto_id=False, enable_dynamic_field=False, description=tag.describe())
    schema.add_field("id", DataType.VARCHAR, is_primary=True, max_length=2048)
    schema.add_field("vector", DataType.FLOAT_VECTOR, dim=3)
    for name in ("etag", "content_type", "model"):
        schema.add_field(name, DataType.VARCHAR, max_length=256)
    for name in ("size", "event_time", "last_modified", "indexed_at"):
        schema.add_field(name, DataType.INT64)
    params = client.prepare_index_params()
    params.add_index(field_name="vector", index_type="FLAT", metric_type="IP")
    client.create_collection(
        settings.collection, schema=schema, index_params=params, properties={TAG_PROPERTY: tag.describe()}
    )
    index = VectorIndex(settings)
    try:
        index.open(tag, create=False)
        assert not index.has_duplicates
        v = np.asarray([1.0, 0.0, 0.0], dtype=np.float32)
        index.upsert([IndexRow(f"{settings.bucket}/a", v, "e1", 1, "image/jpeg", 1, 1)])
        index.upsert([IndexRow(f"{settings.bucket}/b", v, "e2", 1, "image/jpeg", 1, 1, f"{settings.bucket}/a", 1.0)])
        got = index.get([f"{settings.bucket}/b"])
        assert got and "duplicate_of" not in got[0] and got[0]["etag"] == "e2"
        assert index.search(np.stack([v]), k=2)[0][0].score > 0.99
        assert find_groups(index, 0.5) == ([], None)
    finally:
        index.drop()
        index.close()
        client.close()
