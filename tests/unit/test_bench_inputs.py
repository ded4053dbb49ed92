"""The bench's inputs and memory reading: which files, which keys when images repeat, VmHWM from /proc."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from infra.bench.images import image_files, spread
from infra.bench.memory import peak_rss_mb
from infra.bench.options import BenchOptions, default_images


def _tree(root: Path) -> None:
    (root / "cats").mkdir(parents=True)
    (root / "cats" / "a.jpg").write_bytes(b"A")
    (root / "cats" / "b.PNG").write_bytes(b"B")
    (root / "cats" / "notes.txt").write_bytes(b"not an image")
    (root / ".hidden").mkdir()
    (root / ".hidden" / "c.jpg").write_bytes(b"C")


def test_image_files_are_sorted_images_only(tmp_path: Path) -> None:
    _tree(tmp_path)
    assert [p.relative_to(tmp_path).as_posix() for p in image_files(tmp_path)] == ["cats/a.jpg", "cats/b.PNG"]
    with pytest.raises(FileNotFoundError):
        image_files(tmp_path / "missing")


def test_spread_repeats_files_under_distinct_keys(tmp_path: Path) -> None:
    _tree(tmp_path)
    images = spread(image_files(tmp_path), 5, tmp_path, "ingest")
    assert [im.key for im in images] == [
        "ingest/cats/a.jpg",
        "ingest/cats/b.PNG",
        "ingest/cats/a-r1.jpg",
        "ingest/cats/b-r1.PNG",
        "ingest/cats/a-r2.jpg",
    ]
    assert [im.data for im in images] == [b"A", b"B", b"A", b"B", b"A"]
    assert images[1].content_type == "image/png" and images[0].content_type == "image/jpeg"
    assert len({im.key for im in spread(image_files(tmp_path), 50, tmp_path, "x")}) == 50
    with pytest.raises(FileNotFoundError):
        spread([], 3, tmp_path, "x")


def test_query_root_prefers_the_sibling_test_folder(tmp_path: Path) -> None:
    (tmp_path / "train").mkdir()
    assert BenchOptions(images=tmp_path / "train").query_root() == tmp_path / "train"
    (tmp_path / "test").mkdir()
    assert BenchOptions(images=tmp_path / "train").query_root() == tmp_path / "test"
    assert BenchOptions(images=tmp_path / "train", query_images=tmp_path).query_root() == tmp_path
    assert default_images().parts[-3:] == ("datasets", "reverse_image_search", "train")


def test_peak_rss_of_this_process() -> None:
    mb = peak_rss_mb(os.getpid())
    assert mb is not None and 5 < mb < 100_000
    assert peak_rss_mb(2**22 + 12345) is None  # above the kernel's pid limit: no such process
