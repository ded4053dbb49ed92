"""Grouping near-duplicate marks into groups, and paging through them with a cursor."""

from __future__ import annotations

from typing import Any

import pytest

from lookalike.duplicates import DuplicateGroup, decode_cursor, find_groups, group_duplicates


def mark(oid: str, target: str, score: float) -> dict[str, Any]:
    return {"id": oid, "duplicate_of": target, "duplicate_score": score}


ROWS = [
    mark("b/c", "b/a", 0.97),
    mark("b/d", "b/c", 0.93),  # chain: a - c - d is one group
    mark("b/y", "b/x", 0.99),
    mark("b/q", "b/p", 0.5),  # below the threshold
    mark("b/n", "", 0.0),
]


class Rows:
    def __init__(self, rows: list[dict[str, Any]]) -> None:
        self.rows = rows
        self.asked: list[tuple[str, float]] = []

    def duplicate_rows(self, prefix: str = "", min_score: float = 0.0) -> list[dict[str, Any]]:
        self.asked.append((prefix, min_score))
        return [r for r in self.rows if r["duplicate_score"] >= min_score]


def test_groups_are_connected_components_sorted() -> None:
    groups = group_duplicates(ROWS, 0.9)
    assert groups == [DuplicateGroup(["a", "c", "d"], 0.07), DuplicateGroup(["x", "y"], 0.01)]


def test_threshold_cuts_weaker_links() -> None:
    groups = group_duplicates(ROWS, 0.95)
    assert [g.keys for g in groups] == [["a", "c"], ["x", "y"]]


def test_order_does_not_depend_on_input_order() -> None:
    assert group_duplicates(list(reversed(ROWS)), 0.9) == group_duplicates(ROWS, 0.9)


def test_pages_follow_the_cursor_to_the_end() -> None:
    rows = Rows([mark(f"b/k{i:02d}", f"b/o{i:02d}", 0.95) for i in range(5)])
    seen: list[list[str]] = []
    cursor = None
    while True:
        page, cursor = find_groups(rows, 0.9, prefix="k", limit=2, cursor=cursor)
        seen.extend(g.keys for g in page)
        assert len(page) <= 2
        if cursor is None:
            break
    assert seen == [[f"k{i:02d}", f"o{i:02d}"] for i in range(5)]
    assert rows.asked[0] == ("k", 0.9)


def test_bad_cursor_threshold_and_limit_are_value_errors() -> None:
    rows = Rows(ROWS)
    for kwargs in ({"cursor": "not-a-cursor"}, {"threshold": 1.5}, {"limit": 0}):
        args: dict[str, Any] = {"threshold": 0.9, **kwargs}
        with pytest.raises(ValueError):
            find_groups(rows, **args)
    with pytest.raises(ValueError):
        decode_cursor("eyJ4IjogMX0")  # valid base64 JSON, but not ours
