"""Queries over the index's rows that are built from its primitives: ordered scans and duplicate marks.

Kept apart from ``index.py`` so that file stays about one collection's lifecycle, writes and searches;
everything here is expressed through ``query`` and ``search`` and the filter builders, so it works
the same through an alias, on Milvus Lite and on a Milvus server.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np

from lookalike.filters import in_list, key_prefix, literal
from lookalike.rows import DUPLICATE_FIELDS, Hit, IndexRow


class RowQueries:
    """Mixin for ``VectorIndex``: needs ``query``, ``search``, ``fields``, ``has_duplicates`` and ``bucket``."""

    bucket: str
    has_duplicates: bool

    @property
    def fields(self) -> list[str]:
        raise NotImplementedError

    def query(self, filter: str, fields: Sequence[str], limit: int | None = None) -> list[dict[str, Any]]:
        raise NotImplementedError

    def search(
        self, vectors: np.ndarray, k: int = 10, filter: str = "", collection: str | None = None, consistency: str = ""
    ) -> list[list[Hit]]:
        raise NotImplementedError

    def iter_rows(
        self,
        fields: Sequence[str] = ("id", "etag"),
        batch: int = 1000,
        lo: str | None = None,
        hi: str | None = None,
        where: str = "",
    ) -> Iterator[dict[str, Any]]:
        """Rows with ``lo <= id < hi`` (None: unbounded), in id order, at most ``batch`` per query.

        Milvus (Lite above all) returns a limited query in no particular order, and pymilvus'
        query_iterator does not escape string keys; so a range that comes back full is split at the
        median of what it returned, lower half first, until each range fits in one page, which is
        sorted here. Memory holds one page and the pending range bounds, whatever the collection.
        """
        out = list(dict.fromkeys(["id", *fields]))
        ranges: list[tuple[str | None, str | None]] = [(lo, hi)]
        while ranges:
            lo, hi = ranges.pop()
            terms = []
            if lo is not None:
                terms.append(f"id >= {literal(lo)}")
            if hi is not None:
                terms.append(f"id < {literal(hi)}")
            if where:
                terms.append(f"({where})")
            page = self.query(" && ".join(terms), out, limit=batch + 1)
            if len(page) <= batch:
                yield from sorted(page, key=lambda r: str(r["id"]))
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
        where = f"not ({in_list(exclude)})" if exclude else ""
        hits = self.search(np.asarray(vectors), k=1, filter=where)
        return [(h[0].id, h[0].score) if h else None for h in hits]

    def marked_as_copies_of(self, ids: Sequence[str], limit: int = 16384) -> list[IndexRow]:
        """Rows (with vectors) whose ``duplicate_of`` is one of ``ids``: to re-check when those change."""
        if not ids or not self.has_duplicates:
            return []
        rows = self.query(in_list(ids, field="duplicate_of"), [*self.fields, "vector"], limit=limit)
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
