"""The eval's measures on hand-made rankings, worked out by hand, plus dataset reading and ranking."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from infra.evaluation.dataset import EvalError, Item, judge, load_dataset
from infra.evaluation.in_memory import rank
from infra.evaluation.measures import Ranked, ap_at_k, ap_towhee, hit_at_1, hit_ratio, summarise

T, F = True, False


def test_hit_ratio_counts_relevant_slots_of_the_top_k() -> None:
    assert hit_ratio([T, F, T, F, F, F, F, F, F, T]) == pytest.approx(0.3)
    assert hit_ratio([T] * 12) == 1.0  # only the top 10 count
    assert hit_ratio([T, T, T], k=10) == pytest.approx(0.3)  # a short list: missing slots are misses
    assert hit_ratio([]) == 0.0
    with pytest.raises(ValueError):
        hit_ratio([T], k=0)


def test_towhee_ap_averages_precision_over_the_hits_found() -> None:
    # relevant at ranks 1, 3 and 6: precisions 1/1, 2/3, 3/6
    rel = [T, F, T, F, F, T, F, F, F, F]
    assert ap_towhee(rel) == pytest.approx((1 + 2 / 3 + 3 / 6) / 3)
    # one relevant hit at rank 1 is "perfect" for the tutorial's measure
    assert ap_towhee([T] + [F] * 9) == 1.0
    # a single hit at rank 4: precision 1/4, averaged over that one hit
    assert ap_towhee([F, F, F, T, F, F, F, F, F, F]) == pytest.approx(0.25)
    assert ap_towhee([F] * 10) == 0.0
    # hits below rank k are ignored
    assert ap_towhee([F] * 10 + [T], k=10) == 0.0


def test_standard_ap_is_normalised_by_min_of_k_and_relevant_in_gallery() -> None:
    rel = [T, F, T, F, F, T, F, F, F, F]
    total = 1 + 2 / 3 + 3 / 6
    assert ap_at_k(rel, n_relevant=10) == pytest.approx(total / 10)
    assert ap_at_k(rel, n_relevant=100) == pytest.approx(total / 10)  # capped at k
    assert ap_at_k(rel, n_relevant=3) == pytest.approx(total / 3)
    assert ap_at_k([T] + [F] * 9, n_relevant=10) == pytest.approx(0.1)  # missed relevant items count
    assert ap_at_k([T] * 10, n_relevant=10) == pytest.approx(1.0)
    assert ap_at_k([T, T, F], n_relevant=2) == pytest.approx(1.0)
    assert ap_at_k([F] * 10, n_relevant=10) == 0.0
    assert ap_at_k([F] * 10, n_relevant=0) == 0.0


def test_hit_at_1() -> None:
    assert hit_at_1([T, F]) == 1.0
    assert hit_at_1([F, T]) == 0.0
    assert hit_at_1([]) == 0.0


def test_summarise_averages_each_measure_over_queries() -> None:
    a = Ranked((T, T, F, F, F, F, F, F, F, F), n_relevant=10)  # HR .2, towhee 1, AP .2, hit 1
    b = Ranked((F, T, F, F, F, F, F, F, F, F), n_relevant=4)  # HR .1, towhee .5, AP .125, hit 0
    s = summarise([a, b])
    assert s.n_queries == 2
    assert s.mhr_at_10 == pytest.approx(0.15)
    assert s.map_at_10_towhee == pytest.approx(0.75)
    assert s.map_at_10 == pytest.approx((0.2 + 0.125) / 2)
    assert s.hit_at_1 == pytest.approx(0.5)
    with pytest.raises(ValueError):
        summarise([])


def test_judge_maps_keys_to_classes_and_unknown_keys_are_misses() -> None:
    labels = {"cat/1.jpg": "cat", "cat/2.jpg": "cat", "dog/1.jpg": "dog"}
    query = Item(Path("test/cat/q.jpg"), "cat/q.jpg", "cat")
    r = judge(["dog/1.jpg", "cat/2.jpg", "elsewhere.jpg", "cat/1.jpg"], query, labels, Counter(labels.values()))
    assert r.relevant == (F, T, F, T)
    assert r.n_relevant == 2


def test_rank_orders_by_inner_product_best_first() -> None:
    gallery = np.array([[1, 0], [0.6, 0.8], [0, 1], [-1, 0]], dtype=np.float32)
    assert rank(gallery, np.array([0, 1], dtype=np.float32), 3) == [2, 1, 0]
    assert rank(gallery, np.array([1, 0], dtype=np.float32), 10) == [0, 1, 2, 3]
    assert rank(np.zeros((0, 2), dtype=np.float32), np.array([1, 0]), 5) == []


def _touch(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"x")


def test_load_dataset_reads_class_folders_and_the_csv_overrides(tmp_path: Path) -> None:
    for name in ("train/cat/a.jpg", "train/cat/b.JPEG", "train/dog/c.png", "train/dog/notes.txt", "test/cat/q.jpg"):
        _touch(tmp_path / name)
    _touch(tmp_path / "train/loose.jpg")  # outside any class folder: ignored
    _touch(tmp_path / "train/.hidden/d.jpg")
    (tmp_path / "data.csv").write_text("id,path,label\n0,./train/cat/b.JPEG,lynx\n1,./train/dog/c.png,dog\n")
    ds = load_dataset(tmp_path)
    assert [(it.key, it.label) for it in ds.train] == [
        ("cat/a.jpg", "cat"),
        ("cat/b.JPEG", "lynx"),
        ("dog/c.png", "dog"),
    ]
    assert [(it.key, it.label) for it in ds.test] == [("cat/q.jpg", "cat")]
    assert ds.relevant_counts() == Counter({"cat": 1, "lynx": 1, "dog": 1})


def test_load_dataset_refuses_another_layout(tmp_path: Path) -> None:
    _touch(tmp_path / "train/cat/a.jpg")
    with pytest.raises(EvalError, match="test/"):
        load_dataset(tmp_path)
    _touch(tmp_path / "test/q.jpg")  # a query outside a class folder has no class
    with pytest.raises(EvalError, match="0 test"):
        load_dataset(tmp_path)
