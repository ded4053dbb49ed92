"""``lookalike.filters``: the arithmetic on its own, then every expression against a real Milvus Lite."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from typing import Any

import numpy as np
import pytest

from lookalike import filters

ODD_KEYS = [
    "a_b/1.jpg",
    "aXb/2.jpg",
    "a_b",
    "100%/3.jpg",
    "100abc/4.jpg",
    'q"uote/5.jpg',
    "q'uote/5b.jpg",
    "back\\slash/6.jpg",
    "backXslash/7.jpg",
    "ü/8.jpg",
    "u/9.jpg",
    "\U0001f600/10.jpg",
    "\ud7ff/11.jpg",
    "\ue000/12.jpg",
    "space dir/13.jpg",
    "nested/deeper/14.jpg",
]
PREFIXES = ["", "a_b/", "a_b", "a%", "%", "_", "100%/", 'q"', "q'", "back\\slash/", "back\\", "ü", "\U0001f600"]
PREFIXES += ["\ud7ff", "space ", "nested/deeper/"]


def test_upper_bound_is_the_next_string_after_every_extension() -> None:
    assert filters.prefix_upper_bound("b/abc") == "b/abd"
    assert filters.prefix_upper_bound("b/a\U0010ffff") == "b/b"  # carries past the last code point
    assert filters.prefix_upper_bound("\U0010ffff\U0010ffff") is None
    assert filters.prefix_upper_bound("") is None
    assert filters.prefix_upper_bound("b/\ud7ff") == "b/\ue000"  # skips the surrogates (not UTF-8)


def test_expressions_are_quoted_literals() -> None:
    assert filters.key_prefix("b", 'x"y\\') == 'id >= "b/x\\"y\\\\" && id < "b/x\\"y]"'
    assert filters.not_id('b/"k"') == 'id != "b/\\"k\\""'
    moment = datetime(2026, 12, 1, 12, 0, tzinfo=timezone.utc)
    ms = 1796126400000
    assert filters.to_ms(moment) == ms == filters.to_ms(moment.replace(tzinfo=None))  # no zone: UTC
    assert filters.to_ms(moment.astimezone(timezone(timedelta(hours=5)))) == ms
    assert filters.uploaded_between(moment, None) == f"event_time >= {ms}"
    assert filters.uploaded_between(None, moment) == f"event_time <= {ms}"
    assert filters.uploaded_between() == ""
    assert filters.all_of(["a == 1", "", "b == 2"]) == "(a == 1) && (b == 2)"
    assert filters.all_of(["", ""]) == ""


@pytest.fixture()
def odd_index(servers: dict[str, str]) -> Iterator[Any]:
    """A collection of synthetic 4-d vectors under awkward keys, two buckets, event times 1000 ms apart."""
    from lookalike.index import VectorIndex
    from lookalike.rows import IndexRow, ModelTag
    from tests.conftest import make_settings

    index = VectorIndex(make_settings(servers))
    try:
        index.open(ModelTag("filters-test", "none", 4))
        rows = [
            IndexRow(f"{bucket}/{key}", np.eye(4, dtype=np.float32)[i % 4], "e", 1, "image/jpeg", 1000 * (i + 1), 0)
            for bucket in ("b", "b2")
            for i, key in enumerate(ODD_KEYS)
        ]
        index.upsert(rows)
        yield index
    finally:
        index.drop()
        index.close()


@pytest.mark.integration
def test_every_expression_selects_exactly_what_it_says_on_milvus_lite(odd_index: Any) -> None:
    def found(expr: str) -> set[str]:
        hits = odd_index.search(np.ones((1, 4), dtype=np.float32), 100, filter=expr)[0]
        return {h.id for h in hits}

    for prefix in PREFIXES:
        expected = {f"b/{k}" for k in ODD_KEYS if k.startswith(prefix)}
        assert found(filters.key_prefix("b", prefix)) == expected, prefix
    assert found(filters.key_prefix("b2", "a_b")) == {"b2/a_b/1.jpg", "b2/a_b"}

    t = {k: 1000 * (i + 1) for i, k in enumerate(ODD_KEYS)}
    since = datetime.fromtimestamp(5.0, tz=timezone.utc)
    until = datetime.fromtimestamp(9.0, tz=timezone.utc)
    window = filters.all_of([filters.key_prefix("b"), filters.uploaded_between(since, until)])
    assert found(window) == {f"b/{k}" for k, ms in t.items() if 5000 <= ms <= 9000}
    left_out = filters.all_of([filters.key_prefix("b", "q"), filters.not_id('b/q"uote/5.jpg')])
    assert found(left_out) == {"b/q'uote/5b.jpg"}
