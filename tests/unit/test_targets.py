"""Weights follow the index's target (``lookalike.targets``), and a swap whose workers fail goes back
(``infra.reindex.switch``): which file a tag names, what a worker refuses, what children inherit."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from infra.local.parts import Part, StackError
from infra.reindex import switch
from infra.reindex.build import new_settings
from lookalike.embedder import file_tag
from lookalike.errors import ModelMismatch
from lookalike.rows import ModelTag
from lookalike.settings import Settings
from lookalike.targets import check_configured, find_weights, settings_for_target
from lookalike.versions import WEIGHTS_PATH_PROPERTY, Target


def _file(path: Path, content: bytes = b"weights") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content)
    return path


def _target(tag: ModelTag, collection: str = "c__v2", **props: str) -> Target:
    return Target("c", collection, tag, dict(props))


def test_a_file_tag_is_found_where_recorded_then_in_the_settings_then_in_the_weights_dirs(tmp_path: Path) -> None:
    ckpt = _file(tmp_path / "a" / "m.pth")
    tag = file_tag(ckpt)
    copy = _file(tmp_path / "b" / "m.pth")
    bare = Settings(_env_file=None)
    assert find_weights(bare, tag, str(ckpt)) == ckpt.resolve()
    assert find_weights(bare.model_copy(update={"weights": copy}), tag + "+onnx") == copy.resolve()
    assert find_weights(bare.model_copy(update={"weights_dirs": [tmp_path / "x", copy.parent]}), tag) == copy.resolve()


def test_a_file_of_the_same_name_but_other_content_is_not_the_tags(tmp_path: Path) -> None:
    tag = file_tag(_file(tmp_path / "a" / "m.pth"))
    other = _file(tmp_path / "b" / "m.pth", b"retrained")
    settings = Settings(_env_file=None, weights=other, weights_dirs=[str(other.parent)])
    with pytest.raises(ModelMismatch, match="LOOKALIKE_WEIGHTS_DIRS") as caught:
        find_weights(settings, tag, str(tmp_path / "gone" / "m.pth"))
    assert str(other) in str(caught.value) and tag in str(caught.value)


def test_settings_for_target_take_model_and_weights_from_the_tag_not_the_configuration(tmp_path: Path) -> None:
    stale = Settings(_env_file=None, model="mobilenetv2_100", weights=_file(tmp_path / "old.pth", b"old"))
    random = settings_for_target(stale, _target(ModelTag("resnet18", "random-init:seed0", 512)))
    assert (random.model, random.weights, random.pretrained) == ("resnet18", None, False)
    ckpt = _file(tmp_path / "new.pth")
    recorded = _target(ModelTag("resnet18", file_tag(ckpt), 512), **{WEIGHTS_PATH_PROPERTY: str(ckpt)})
    assert settings_for_target(stale, recorded).weights == ckpt.resolve()
    assert random.as_env()["LOOKALIKE_WEIGHTS"] == ""  # a restarted worker's env: the stale file cannot leak in


def test_a_worker_configured_against_the_target_is_refused_with_both_named(tmp_path: Path) -> None:
    ckpt = _file(tmp_path / "mobilenet.pth")
    configured = Settings(_env_file=None, model="resnet18", weights=ckpt)
    with pytest.raises(ModelMismatch) as caught:
        check_configured(configured, _target(ModelTag("resnet18", "random-init:seed0", 512)))
    said = str(caught.value)
    assert f"model resnet18 with weights {file_tag(ckpt)}" in said
    assert "points at c__v2, whose vectors were made by model resnet18 with weights random-init:seed0" in said
    check_configured(configured, _target(ModelTag("resnet18", file_tag(ckpt) + "+onnx", 512)))  # same origin


def test_children_get_unset_fields_empty_so_no_dotenv_or_parent_variable_fills_them(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    dotenv = tmp_path / ".env"
    dotenv.write_text(f"LOOKALIKE_WEIGHTS={_file(tmp_path / 'old.pth')}\nLOOKALIKE_DLQ_TOPIC=old.dlq\n")
    env = Settings(_env_file=None, model="resnet18", pretrained=False).as_env()
    monkeypatch.setenv("LOOKALIKE_FEED_TOPIC", "parent.feed")  # the parent's, under the child's
    assert env["LOOKALIKE_WEIGHTS"] == env["LOOKALIKE_DLQ_TOPIC"] == env["LOOKALIKE_WEIGHTS_DIRS"] == ""
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    child = Settings(_env_file=dotenv)
    assert (child.weights, child.dlq_topic, child.feed_topic, child.weights_dirs) == (None, None, None, [])


def test_reindex_defaults_to_the_configured_checkpoint_only_for_the_configured_model(tmp_path: Path) -> None:
    ckpt = _file(tmp_path / "m.pth")
    configured = Settings(_env_file=None, model="mobilenetv2_100", weights=ckpt)
    assert new_settings(configured, "mobilenetv2_100", None, True).weights == ckpt.resolve()
    assert new_settings(configured, "resnet18", None, True).weights is None  # timm's pretrained
    assert new_settings(configured, "mobilenetv2_100", None, False).weights is None  # --no-pretrained
    other = _file(tmp_path / "o.pth")
    assert new_settings(configured, "resnet18", other, True).weights == other.resolve()  # --weights


class FakeVersions:
    def __init__(self) -> None:
        self.points: list[str] = []
        self.props: dict[str, dict[str, str]] = {}

    def point(self, alias: str, collection: str) -> None:
        self.points.append(collection)

    def set_property(self, collection: str, key: str, value: str) -> None:
        self.props.setdefault(collection, {})[key] = value


def test_a_swap_whose_workers_do_not_start_points_back_and_restarts_them_with_the_old_model(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    settings = Settings(_env_file=None, collection="c")
    old = _target(ModelTag("mobilenetv2_100", "random-init:seed0", 1280), "c__v1")
    new = _target(ModelTag("resnet18", "random-init:seed0", 512), "c__v2")
    starts: list[str] = []

    def restart(_s: Settings, parts: list[Part], model: Settings, timeout: float = 0) -> None:
        starts.append(model.model)
        if model.model == "resnet18":
            raise StackError("worker-1 exited during start-up")

    monkeypatch.setattr(switch, "live_workers", lambda _s: [Part("worker-1", [], "")])
    monkeypatch.setattr(switch, "restart", restart)
    versions: Any = FakeVersions()
    with pytest.raises(switch.ReindexError) as caught:
        switch.swap(settings, versions, old, new)
    assert versions.points == ["c__v2", "c__v1"] and starts == ["resnet18", "mobilenetv2_100"]
    said = str(caught.value)
    assert "worker-1 exited during start-up" in said and "back on c__v1" in said and "1 worker(s) run" in said


def test_the_way_back_is_checked_and_recorded_before_anything_moves(tmp_path: Path) -> None:
    ckpt = _file(tmp_path / "m.pth")
    made_by_a_worker = _target(ModelTag("mobilenetv2_100", file_tag(ckpt), 1280), "c__v1")  # no path recorded
    versions: Any = FakeVersions()
    with pytest.raises(switch.ReindexError, match="nothing moved"):
        switch.remember_weights(Settings(_env_file=None), versions, made_by_a_worker)
    model = switch.remember_weights(Settings(_env_file=None, weights=ckpt), versions, made_by_a_worker)
    assert model.weights == ckpt.resolve() and versions.props == {"c__v1": {WEIGHTS_PATH_PROPERTY: str(ckpt.resolve())}}
