"""dashboard.duplicates: the badge, the pager, a page of groups (fake index, then the real pipeline)."""

from __future__ import annotations

from typing import Any

import pytest

from dashboard import duplicates
from dashboard.duplicates import GroupView, Member, Pages, pages_for
from lookalike.errors import ModelMismatch, NotIndexed, Unavailable
from lookalike.search import Neighbour


def _neighbour(oid: str, duplicate_of: str = "") -> Neighbour:
    return Neighbour(
        oid, *oid.split("/", 1), 0.9, "e", 1, "image/jpeg", 0, 0, duplicate_of, 0.95 if duplicate_of else 0
    )


# ---------------------------------------------------------------- badge
def test_badge_names_the_original_by_key_within_the_bucket() -> None:
    assert duplicates.badge(_neighbour("images/a/copy.jpg", "images/a/orig.jpg")) == "duplicate of a/orig.jpg"
    assert duplicates.badge(_neighbour("images/copy.jpg", "other/orig.jpg")) == "duplicate of other/orig.jpg"
    assert duplicates.badge(_neighbour("images/orig.jpg")) is None


# ---------------------------------------------------------------- pager
def test_pages_walk_forward_and_back_along_the_cursors_seen() -> None:
    pages = Pages((0.9, "", 5))
    assert (pages.number, pages.cursor) == (1, None)
    pages.forward("c2")
    pages.forward("c3")
    assert (pages.number, pages.cursor) == (3, "c3")
    pages.back()
    assert (pages.number, pages.cursor) == (2, "c2")
    pages.back()
    pages.back()  # never before the first page
    assert (pages.number, pages.cursor) == (1, None)


def test_pager_is_kept_per_query_and_restarts_when_the_query_changes() -> None:
    state: dict[str, Any] = {}
    pages = pages_for(state, 0.9, "a/", 5)
    pages.forward("c2")
    assert pages_for(state, 0.9, "a/", 5) is pages and pages.cursor == "c2"
    for changed in ((0.95, "a/", 5), (0.9, "b/", 5), (0.9, "a/", 10)):
        fresh = pages_for(state, *changed)
        assert fresh.number == 1 and fresh.cursor is None, changed
        fresh.forward("x")


# ---------------------------------------------------------------- a page, on a fake index
class FakeIndex:
    """``duplicate_rows`` and ``get`` of ``VectorIndex`` over rows in memory."""

    def __init__(self, rows: list[dict[str, Any]]) -> None:
        self.rows = {r["id"]: r for r in rows}

    def duplicate_rows(self, prefix: str = "", min_score: float = 0.0) -> list[dict[str, Any]]:
        return [
            r
            for r in self.rows.values()
            if r.get("duplicate_of") and r["duplicate_score"] >= min_score and r["id"].startswith(f"b/{prefix}")
        ]

    def get(self, ids: list[str], with_vectors: bool = False) -> list[dict[str, Any]]:
        return [self.rows[i] for i in ids if i in self.rows]


def _row(key: str, original: str = "", score: float = 0.0) -> dict[str, Any]:
    return {
        "id": f"b/{key}",
        "etag": f"etag-{key}",
        "duplicate_of": f"b/{original}" if original else "",
        "duplicate_score": score,
    }


ROWS = [
    _row("a1"),
    _row("a2", "a1", 0.97),
    _row("a3", "a2", 0.93),
    _row("b1"),
    _row("b2", "b1", 0.99),
    _row("c1"),
]


def test_a_page_holds_groups_with_etags_and_originals_and_a_cursor_to_the_next() -> None:
    index = FakeIndex(ROWS)
    first = duplicates.load_page(lambda: index, "b", 0.9, limit=1)  # type: ignore[arg-type,return-value]
    assert first.error is None and first.next_cursor is not None
    assert first.groups == [
        GroupView(
            [Member("a1", "etag-a1"), Member("a2", "etag-a2", "a1"), Member("a3", "etag-a3", "a2")],
            pytest.approx(0.07),  # type: ignore[arg-type]
        )
    ]
    assert first.groups[0].caption() == "3 images · max distance 0.0700 (cosine similarity ≥ 0.9300)"
    second = duplicates.load_page(lambda: index, "b", 0.9, limit=1, cursor=first.next_cursor)  # type: ignore[arg-type,return-value]
    assert [g.keys for g in second.groups] == [["b1", "b2"]] and second.next_cursor is None
    # a higher threshold drops the loose link: a3 leaves its group
    strict = duplicates.load_page(lambda: index, "b", 0.95, limit=10)  # type: ignore[arg-type,return-value]
    assert [g.keys for g in strict.groups] == [["a1", "a2"], ["b1", "b2"]]


