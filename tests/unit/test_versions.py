"""Versioned collections: names, the settings a collection's tag implies, the build's progress file."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from lookalike.errors import ModelMismatch
from lookalike.migration import clear_migration, migration_path, read_migration, write_migration
from lookalike.rows import ModelTag
from lookalike.settings import Settings
from lookalike.versions import is_physical, physical_name, settings_for_tag, version_of


def _settings(tmp_path: Path, **kw: object) -> Settings:
    return Settings(_env_file=None, state_dir=tmp_path, **kw)  # type: ignore[arg-type]


def test_physical_names_carry_their_version() -> None:
    assert physical_name("lookalike_images", 3) == "lookalike_images__v3"
    assert version_of("lookalike_images__v12") == 12
    assert version_of("lookalike_images") is None
    assert version_of("a__vx") is None
    assert is_physical("x__v1") and not is_physical("x_v1")


def test_settings_for_tag_rebuild_the_model_the_collection_records(tmp_path: Path) -> None:
    base = _settings(tmp_path, model="mobilenetv2_100", weights=tmp_path / "mine.pth")
    random = settings_for_tag(base, ModelTag("resnet18", "random-init:seed0", 512))
    assert (random.model, random.weights, random.pretrained) == ("resnet18", None, False)
    hub = settings_for_tag(base, ModelTag("resnet50", "timm-pretrained+onnx", 2048))
    assert (hub.model, hub.weights, hub.pretrained) == ("resnet50", None, True)
    own = settings_for_tag(base, ModelTag("mobilenetv2_100", "file:mine.pth:abc", 1280))
    assert own.weights == tmp_path / "mine.pth"
    recorded = settings_for_tag(base, ModelTag("convnext", "file:other.pth:def", 768), str(tmp_path / "other.pth"))
    assert recorded.weights == tmp_path / "other.pth" and recorded.model == "convnext"
    with pytest.raises(ModelMismatch, match="path is unknown"):
        settings_for_tag(base, ModelTag("convnext", "file:other.pth:def", 768))


def test_migration_progress_is_read_only_while_its_builder_lives(tmp_path: Path) -> None:
    settings = _settings(tmp_path, collection="imgs")
    assert read_migration(settings) is None
    progress = {"target": "imgs__v2", "model": "resnet18", "done": 3, "total": 9, "lag": 0}
    write_migration(settings, {**progress, "pid": os.getpid()})
    assert migration_path(settings).name == "migration-imgs.json"
    assert read_migration(settings) == {**progress, "pid": os.getpid()}
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    write_migration(settings, {**progress, "pid": dead.pid})
    assert read_migration(settings) is None  # a killed build leaves its file: not a running one
    write_migration(settings, {**progress, "pid": 0})
    assert read_migration(settings) is None
    clear_migration(settings)
    assert not migration_path(settings).exists()
