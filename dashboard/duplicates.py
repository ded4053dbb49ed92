"""The Duplicates tab and the search results' badge, free of Streamlit.

Groups come from ``lookalike.duplicates.find_groups`` (the marks the workers write beside each
vector, joined into connected groups), a page at a time: the tab shows ``limit`` groups and walks on
with the cursor each page hands back. Cursors only go forward, so ``Pages`` keeps the ones already
used and "Previous" goes back along them. Each page's rows are read once more by id for their etags,
which key the thumbnail cache (an overwritten object gets a new thumbnail).

The slider starts at the threshold in force: LOOKALIKE_DUPLICATE_THRESHOLD, else the one calibrated
for the index's model family (``threshold_in_force``). A family with none (a CLIP model not yet
calibrated) gets one line saying so instead of a slider whose start would be a guess.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, MutableMapping
from dataclasses import dataclass, field
from typing import Any

from dashboard.health import LABELS as SERVICE_LABELS
from lookalike.duplicates import find_groups, threshold_for
from lookalike.errors import LookalikeError, ModelMismatch, NotIndexed, Unavailable
from lookalike.events import split_id
from lookalike.families import duplicate_threshold
from lookalike.index import VectorIndex
from lookalike.search import Neighbour
from lookalike.settings import Settings

log = logging.getLogger(__name__)

PAGE_SIZES = (1, 5, 10, 20, 50)
STATE_KEY = "duplicate_pages"


@dataclass(frozen=True)
class Member:
    """One object of a group; ``etag`` is empty when it was deleted after the group was read."""

    key: str
    etag: str = ""
    duplicate_of: str = ""  # the key it was marked a copy of ("" for an original)


@dataclass(frozen=True)
class GroupView:
    members: list[Member]
    max_distance: float

    @property
    def keys(self) -> list[str]:
        return [m.key for m in self.members]

    def caption(self) -> str:
        return (
            f"{len(self.members)} images · max distance {self.max_distance:.4f} "
            f"(cosine similarity ≥ {1 - self.max_distance:.4f})"
        )


@dataclass(frozen=True)
class DuplicatesPage:
    groups: list[GroupView] = field(default_factory=list)
    next_cursor: str | None = None
    error: str | None = None


def load_page(
    index: Callable[[], VectorIndex],
    bucket: str,
    threshold: float,
    prefix: str = "",
    limit: int = 10,
    cursor: str | None = None,
) -> DuplicatesPage:
    """One page of groups with their members' etags; any failure becomes ``error``, a sentence.

    ``index`` is called here, inside the guard, so a Milvus outage while connecting is reported like
    one during the query.
    """
    try:
        idx = index()
        groups, next_cursor = find_groups(idx, threshold, prefix=prefix, limit=limit, cursor=cursor)
        ids = [f"{bucket}/{k}" for g in groups for k in g.keys]
        rows = {str(r["id"]): r for r in idx.get(ids)}
    except ValueError as exc:  # a threshold, limit or cursor find_groups refuses
        return DuplicatesPage(error=f"Cannot list duplicates: {exc}.")
    except Exception as exc:
        return DuplicatesPage(error=friendly_error(exc))
    views = []
    for g in groups:
        members = []
        for key in g.keys:
            row = rows.get(f"{bucket}/{key}") or {}
            original = str(row.get("duplicate_of") or "")
            members.append(Member(key, str(row.get("etag") or ""), _key_in(bucket, original) if original else ""))
        views.append(GroupView(members, g.max_distance))
    return DuplicatesPage(views, next_cursor)


def threshold_in_force(settings: Settings, index: Callable[[], VectorIndex]) -> tuple[float | None, str]:
    """The threshold in force and the model it is for: the index's model (its alias target), or the
    configured one while nothing is indexed or Milvus cannot say (the page then reports that itself).
    Milvus is asked only when LOOKALIKE_DUPLICATE_THRESHOLD is unset."""
    try:
        return threshold_for(settings.duplicate_threshold, index, settings.model)
    except LookalikeError:  # down, or no collection yet: load_page says which
        return duplicate_threshold(None, settings.model), settings.model


def friendly_error(exc: BaseException) -> str:
    if isinstance(exc, Unavailable):
        label = SERVICE_LABELS.get(exc.service, exc.service)
        return f"Duplicates are unavailable right now: the {label} is not reachable. Try again once it is back."
    if isinstance(exc, ModelMismatch):
        if isinstance(exc, NotIndexed):
            return "The index is empty: nothing has been indexed yet, so there are no duplicates."
        return f"The index cannot be read with this model: {exc}"
    log.exception("listing duplicates failed")
    return f"Listing duplicates failed unexpectedly ({type(exc).__name__}); the dashboard log has the details."


@dataclass
class Pages:
    """The cursors of the pages seen for one query (threshold, prefix, page size): ``cursors[i]``
    loads page ``i + 1``. A new query starts again at page 1."""

    query: tuple[float, str, int]
    cursors: list[str | None] = field(default_factory=lambda: [None])

    @property
    def number(self) -> int:
        return len(self.cursors)

    @property
    def cursor(self) -> str | None:
        return self.cursors[-1]

    def forward(self, next_cursor: str) -> None:
        self.cursors.append(next_cursor)

    def back(self) -> None:
        if len(self.cursors) > 1:
            self.cursors.pop()


def pages_for(state: MutableMapping[Any, Any], threshold: float, prefix: str, limit: int) -> Pages:
    """The pager kept in ``state`` (Streamlit's session state) for this query, reset when it changes."""
    query = (round(float(threshold), 4), prefix, int(limit))
    pages = state.get(STATE_KEY)
    if not isinstance(pages, Pages) or pages.query != query:
        pages = Pages(query)
        state[STATE_KEY] = pages
    return pages


def badge(n: Neighbour) -> str | None:
    """ "duplicate of <key>" for a search result the workers marked as a near-copy; else ``None``."""
    if not n.duplicate_of:
        return None
    return f"duplicate of {_key_in(n.bucket, n.duplicate_of)}"


def _key_in(bucket: str, oid: str) -> str:
    """The key of ``bucket/key`` within ``bucket``; the whole id when it is in another bucket."""
    if "/" not in oid:
        return oid
    other, key = split_id(oid)
    return key if other == bucket else oid


def open_index(settings: Settings) -> VectorIndex:
    """The collection, opened with the model tag it records: listing groups needs no model loaded.

    Raises ``ModelMismatch`` while nothing has been indexed (no collection) or for a collection
    lookalike did not make, and ``Unavailable`` while Milvus is down.
    """
    index = VectorIndex(settings)
    try:
        tag = index.stored_tag()
        if tag is None:
            if not index.exists():
                raise NotIndexed(f"collection {settings.collection!r} does not exist yet")
            raise ModelMismatch(f"collection {settings.collection!r} was not made by lookalike")
        index.open(tag, create=False)
    except BaseException:
        index.close()
        raise
    return index