def test_a_member_deleted_since_the_marks_were_read_has_no_etag() -> None:
    index = FakeIndex(ROWS)
    index.get = lambda ids, with_vectors=False: [r for r in ROWS if r["id"] in ids and r["id"] != "b/b1"]  # type: ignore[method-assign]
    page = duplicates.load_page(lambda: index, "b", 0.9, prefix="b")  # type: ignore[arg-type,return-value]
    assert page.groups[0].members == [Member("b1"), Member("b2", "etag-b2", "b1")]


@pytest.mark.parametrize(
    ("failure", "phrase"),
    [
        (Unavailable("milvus", "connection refused"), "the Milvus vector index is not reachable"),
        (NotIndexed("collection 'x' does not exist yet"), "nothing has been indexed yet"),
        (ModelMismatch("collection 'x' holds vectors of model resnet50"), "cannot be read with this model"),
        (RuntimeError("boom"), "failed unexpectedly (RuntimeError)"),
    ],
)
def test_failures_become_a_sentence(failure: Exception, phrase: str) -> None:
    def index() -> FakeIndex:
        raise failure

    page = duplicates.load_page(index, "b", 0.9)  # type: ignore[arg-type]
    assert page.groups == [] and page.error is not None and phrase in page.error


def test_a_bad_cursor_or_threshold_is_a_sentence_too() -> None:
    index = FakeIndex(ROWS)
    assert "invalid cursor" in (duplicates.load_page(lambda: index, "b", 0.9, cursor="!!").error or "")  # type: ignore[arg-type,return-value]
    assert "threshold" in (duplicates.load_page(lambda: index, "b", 1.5).error or "")  # type: ignore[arg-type,return-value]


# ---------------------------------------------------------------- the real pipeline
@pytest.mark.integration
def test_the_workers_marks_make_the_groups_of_edited_copies(duplicated) -> None:  # type: ignore[no-untyped-def]
    pipeline, sample = duplicated
    s = pipeline.settings
    index = duplicates.open_index(s)
    try:
        page = duplicates.load_page(lambda: index, s.bucket, s.duplicate_threshold)
        assert page.error is None and page.next_cursor is None
        assert [g.keys for g in page.groups] == sample.groups()
        for group in page.groups:
            assert all(m.etag for m in group.members)
            marked = {m.key: m.duplicate_of for m in group.members if m.duplicate_of}
            assert marked == {c: o for c, o in sample.copies.items() if c in group.keys}
            assert 0 < group.max_distance <= 1 - s.duplicate_threshold
        only = duplicates.load_page(lambda: index, s.bucket, s.duplicate_threshold, prefix="brain_coral/")
        assert [g.keys for g in only.groups] == [g for g in sample.groups() if g[0].startswith("brain_coral/")]
        paged = duplicates.load_page(lambda: index, s.bucket, s.duplicate_threshold, limit=1)
        rest = duplicates.load_page(lambda: index, s.bucket, s.duplicate_threshold, limit=1, cursor=paged.next_cursor)
        assert [g.keys for g in paged.groups + rest.groups] == sample.groups() and rest.next_cursor is None
        assert duplicates.load_page(lambda: index, s.bucket, 0.9999).groups == []
    finally:
        index.close()


@pytest.mark.integration
def test_opening_a_collection_that_does_not_exist_says_so(servers: dict[str, str]) -> None:
    from tests.conftest import make_settings

    with pytest.raises(NotIndexed, match="does not exist yet"):
        duplicates.open_index(make_settings(servers))
    page = duplicates.load_page(lambda: duplicates.open_index(make_settings(servers)), "b", 0.9)
    assert page.error is not None and "nothing has been indexed yet" in page.error
