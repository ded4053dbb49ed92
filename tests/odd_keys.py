"""Every key S3 allows, and one check that the index handles each of them through every call.

Shared by the Milvus Lite tier (``tests/integration/test_control_keys.py``) and the real-server
tier (``tests/milvus_server/test_keys_server.py``): the two servers parse filter literals
differently, and a key must work on both.
"""

from __future__ import annotations

import numpy as np

from lookalike.filters import key_prefix
from lookalike.index import VectorIndex
from lookalike.rows import IndexRow, ModelTag
from lookalike.settings import Settings

CONTROL = [chr(c) for c in [*range(1, 32), 127]]
ODD = ['q"uote', "q'uote", "back\\slash", "back\\", "per%cent", "under_score", "unassigned\u0378\U000e0001"]
LONG = "long/x" + "é" * 507 + ".jpg"  # 1,024 bytes of UTF-8: the longest key S3 allows
assert len(LONG.encode()) == 1024


def odd_keys(prefix: str = "ctl/") -> list[str]:
    """One key per control character (U+0001 to U+001F and U+007F), the other odd ones, the longest."""
    return [f"{prefix}a{ch}b.jpg" for ch in CONTROL] + [f"{prefix}{k}.jpg" for k in ODD] + [LONG]


def check_index_calls(index: VectorIndex, bucket: str, dim: int) -> None:
    """Upsert, look up, scan by prefix, mark duplicates, search around and delete every odd key."""
    ids = [f"{bucket}/{k}" for k in odd_keys()]
    rng = np.random.default_rng(7)
    vectors = rng.normal(size=(len(ids), dim)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    rows = [
        IndexRow(i, v, f"etag{n}", 10, "image/jpeg", 1, 2, duplicate_of=ids[0])
        for n, (i, v) in enumerate(zip(ids, vectors, strict=True))
    ]
    index.upsert(rows)
    assert set(index.states(ids)) == set(ids)
    for oid in ids:  # one at a time too: each literal alone
        assert [r["id"] for r in index.get([oid])] == [oid]
        prefix = oid.split("/", 1)[1][:6]
        under = {r["id"] for r in index.iter_rows(where=key_prefix(bucket, prefix))}
        assert oid in under and all(u.startswith(f"{bucket}/{prefix}") for u in under)
    assert {r["id"] for r in index.duplicate_rows(prefix="ctl/a\x18")} >= {f"{bucket}/ctl/a\x18b.jpg"}
    assert len(index.marked_as_copies_of([ids[0]])) == len(ids)  # every row points at the first
    nearest = index.nearest_other(vectors[:3], exclude=ids[:3])
    assert all(n is not None and n[0] not in ids[:3] for n in nearest)
    index.delete(ids[: len(ids) // 2])
    assert set(index.states(ids)) == set(ids[len(ids) // 2 :])
    index.delete(ids)
    assert index.states(ids) == {}


def check_on_a_fresh_collection(settings: Settings, dim: int = 8) -> None:
    """``check_index_calls`` on a collection of its own, dropped afterwards even when the check fails."""
    index = VectorIndex(settings)
    try:
        index.open(ModelTag("test-model", "test-weights", dim))
        check_index_calls(index, settings.bucket, dim)
    finally:
        index.drop()
        index.close()
