"""Near-duplicate marks in the write stage: nearest other, same-batch pairs, re-check on delete/overwrite."""

from __future__ import annotations

import numpy as np

from consumers.dedupe import Dedupe
from lookalike.index import IndexRow
from tests.unit.fakes import FakeIndex

T = 0.9


def unit(*xs: float) -> np.ndarray:
    v = np.asarray(xs, dtype=np.float32)
    return v / np.linalg.norm(v)


def row(oid: str, vec: np.ndarray, **kw: object) -> IndexRow:
    return IndexRow(oid, vec, "etag-" + oid, 1, "image/jpeg", 0, 0, **kw)  # type: ignore[arg-type]


A = unit(1, 0, 0)
A_COPY = unit(1, 0.1, 0)  # cosine 0.995 with A
A_FAR = unit(1, 1, 0)  # cosine 0.707 with A: same "class", not a copy
B = unit(0, 0, 1)


def write(index: FakeIndex, rows: list[IndexRow], deleted: tuple[str, ...] = ()) -> list[IndexRow]:
    out = Dedupe(index, T).mark(rows, list(deleted))
    index.upsert(out)
    index.delete(list(deleted))
    return out


def test_copy_of_an_indexed_object_is_marked_and_a_distinct_one_is_not() -> None:
    index = FakeIndex()
    write(index, [row("b/orig", A)])
    out = write(index, [row("b/copy", A_COPY), row("b/other", A_FAR)])
    assert out[0].duplicate_of == "b/orig" and out[0].duplicate_score > 0.99
    assert out[1].duplicate_of == "" and out[1].duplicate_score == 0.0


def test_nearest_other_never_is_the_object_itself() -> None:
    index = FakeIndex()
    write(index, [row("b/a", A)])
    again = write(index, [row("b/a", A)])  # re-indexed (e.g. overwritten with the same picture)
    assert again[0].duplicate_of == ""


def test_two_copies_in_one_batch_later_points_at_earlier() -> None:
    index = FakeIndex()
    out = write(index, [row("b/z-first", A), row("b/a-second", A_COPY)])
    assert out[0].duplicate_of == ""
    assert out[1].duplicate_of == "b/z-first"


def test_delete_of_the_original_clears_the_mark() -> None:
    index = FakeIndex()
    write(index, [row("b/orig", A)])
    write(index, [row("b/copy", A_COPY)])
    out = write(index, [], deleted=("b/orig",))
    assert [(r.id, r.duplicate_of) for r in out] == [("b/copy", "")]
    assert index.rows["b/copy"].duplicate_of == "" and "b/orig" not in index.rows


def test_delete_of_the_original_repoints_at_a_remaining_copy() -> None:
    index = FakeIndex()
    write(index, [row("b/orig", A)])
    write(index, [row("b/copy1", A_COPY)])
    write(index, [row("b/copy2", unit(1, 0.12, 0))])
    write(index, [], deleted=("b/orig",))
    assert index.rows["b/copy1"].duplicate_of == "b/copy2"
    assert index.rows["b/copy2"].duplicate_of == "b/copy1"


def test_overwrite_of_the_original_with_another_picture_clears_the_mark() -> None:
    index = FakeIndex()
    write(index, [row("b/orig", A)])
    write(index, [row("b/copy", A_COPY)])
    write(index, [row("b/orig", B)])  # same key, new bytes
    assert index.rows["b/copy"].duplicate_of == ""
    assert index.rows["b/orig"].duplicate_of == ""


def test_overwrite_of_the_original_with_a_near_copy_keeps_the_mark_on_the_new_version() -> None:
    index = FakeIndex()
    write(index, [row("b/orig", A)])
    write(index, [row("b/copy", A_COPY)])
    out = write(index, [row("b/orig", unit(1, 0.05, 0))])
    assert index.rows["b/copy"].duplicate_of == "b/orig"
    assert index.rows["b/orig"].duplicate_of == "b/copy"  # its nearest other is the copy now
    assert len(out) == 2  # the new version and the re-checked copy, in one upsert


def test_rechecked_row_keeps_its_indexed_time_and_vector() -> None:
    index = FakeIndex()
    write(index, [row("b/orig", A)])
    write(index, [row("b/copy", A_COPY, indexed_at=123)])
    write(index, [], deleted=("b/orig",))
    kept = index.rows["b/copy"]
    assert kept.indexed_at == 123 and np.allclose(kept.vector, A_COPY)


def test_collection_without_duplicate_fields_writes_rows_unchanged() -> None:
    index = FakeIndex()
    index.has_duplicates = False
    write(index, [row("b/orig", A)])
    out = write(index, [row("b/copy", A_COPY)])
    assert out[0].duplicate_of == ""
