from __future__ import annotations

from pathlib import Path

import pytest

from producers.upload import plan_upload


def test_keys_are_relative_to_the_folder_given_under_the_prefix(tmp_path: Path) -> None:
    (tmp_path / "train" / "cat").mkdir(parents=True)
    (tmp_path / "train" / "cat" / "1.JPEG").write_bytes(b"x")
    (tmp_path / "train" / "dog.png").write_bytes(b"x")
    (tmp_path / "train" / ".hidden").write_bytes(b"x")
    (tmp_path / "single.webp").write_bytes(b"x")
    items = plan_upload([tmp_path / "train", tmp_path / "single.webp"], prefix="/pets/")
    assert [(i.key, i.content_type) for i in items] == [
        ("pets/cat/1.JPEG", "image/jpeg"),
        ("pets/dog.png", "image/png"),
        ("pets/single.webp", "image/webp"),
    ]
    assert [i.key for i in plan_upload([tmp_path / "train"])] == ["cat/1.JPEG", "dog.png"]


def test_missing_path_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="nope"):
        plan_upload([tmp_path / "nope"])
