"""The vector index: one Milvus collection, primary key ``bucket/key``, inner product on unit vectors.

Writes are upserts keyed by ``bucket/key`` (never auto ids), so a redelivered event rewrites the same
row instead of adding one. The collection's description records the model that made its vectors;
opening it with another model raises ``ModelMismatch`` instead of silently mixing vector spaces.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from typing import Any

import numpy as np
from pymilvus import DataType, MilvusClient

from lookalike.errors import ModelMismatch, NotIndexed
from lookalike.filters import in_list
from lookalike.index_queries import RowQueries
from lookalike.milvus import GRPC_OPTIONS, MilvusConnection, MilvusRefused
from lookalike.rows import DUPLICATE_FIELDS, FIELDS, MAX_ID, TAG_PROPERTY, Hit, IndexedState, IndexRow, ModelTag
from lookalike.settings import Settings
from lookalike.versions import Versions, is_physical, physical_name

log = logging.getLogger(__name__)

__all__ = ["GRPC_OPTIONS", "VectorIndex"]


class VectorIndex(RowQueries):
    """A Milvus collection of image vectors; calls go through ``lookalike.milvus`` (errors by code)."""

    def __init__(self, settings: Settings, timeout: float = 10.0) -> None:
        self.name = settings.collection
        # the configured name is an alias (lookalike.versions) unless it names a version itself
        self.alias: str | None = None if is_physical(settings.collection) else settings.collection
        self.uri = settings.milvus_uri
        self.index_type = settings.index_type
        self.hnsw = (settings.hnsw_m, settings.hnsw_ef_construction, settings.hnsw_ef)
        self.timeout = timeout
        self.bucket = settings.bucket
        self.tag: ModelTag | None = None
        self.has_duplicates = True  # False on a collection made before the duplicate fields
        self.conn = MilvusConnection(settings.milvus_uri, settings.milvus_token.get_secret_value(), timeout)
        self.client = self.conn.client

    # ---- lifecycle
    def open(self, tag: ModelTag, create: bool = True) -> None:
        """Attach to the collection for this model, creating it if asked; refuse another model's.

        Through an alias: resolve it (adopting a pre-version collection, creating ``__v1`` on a new
        index), then open its target; every later write batch first checks the alias still points there.
        """
        if self.alias is not None:
            self._resolve_alias(tag if create else None)
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
                raise NotIndexed(f"collection {self.name!r} does not exist yet")
            self._create(tag)
        self.tag = tag
        self.check_duplicate_fields()
        self.call("load_collection", self.name)

    def check_duplicate_fields(self) -> bool:
        """Whether the collection has the duplicate fields; an older one works on without marks."""
        info = self.call("describe_collection", self.name)
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

    def _resolve_alias(self, create_for: ModelTag | None) -> None:
        assert self.alias is not None
        versions = Versions(self)
        target = versions.resolve(self.alias)
        if target is None and create_for is not None:
            self.name = physical_name(self.alias, 1)
            if not self.exists():
                self._create(create_for)
            versions.point(self.alias, self.name)
            target = versions.resolve(self.alias)
        self.name = target.collection if target is not None else self.alias

    def follow(self) -> tuple[str, ModelTag]:
        """Re-resolve the alias (two cheap RPCs) and read from its target from now on: (target, tag).

        Searches call this per query, so they follow a swap at once; the tag says which model
        must embed the query, and passing the target to ``search`` keeps a concurrent swap from
        mixing another model's vectors in."""
        name = self.alias or self.name
        target = Versions(self).describe(name)
        if target is None or target.tag is None:
            raise NotIndexed(f"collection {name!r} does not exist yet")
        if target.collection != self.name or self.tag != target.tag:
            self.call("load_collection", target.collection)
            self.name, self.tag = target.collection, target.tag
            self.check_duplicate_fields()
        return target.collection, target.tag

    def check_target(self) -> None:
        """Refuse to write once the alias points at another model's collection (a swap happened).

        One call (``describe_collection`` of the alias names its target and tag). The writer calls
        it once per batch, before the batch's dedupe search and writes; ``upsert`` and ``delete``
        call it themselves unless told the batch was checked. Why once per batch is enough: writes go
        to the *physical* collection resolved here, never through the alias, so a swap after the
        check can only leave this batch in the collection it was checked against, which holds this
        process's model; the next batch sees the swap and stops. That is the window a check per call
        had too (a swap between the check and the upsert), widened from one call to one batch."""
        if self.alias is None:
            return
        try:
            info = self.call("describe_collection", self.alias)
        except MilvusRefused:  # no such alias or collection (dropped): keep writing where we are
            return
        props = info.get("properties") or {}
        tag = ModelTag.parse(props.get(TAG_PROPERTY, "")) or ModelTag.parse(info.get("description", ""))
        target = str(info.get("collection_name") or self.alias)
        if target == self.name:
            return
        if tag != self.tag:
            raise ModelMismatch(
                f"alias {self.alias!r} now points at {target} (model "
                f"{tag.model if tag else '?'}) but this process writes with "
                f"{self.tag.model if self.tag else '?'}: restart it with the new model"
            )
        self.name = target

    def exists(self) -> bool:
        return bool(self.call("has_collection", self.name))

    def stored_tag(self) -> ModelTag | None:
        if not self.exists():
            return None
        info = self.call("describe_collection", self.name)
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
            {"M": self.hnsw[0], "efConstruction": self.hnsw[1]}
            if self.index_type == "HNSW"
            else ({"nlist": 128} if self.index_type.startswith("IVF") else {})
        )
        params.add_index(field_name="vector", index_type=self.index_type, metric_type="IP", params=extra)
        log.info("creating collection %s for %s (%s, dim %d)", self.name, tag.model, tag.weights, tag.dim)
        self.call(
            "create_collection",
            self.name,
            schema=schema,
            index_params=params,
            consistency_level="Strong",
            properties={TAG_PROPERTY: tag.describe()},
        )

    def drop(self) -> None:
        """Drop the collection; through an alias: the alias and every version behind it."""
        if self.alias is not None:
            versions = Versions(self)
            versions.drop_alias(self.alias)
            for _, name in versions.versions(self.alias):
                self.call("drop_collection", name)
            self.name = self.alias
        if self.exists():
            self.call("drop_collection", self.name)

    def close(self) -> None:
        self.conn.close()

    # ---- writes
    def upsert(self, rows: Sequence[IndexRow], checked: bool = False) -> None:
        """Write ``rows``; ``checked``: the caller ran ``check_target`` for this batch already."""
        if not rows:
            return
        assert self.tag is not None, "open() first"
        if not checked:
            self.check_target()
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
        self.call("upsert", self.name, data)

    def flush(self) -> None:
        """Seal what was written so far. Milvus Lite searches unsealed rows one by one (about 0.15 ms
        a row), so a thousand unflushed vectors cost 140 ms a query; sealed, they cost a few ms."""
        self.call("flush", self.name)

    def delete(self, ids: Sequence[str], checked: bool = False) -> None:
        if ids:
            if not checked:
                self.check_target()
            self.call("delete", self.name, filter=in_list(ids))

    # ---- reads
    def states(self, ids: Sequence[str]) -> dict[str, IndexedState]:
        """Etag and Last-Modified of each id that is present."""
        if not ids:
            return {}
        rows = self.call(
            "query",
            self.name,
            filter=in_list(ids),
            output_fields=["id", "etag", "last_modified"],
            consistency_level="Strong",
        )
        return {r["id"]: IndexedState(r["etag"], int(r["last_modified"])) for r in rows}

    def get(self, ids: Sequence[str], with_vectors: bool = False) -> list[dict[str, Any]]:
        if not ids:
            return []
        fields = [*self.fields, "vector"] if with_vectors else self.fields
        return list(
            self.call("query", self.name, filter=in_list(ids), output_fields=fields, consistency_level="Strong")
        )

    def count(self) -> int:
        rows = self.call("query", self.name, filter="", output_fields=["count(*)"], consistency_level="Strong")
        return int(rows[0]["count(*)"]) if rows else 0

    def row_count(self) -> int:
        """The collection's row-count statistic: cheap at any size (no scan), but on Milvus it counts
        deleted rows until compaction drops them, so it can read high; ``count`` is exact."""
        stats = self.call("get_collection_stats", self.name)
        return int(stats.get("row_count", 0))

    def query(self, filter: str, fields: Sequence[str], limit: int | None = None) -> list[dict[str, Any]]:
        """Rows matching a Milvus ``filter`` (Strong), e.g. by ``indexed_at`` for the live panel."""
        kwargs: dict[str, Any] = {"filter": filter, "output_fields": list(fields), "consistency_level": "Strong"}
        if limit is not None:
            kwargs["limit"] = limit
        return list(self.call("query", self.name, **kwargs))

    def collections(self) -> list[str]:
        """Every collection on this Milvus server (to check that a private run left none behind)."""
        return list(self.call("list_collections"))

    def search(
        self,
        vectors: np.ndarray,
        k: int = 10,
        filter: str = "",
        collection: str | None = None,
        consistency: str = "Strong",
    ) -> list[list[Hit]]:
        """Nearest rows; ``collection`` pins the physical one (what ``follow`` returned beside the tag).

        ``consistency`` is Strong unless a user's search asks otherwise (``search_consistency``):
        decisions made from a search (near-duplicates) must see every write acknowledged so far."""
        k = max(1, min(int(k), 1000))
        params = {"metric_type": "IP", "params": {"ef": max(self.hnsw[2], k)} if self.index_type == "HNSW" else {}}
        result = self.call(
            "search",
            collection or self.name,
            data=np.asarray(vectors, dtype=np.float32).tolist(),
            limit=k,
            filter=filter,
            output_fields=[f for f in self.fields if f != "id"],
            search_params=params,
            consistency_level=consistency,
        )
        return [
            [Hit(id=str(h["id"]), score=float(h["distance"]), fields=dict(h.get("entity") or {})) for h in hits]
            for hits in result
        ]

    def call(self, method: str, *args: Any, **kwargs: Any) -> Any:
        """A client method by name, through ``lookalike.milvus.call`` (for ``Versions``)."""
        return self.conn.call(method, *args, **kwargs)


def count_rows(settings: Settings) -> int:
    """How many rows the collection ``settings`` names holds, on a connection of its own that is
    closed on the way out (for tools that count once: the bench, a reindex's summary)."""
    index = VectorIndex(settings)
    try:
        return index.count()
    finally:
        index.close()
