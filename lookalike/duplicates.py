"""Near-duplicate groups, read from the marks the worker writes (``duplicate_of``, ``duplicate_score``).

The worker records, in the same upsert as an object's vector, its nearest *other* object when their
cosine similarity reaches ``LOOKALIKE_DUPLICATE_THRESHOLD``. Each mark is an edge; a group is a
connected component of the edges whose score is at least the asked threshold (union-find), so a
chain of edited copies of one picture is one group. Reading groups therefore costs one filtered
query over marked rows, never a pairwise search over the whole index.

A query threshold below the worker's threshold finds nothing more: weaker pairs were never marked.

The threshold in force is per model family (``lookalike.families``): the configured one, else the
family's calibrated one. Which model counts is the index's (its alias target's tag), not the
configured one, since a reindex may have moved the index to another family; ``index_model`` asks.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from lookalike.errors import NotIndexed
from lookalike.events import split_id
from lookalike.families import duplicate_threshold
from lookalike.rows import ModelTag


@dataclass(frozen=True)
class DuplicateGroup:
    """Object keys (within the bucket) of one group, sorted; ``max_distance`` = 1 - lowest similarity."""

    keys: list[str]
    max_distance: float


class DuplicateRows(Protocol):
    """Marked rows under a key prefix (``lookalike.index.VectorIndex.duplicate_rows``)."""

    def duplicate_rows(self, prefix: str = "", min_score: float = 0.0) -> list[dict[str, Any]]: ...


class FollowsAlias(Protocol):
    """An index that resolves its alias to the target's collection and tag (``VectorIndex.follow``)."""

    def follow(self) -> tuple[str, ModelTag]: ...


def index_model(index: FollowsAlias | None, configured: str) -> str:
    """The model whose vectors the index holds (its alias target's tag); ``configured`` while nothing
    is indexed (``index`` None, or no target yet), since the first vectors will come from that one.
    Raises ``Unavailable`` while Milvus is down: a caller must not guess the family then."""
    if index is None:
        return configured
    try:
        return index.follow()[1].model
    except NotIndexed:  # no collection behind the alias yet
        return configured


def threshold_for(
    configured: float | None, index: Callable[[], FollowsAlias | None], configured_model: str
) -> tuple[float | None, str]:
    """The near-duplicate threshold in force and the model it is for: ``configured`` when set (Milvus
    is not asked then), else the calibrated one of the index's model family; None when that family
    has none. The one rule the API, ``lookalike duplicates`` and the dashboard share. Raises
    ``Unavailable`` while Milvus is down."""
    if configured is not None:
        return configured, configured_model
    model = index_model(index(), configured_model)
    return duplicate_threshold(None, model), model


def _key(oid: str) -> str:
    """The object key of a ``bucket/key`` id (an id without a bucket is taken as a key)."""
    return split_id(oid)[1] if "/" in oid else oid


def group_duplicates(rows: Iterable[Mapping[str, Any]], threshold: float) -> list[DuplicateGroup]:
    """Connected components of the ``id -> duplicate_of`` edges scoring >= ``threshold``.

    Deterministic: keys sorted within a group, groups sorted by their first key. ``max_distance`` is
    1 minus the lowest edge score in the group (cosine distance of its loosest recorded link).
    """
    parent: dict[str, str] = {}

    def find(x: str) -> str:
        parent.setdefault(x, x)
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    edges: list[tuple[str, str, float]] = []
    for r in rows:
        target = str(r.get("duplicate_of") or "")
        score = float(r.get("duplicate_score") or 0.0)
        if not target or score < threshold:
            continue
        a, b = _key(str(r["id"])), _key(target)
        if a == b:
            continue
        edges.append((a, b, score))
        ra, rb = find(a), find(b)
        if ra != rb:
            parent[max(ra, rb)] = min(ra, rb)
    members: dict[str, list[str]] = {}
    for k in parent:
        members.setdefault(find(k), []).append(k)
    lowest: dict[str, float] = {}
    for a, _, score in edges:
        root = find(a)
        lowest[root] = min(lowest.get(root, 1.0), score)
    groups = [
        DuplicateGroup(keys=sorted(ks), max_distance=round(max(0.0, 1.0 - lowest[root]), 6))
        for root, ks in members.items()
    ]
    return sorted(groups, key=lambda g: g.keys[0])


def encode_cursor(after: str) -> str:
    """An opaque cursor: the first key of the last group of the page (groups are sorted by it)."""
    return base64.urlsafe_b64encode(json.dumps({"after": after}).encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> str:
    """The key a cursor continues after; ``ValueError`` for anything this module did not make."""
    try:
        doc = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        after = doc["after"]
    except (binascii.Error, ValueError, KeyError, TypeError) as exc:
        raise ValueError("invalid cursor") from exc
    if not isinstance(after, str):
        raise ValueError("invalid cursor")
    return after


def find_groups(
    index: DuplicateRows, threshold: float, prefix: str = "", limit: int = 100, cursor: str | None = None
) -> tuple[list[DuplicateGroup], str | None]:
    """One page of groups with a key under ``prefix``, and the cursor of the next page (None: last).

    Marked rows under the prefix are read with their targets, so an original outside the prefix
    still appears in its copy's group. ``ValueError`` for a bad threshold, limit or cursor.
    """
    if not 0.0 <= threshold <= 1.0:
        raise ValueError("threshold must be between 0 and 1")
    if limit < 1:
        raise ValueError("limit must be at least 1")
    after = decode_cursor(cursor) if cursor else None
    groups = group_duplicates(index.duplicate_rows(prefix=prefix, min_score=threshold), threshold)
    if after is not None:
        groups = [g for g in groups if g.keys[0] > after]
    page = groups[:limit]
    more = len(groups) > limit
    return page, (encode_cursor(page[-1].keys[0]) if more and page else None)
