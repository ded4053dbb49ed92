"""``lookalike.index`` against the real Milvus standalone server: consistency and return shapes.

A standalone server reads with Bounded staleness unless told otherwise, so a write followed at once by a
read could miss the write. lookalike creates collections with ``consistency_level="Strong"`` and passes
Strong on every query and search; these tests read right after each write, with no wait, many times.
"""

from __future__ import annotations

import numpy as np
import pytest
from pymilvus import MilvusClient

from lookalike.index import GRPC_OPTIONS, VectorIndex
from lookalike.rows import IndexRow, ModelTag
from tests.conftest import make_settings
from tests.milvus_server.conftest import FLAG, tier_enabled

pytestmark = [
    pytest.mark.milvus_server,
    pytest.mark.skipif(not tier_enabled(), reason=f"needs {FLAG}=1 inside `unshare -n` (infra/test.sh)"),
]

DIM = 16


def _rows(ids: list[str], etag: str, seed: int) -> list[IndexRow]:
    rng = np.random.default_rng(seed)
    vectors = rng.normal(size=(len(ids), DIM)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    return [IndexRow(i, v, etag, 100, "image/jpeg", 1, 2) for i, v in zip(ids, vectors, strict=True)]


@pytest.fixture()
def index(servers: dict[str, str]):  # type: ignore[no-untyped-def]
    idx = VectorIndex(make_settings(servers))
    try:
        idx.open(ModelTag("test-model", "test-weights", DIM))
        yield idx
    finally:
        idx.drop()
        idx.close()


def test_the_tier_talks_to_the_standalone_server(servers: dict[str, str]) -> None:
    client = MilvusClient(uri=servers["milvus_uri"], grpc_options=GRPC_OPTIONS)
    try:
        assert client.get_server_version().startswith("v2.3.5")
    finally:
        client.close()


def test_collection_is_strong_and_records_the_model(index: VectorIndex) -> None:
    client = MilvusClient(uri=index.uri, grpc_options=GRPC_OPTIONS)
    try:
        info = client.describe_collection(index.name)
    finally:
        client.close()
    assert info["consistency_level_name"] == "Strong"
    assert index.stored_tag() == ModelTag("test-model", "test-weights", DIM)


def test_reads_see_every_write_at_once(index: VectorIndex) -> None:
    ids = [f"b/img-{i:03d}.jpg" for i in range(60)]
    for round_ in range(5):
        rows = _rows(ids, f"etag-{round_}", seed=round_)
        index.upsert(rows)
        # no wait between the write and the reads: Strong must make them visible
        assert index.count() == len(ids)
        assert {st.etag for st in index.states(ids).values()} == {f"etag-{round_}"}
        probe = rows[round_ * 7]
        top = index.search(probe.vector[None, :], k=3)[0][0]
        assert top.id == probe.id and top.score == pytest.approx(1.0, abs=1e-4)
        assert top.fields["etag"] == f"etag-{round_}"

        gone = ids[round_ * 10 : round_ * 10 + 10]
        index.delete(gone)
        assert index.count() == len(ids) - len(gone)
        assert index.states(gone) == {}
        hits = index.search(rows[round_ * 10].vector[None, :], k=5)[0]
        assert not {h.id for h in hits} & set(gone)
        index.upsert([r for r in rows if r.id in gone])  # put them back for the next round
        assert index.count() == len(ids)


def test_every_row_is_listed_once_across_split_ranges(index: VectorIndex) -> None:
    ids = [f"b/{c}/{i}.jpg" for c in "abcdefg" for i in range(9)]
    index.upsert(_rows(ids, "e", seed=7))
    listed = [r["id"] for r in index.iter_rows(batch=10)]
    assert sorted(listed) == sorted(ids)


def test_without_strong_the_server_misses_fresh_writes(servers: dict[str, str]) -> None:
    """The control: on this server a Bounded read right after a write misses it, so the test above can fail."""
    from pymilvus import DataType

    client = MilvusClient(uri=servers["milvus_uri"], grpc_options=GRPC_OPTIONS)
    name = f"bounded_{make_settings(servers).collection}"
    try:
        schema = MilvusClient.create_schema(auto_id=False)
        schema.add_field("id", DataType.VARCHAR, is_primary=True, max_length=64)
        schema.add_field("vector", DataType.FLOAT_VECTOR, dim=DIM)
        params = client.prepare_index_params()
        params.add_index(field_name="vector", index_type="FLAT", metric_type="IP")
        client.create_collection(name, schema=schema, index_params=params, consistency_level="Bounded")
        misses = 0
        for i, row in enumerate(_rows([f"r{i}" for i in range(10)], "e", seed=3)):
            client.upsert(name, [{"id": row.id, "vector": row.vector.tolist()}])
            seen = client.query(name, filter="", output_fields=["count(*)"])[0]["count(*)"]
            misses += seen != i + 1
        assert misses > 0, "Bounded reads saw every write at once: the Strong test proves nothing here"
    finally:
        client.drop_collection(name)
        client.close()
