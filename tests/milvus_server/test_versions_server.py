"""Versioned collections on the real Milvus 2.3.5 server: adopt, create a version, swap, follow, roll back.

The alias calls (create/alter/drop/describe), ``rename_collection`` (adopting a pre-version
collection), ``alter_collection_properties`` and ``describe_collection(alias)`` must behave here as
on Milvus Lite; the full live scenario runs on Lite in ``tests/integration/test_reindex.py``.
"""

from __future__ import annotations

import numpy as np
import pytest
from pymilvus import DataType, MilvusClient

from infra.reindex import switch
from lookalike.errors import ModelMismatch
from lookalike.index import VectorIndex
from lookalike.rows import TAG_PROPERTY, IndexRow, ModelTag
from lookalike.versions import WEIGHTS_PATH_PROPERTY, Versions
from tests.conftest import make_settings
from tests.milvus_server.conftest import FLAG, tier_enabled

pytestmark = [
    pytest.mark.milvus_server,
    pytest.mark.skipif(not tier_enabled(), reason=f"needs {FLAG}=1 inside `unshare -n` (infra/test.sh)"),
]

OLD = ModelTag("model-a", "random-init:seed0", 8)
NEW = ModelTag("model-b", "random-init:seed0", 16)


def _rows(ids: list[str], dim: int, seed: int) -> list[IndexRow]:
    rng = np.random.default_rng(seed)
    vectors = rng.normal(size=(len(ids), dim)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    return [IndexRow(i, v, "e", 1, "image/jpeg", 1, 2) for i, v in zip(ids, vectors, strict=True)]


def _legacy(uri: str, name: str) -> None:
    """A collection as lookalike made it before versions: named like the alias, tag in its properties."""
    client = MilvusClient(uri=uri)
    schema = MilvusClient.create_schema(auto_id=False, description=OLD.describe())
    schema.add_field("id", DataType.VARCHAR, is_primary=True, max_length=64)
    schema.add_field("vector", DataType.FLOAT_VECTOR, dim=OLD.dim)
    for name_, kind in (("etag", DataType.VARCHAR), ("content_type", DataType.VARCHAR), ("model", DataType.VARCHAR)):
        schema.add_field(name_, kind, max_length=256)
    for name_ in ("size", "event_time", "last_modified", "indexed_at"):
        schema.add_field(name_, DataType.INT64)
    params = client.prepare_index_params()
    params.add_index(field_name="vector", index_type="FLAT", metric_type="IP")
    client.create_collection(
        name, schema=schema, index_params=params, consistency_level="Strong", properties={TAG_PROPERTY: OLD.describe()}
    )
    client.close()


def test_adopt_swap_follow_refuse_and_roll_back(servers: dict[str, str]) -> None:
    s = make_settings(servers, index_type="FLAT")
    alias = s.collection
    _legacy(s.milvus_uri, alias)
    writer = VectorIndex(s)
    reader = VectorIndex(s)
    try:
        writer.open(OLD)  # adopts the pre-version collection: renamed to __v1, alias in its place
        assert writer.name == f"{alias}__v1"
        writer.upsert(_rows(["b/old"], OLD.dim, 1))
        versions = Versions(reader)
        assert versions.versions(alias) == [(1, f"{alias}__v1")]
        assert reader.follow() == (f"{alias}__v1", OLD)

        new = VectorIndex(s.model_copy(update={"collection": f"{alias}__v2"}))
        new.open(NEW)
        new.upsert(_rows(["b/new"], NEW.dim, 2))
        versions.set_property(f"{alias}__v2", WEIGHTS_PATH_PROPERTY, "/nowhere.pth")
        assert versions.describe(f"{alias}__v2").properties[WEIGHTS_PATH_PROPERTY] == "/nowhere.pth"  # type: ignore[union-attr]
        versions.point(alias, f"{alias}__v2")

        collection, tag = reader.follow()  # a search follows the swap at its next query
        assert (collection, tag) == (f"{alias}__v2", NEW)
        hits = reader.search(_rows(["q"], NEW.dim, 2)[0].vector[None, :], k=2, collection=collection)[0]
        assert [h.id for h in hits] == ["b/new"]
        with pytest.raises(ModelMismatch, match="restart it with the new model"):
            writer.upsert(_rows(["b/late"], OLD.dim, 3))  # the old-model writer refuses
        new.close()

        back = switch.rollback(s)
        assert back["collection"] == f"{alias}__v1" and back["restarted_workers"] == 0
        assert reader.follow() == (f"{alias}__v1", OLD)
        assert [r["id"] for r in reader.iter_rows()] == ["b/old"]
        assert switch.drop_previous(s)["dropped"] == [f"{alias}__v2"]
        assert f"{alias}__v2" not in reader.collections()
    finally:
        writer.close()
        reader.drop()  # the alias and every version
        assert not any(c.startswith(alias) for c in reader.collections())
        reader.close()
