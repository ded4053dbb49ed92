"""The vector index: one Milvus collection, primary key ``bucket/key``, inner product on unit vectors.

Writes are upserts keyed by ``bucket/key`` (never auto ids), so a redelivered event rewrites the same
row instead of adding one. The collection's description records the model that made its vectors;
opening it with another model raises ``ModelMismatch`` instead of silently mixing vector spaces.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from pymilvus import DataType, MilvusClient, MilvusException

from lookalike.errors import ModelMismatch, Unavailable
from lookalike.events import split_id
from lookalike.filters import key_prefix
from lookalike.settings import Settings

log = logging.getLogger(__name__)

MAX_ID = 2048
TAG_PROPERTY = "lookalike.model"
FIELDS = ["id", "etag", "size", "content_type", "event_time", "last_modified", "indexed_at", "model"]
DUPLICATE_FIELDS = ["duplicate_of", "duplicate_score"]


@dataclass(frozen=True)
class ModelTag:
    """What made the vectors: the timm name, where its weights came from, and the dimension."""

    model: str
    weights: str
    dim: int

    def describe(self) -> str:
        return json.dumps({"lookalike": 1, **asdict(self)}, sort_keys=True)

    @classmethod
    def parse(cls, description: str) -> ModelTag | None:
        try:
            doc = json.loads(description or "")
            return cls(model=str(doc["model"]), weights=str(doc["weights"]), dim=int(doc["dim"]))
        except (ValueError, KeyError, TypeError):
            return None


@dataclass(frozen=True)
class IndexRow:
    id: str
    vector: np.ndarray
    etag: str
    size: int
    content_type: str
    event_time: int
    last_modified: int
    duplicate_of: str = ""  # id (bucket/key) of the nearest other object when it is a near-copy
    duplicate_score: float = 0.0  # their cosine similarity (0 when not marked)
    indexed_at: int | None = None  # kept on a re-checked row; None: now


@dataclass(frozen=True)
class IndexedState:
    """What the index holds for one object: enough to skip or refuse a write without the vector."""

    etag: str
    last_modified: int


class ObjectIdParts:
    """``bucket`` and ``key`` of a row whose ``id`` is ``bucket/key``."""

    id: str

    @property
    def bucket(self) -> str:
        return split_id(self.id)[0]

    @property
    def key(self) -> str:
        return split_id(self.id)[1]


@dataclass(frozen=True)
class Hit(ObjectIdParts):
    id: str
    score: float
    fields: dict[str, Any]


def id_filter(ids: Sequence[str]) -> str:
    """``id in [...]`` with each id quoted and escaped (keys may hold quotes and backslashes)."""
    return "id in [" + ",".join(json.dumps(i, ensure_ascii=False) for i in ids) + "]"


class VectorIndex:
    """A Milvus collection of image vectors."""

    def __init__(self, settings: Settings, timeout: float = 10.0) -> None:
        self.name = settings.collection
        self.uri = settings.milvus_uri
        self.index_type = settings.index_type
        self.timeout = timeout
        self.bucket = settings.bucket
        self.tag: ModelTag | None = None
        self.has_duplicates = True  # False on a collection made before the duplicate fields
        try:
            self.client = MilvusClient(
                uri=settings.milvus_uri, token=settings.milvus_token.get_secret_value(), timeout=timeout
            )
        except MilvusException as exc:
            raise Unavailable("milvus", str(exc)) from exc

    # ---- lifecycle
    def open(self, tag: ModelTag, create: bool = True) -> None:
        """Attach to the collection for this model, creating it if asked; refuse another model's."""
        existing = self.stored_tag()
        if existing is None and self.exists():
            raise ModelMismatch(f"collection {self.name!r} exists but was not made by lookalike")
        if existing is not None and (existing.model, existing.weights, existing.dim) != (
            tag.model,
            tag.weights,
            tag.dim,
        ):
            raise ModelMismatch(
                f"collection {self.name!r} holds vectors of model {existing.model} ({existing.weights}, "
                f"dim {existing.dim}) but this process uses {tag.model} ({tag.weights}, dim {tag.dim}); "
                "use another LOOKALIKE_COLLECTION or reindex"
            )
        if existing is None:
            if not create:
                raise ModelMismatch(f"collection {self.name!r} does not exist yet")
            self._create(tag)
        self.tag = tag
        self.check_duplicate_fields()
        self._call(self.client.load_collection, self.name)

    def check_duplicate_fields(self) -> bool:
        """Whether the collection has the duplicate fields; an older one works on without marks."""
        info = self._call(self.client.describe_collection, self.name)
        have = {f.get("name") for f in info.get("fields") or []}
        missing = [n for n in DUPLICATE_FIELDS if n not in have]
        if missing:
            log.warning(
                "collection %s has no %s field (made by an older lookalike): duplicates are not marked; "
                "reindex into a new LOOKALIKE_COLLECTION to get them",
                self.name,
                "/".join(missing),
            )
        self.has_duplicates = not missing
        return self.has_duplicates

    @property
    def fields(self) -> list[str]:
        """The scalar fields this collection holds."""
        return [*FIELDS, *DUPLICATE_FIELDS] if self.has_duplicates else list(FIELDS)

    def exists(self) -> bool:
        return bool(self._call(self.client.has_collection, self.name))

    def stored_tag(self) -> ModelTag | None:
        if not self.exists():
            return None
        info = self._call(self.client.describe_collection, self.name)
        props = info.get("properties") or {}
        return ModelTag.parse(props.get(TAG_PROPERTY, "")) or ModelTag.parse(info.get("description", ""))

    def _create(self, tag: ModelTag) -> None:
        schema = MilvusClient.create_schema(auto_id=False, enable_dynamic_field=False, description=tag.describe())
        schema.add_field("id", DataType.VARCHAR, is_primary=True, max_length=MAX_ID)
        schema.add_field("vector", DataType.FLOAT_VECTOR, dim=tag.dim)
        schema.add_field("etag", DataType.VARCHAR, max_length=128)
        schema.add_field("size", DataType.INT64)
        schema.add_field("content_type", DataType.VARCHAR, max_length=256)
        schema.add_field("event_time", DataType.INT64)
        schema.add_field("last_modified", DataType.INT64)
        schema.add_field("indexed_at", DataType.INT64)
        schema.add_field("model", DataType.VARCHAR, max_length=256)
        schema.add_field("duplicate_of", DataType.VARCHAR, max_length=MAX_ID)
        schema.add_field("duplicate_score", DataType.FLOAT)
        params = self.client.prepare_index_params()
        extra = (
            {"M": 16, "efConstruction": 200}
            if self.index_type == "HNSW"
            else ({"nlist": 128} if self.index_type.startswith("IVF") else {})
        )
        params.add_index(field_name="vector", index_type=self.index_type, metric_type="IP", params=extra)
        log.info("creating collection %s for %s (%s, dim %d)", self.name, tag.model, tag.weights, tag.dim)
        self._call(
            self.client.create_collection,
            self.name,
            schema=schema,
            index_params=params,
            consistency_level="Strong",
            properties={TAG_PROPERTY: tag.describe()},
        )

    def drop(self) -> None:
        if self.exists():
            self._call(self.client.drop_collection, self.name)

    def close(self) -> None:
        try:
            self.client.close()
        except Exception:  # closing a broken channel must not mask the real error
            log.debug("closing milvus client failed", exc_info=True)

    # ---- writes
    def upsert(self, rows: Sequence[IndexRow]) -> None:
        if not rows:
            return
        assert self.tag is not None, "open() first"
        now = int(time.time() * 1000)
        data = [
            {
                "id": r.id,
                "vector": np.asarray(r.vector, dtype=np.float32).tolist(),
                "etag": r.etag,
                "size": int(r.size),
                "content_type": r.content_type[:256],
                "event_time": int(r.event_time),
                "last_modified": int(r.last_modified),
                "indexed_at": now if r.indexed_at is None else int(r.indexed_at),
                "model": self.tag.model,
            }
            for r in rows
        ]
        if self.has_duplicates:
            for d, r in zip(data, rows, strict=True):
                d["duplicate_of"] = r.duplicate_of
                d["duplicate_score"] = float(r.duplicate_score)
        self._call(self.client.upsert, self.name, data)

    def flush(self) -> None:
        """Seal what was written so far. Milvus Lite searches unsealed rows one by one (about 0.15 ms
        a row), so a thousand unflushed vectors cost 140 ms a query; sealed, they cost a few ms."""
        self._call(self.client.flush, self.name)

    def delete(self, ids: Sequence[str]) -> None:
        if ids:
            self._call(self.client.delete, self.name, filter=id_filter(ids))

    # ---- reads
    def states(self, ids: Sequence[str]) -> dict[str, IndexedState]:
        """Etag and Last-Modified of each id that is present."""
        if not ids:
            return {}
        rows = self._call(
            self.client.query,
            self.name,
            filter=id_filter(ids),
            output_fields=["id", "etag", "last_modified"],
            consistency_level="Strong",
        )
        return {r["id"]: IndexedState(r["etag"], int(r["last_modified"])) for r in rows}

    def get(self, ids: Sequence[str], with_vectors: bool = False) -> list[dict[str, Any]]:
        if not ids:
            return []
        fields = [*self.fields, "vector"] if with_vectors else self.fields
        return list(
            self._call(
                self.client.query, self.name, filter=id_filter(ids), output_fields=fields, consistency_level="Strong"
            )
        )

    def count(self) -> int:
        rows = self._call(
            self.client.query, self.name, filter="", output_fields=["count(*)"], consistency_level="Strong"
        )
        return int(rows[0]["count(*)"]) if rows else 0

    def iter_rows(
        self, fields: Sequence[str] = ("id", "etag"), batch: int = 1000, where: str = ""
    ) -> Iterator[dict[str, Any]]:
        """Every row (for reconciliation), in primary-key ranges of at most ``batch`` rows.

        Milvus (Lite above all) returns a limited query in no particular order, and pymilvus'
        query_iterator does not escape string keys; so a range that comes back full is split at the
        median of what it returned, until each range fits in one page.
        """
        out = list(dict.fromkeys(["id", *fields]))
        ranges: list[tuple[str | None, str | None]] = [(None, None)]
        while ranges:
            lo, hi = ranges.pop()
            terms = []
            if lo is not None:
                terms.append(f"id >= {json.dumps(lo, ensure_ascii=False)}")
            if hi is not None:
                terms.append(f"id < {json.dumps(hi, ensure_ascii=False)}")
            if where:
                terms.append(f"({where})")
            page = self._call(
                self.client.query,
                self.name,
                filter=" && ".join(terms),
                output_fields=out,
                limit=batch + 1,
                consistency_level="Strong",
            )
            if len(page) <= batch:
                yield from page
                continue
            ids = sorted(str(r["id"]) for r in page)
            mid = ids[len(ids) // 2]
            ranges.append((mid, hi))
            ranges.append((lo, mid))

    def duplicate_rows(self, prefix: str = "", min_score: float = 0.0) -> list[dict[str, Any]]:
        """Rows marked as a near-copy (score >= ``min_score``) whose key, or whose original's key, is
        under ``prefix`` in this bucket: ``id``, ``duplicate_of``, ``duplicate_score``."""
        if not self.has_duplicates:
            return []
        marked = f'duplicate_of != "" && duplicate_score >= {float(min_score)!r}'
        if not prefix:
            return list(self.iter_rows(DUPLICATE_FIELDS, where=marked))
        under = key_prefix(self.bucket, prefix)
        target = key_prefix(self.bucket, prefix, field="duplicate_of")
        rows = {r["id"]: r for r in self.iter_rows(DUPLICATE_FIELDS, where=f"({marked}) && (({under}) || ({target}))")}
        return list(rows.values())

    def nearest_other(self, vectors: np.ndarray, exclude: Sequence[str]) -> list[tuple[str, float] | None]:
        """For each vector, the id and similarity of its nearest row not in ``exclude`` (Strong)."""
        if len(vectors) == 0:
            return []
        where = f"not ({id_filter(list(exclude))})" if exclude else ""
        hits = self.search(np.asarray(vectors), k=1, filter=where)
        return [(h[0].id, h[0].score) if h else None for h in hits]

    def marked_as_copies_of(self, ids: Sequence[str], limit: int = 16384) -> list[IndexRow]:
        """Rows (with vectors) whose ``duplicate_of`` is one of ``ids``: to re-check when those change."""
        if not ids or not self.has_duplicates:
            return []
        where = id_filter(list(ids)).replace("id in", "duplicate_of in", 1)
        rows = self.query(where, [*self.fields, "vector"], limit=limit)
        return [
            IndexRow(
                id=str(r["id"]),
                vector=np.asarray(r["vector"], dtype=np.float32),
                etag=str(r["etag"]),
                size=int(r["size"]),
                content_type=str(r["content_type"]),
                event_time=int(r["event_time"]),
                last_modified=int(r["last_modified"]),
                duplicate_of=str(r["duplicate_of"]),
                duplicate_score=float(r["duplicate_score"]),
                indexed_at=int(r["indexed_at"]),
            )
            for r in rows
        ]

    def query(self, filter: str, fields: Sequence[str], limit: int | None = None) -> list[dict[str, Any]]:
        """Rows matching a Milvus ``filter`` (Strong), e.g. by ``indexed_at`` for the live panel."""
        kwargs: dict[str, Any] = {"filter": filter, "output_fields": list(fields), "consistency_level": "Strong"}
        if limit is not None:
            kwargs["limit"] = limit
        return list(self._call(self.client.query, self.name, **kwargs))

    def collections(self) -> list[str]:
        """Every collection on this Milvus server (to check that a private run left none behind)."""
        return list(self._call(self.client.list_collections))

    def search(self, vectors: np.ndarray, k: int = 10, filter: str = "") -> list[list[Hit]]:
        k = max(1, min(int(k), 1000))
        params = {"metric_type": "IP", "params": {"ef": max(64, k)} if self.index_type == "HNSW" else {}}
        result = self._call(
            self.client.search,
            self.name,
            data=np.asarray(vectors, dtype=np.float32).tolist(),
            limit=k,
            filter=filter,
            output_fields=[f for f in self.fields if f != "id"],
            search_params=params,
            consistency_level="Strong",
        )
        return [
            [Hit(id=str(h["id"]), score=float(h["distance"]), fields=dict(h.get("entity") or {})) for h in hits]
            for hits in result
        ]

    def _call(self, fn: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            if "timeout" not in kwargs and fn.__name__ not in ("next", "create_schema"):
                kwargs["timeout"] = self.timeout
            return fn(*args, **kwargs)
        except MilvusException as exc:
            if _is_unavailable(exc):
                raise Unavailable("milvus", str(exc)) from exc
            raise


def _is_unavailable(exc: MilvusException) -> bool:
    text = str(exc).lower()
    return any(
        s in text for s in ("unavailable", "deadline", "connect", "timeout", "not ready", "closed", "server", "rpc")
    )
