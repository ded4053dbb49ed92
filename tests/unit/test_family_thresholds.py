"""Near-duplicate thresholds per model family (issue 24): the threshold in force, the worker's dedupe
stage without one, and the calibration ``python -m infra.dupes_eval --model ...`` prints.

No model, no server: the index and the embedder are the in-memory fakes of ``tests.unit.fakes``.
The API, ``lookalike duplicates`` and the dashboard's messages: test_duplicates_uncalibrated.py.
"""

from __future__ import annotations

import logging
import uuid

import numpy as np
import pytest
from pydantic import ValidationError

from consumers.dedupe import dedupe_for
from consumers.stages import build_stages
from infra.evaluation.dupes import GRID, Scores, calibrate, calibration_lines
from lookalike.duplicates import index_model
from lookalike.errors import NotIndexed
from lookalike.families import CALIBRATED_THRESHOLDS, TIMM, duplicate_threshold, uncalibrated_message
from lookalike.rows import IndexRow, ModelTag
from lookalike.settings import Settings
from tests.unit.fakes import FakeDeadLetters, FakeEmbedder, FakeFeed, FakeIndex, FakeStore

CLIP = "open_clip:ViT-S-32"
CNN = "mobilenetv2_100"


def unit(*xs: float) -> np.ndarray:
    v = np.asarray(xs, dtype=np.float32)
    return v / np.linalg.norm(v)


def row(oid: str, vec: np.ndarray) -> IndexRow:
    return IndexRow(oid, vec, "etag-" + oid, 1, "image/jpeg", 0, 0)


# ---------------------------------------------------------------- the threshold in force
def test_each_family_has_its_threshold_and_the_configured_one_overrides_it() -> None:
    assert duplicate_threshold(None, CNN) == CALIBRATED_THRESHOLDS[TIMM] == 0.85
    assert duplicate_threshold(None, "resnet50") == 0.85  # any timm name: the family, not the model
    assert duplicate_threshold(None, CLIP) is None  # no CLIP calibration recorded yet
    assert duplicate_threshold(0.93, CLIP) == 0.93
    assert duplicate_threshold(0.0, CNN) == 0.0  # a configured 0 is a value, not "unset"
    message = uncalibrated_message(CLIP)
    assert CLIP in message and "python -m infra.dupes_eval --model open_clip:ViT-S-32" in message
    assert "LOOKALIKE_DUPLICATE_THRESHOLD" in message


def test_the_setting_is_unset_by_default_and_an_empty_variable_means_unset(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("LOOKALIKE_DUPLICATE_THRESHOLD", raising=False)
    assert Settings(_env_file=None).duplicate_threshold is None
    monkeypatch.setenv("LOOKALIKE_DUPLICATE_THRESHOLD", "")  # as .env.example and as_env write it
    assert Settings(_env_file=None).duplicate_threshold is None
    monkeypatch.setenv("LOOKALIKE_DUPLICATE_THRESHOLD", "0.9")
    settings = Settings(_env_file=None)
    assert settings.duplicate_threshold == 0.9
    assert settings.model_copy(update={"duplicate_threshold": None}).as_env()["LOOKALIKE_DUPLICATE_THRESHOLD"] == ""
    monkeypatch.setenv("LOOKALIKE_DUPLICATE_THRESHOLD", "1.5")
    with pytest.raises(ValidationError):
        Settings(_env_file=None)


class Alias:
    """``follow`` of ``VectorIndex``: the alias target's collection and tag, or no target yet."""

    def __init__(self, tag: ModelTag | None) -> None:
        self.tag = tag

    def follow(self) -> tuple[str, ModelTag]:
        if self.tag is None:
            raise NotIndexed("collection 'images' does not exist yet")
        return "images__v2", self.tag


def test_the_index_model_is_the_alias_targets_and_the_configured_one_stands_in_while_nothing_is_indexed() -> None:
    assert index_model(Alias(ModelTag(CLIP, "random", 384)), CNN) == CLIP
    assert index_model(Alias(ModelTag(CNN, "imagenet", 1280)), CLIP) == CNN
    assert index_model(Alias(None), CLIP) == CLIP
    assert index_model(None, CNN) == CNN


# ---------------------------------------------------------------- the worker's dedupe stage
def test_without_a_threshold_there_is_no_stage_and_with_one_it_marks() -> None:
    index = FakeIndex()
    index.upsert([row("b/orig", unit(1, 0, 0))])
    index.round_trips.clear()
    rows = [row("b/copy", unit(1, 0.1, 0)), row("b/copy2", unit(1, 0.1, 0))]  # copies of orig and of each other
    assert dedupe_for(index, None, CLIP) is None  # no stage: the writer upserts rows as they are
    assert index.round_trips == []  # and nothing was asked of the index to decide that
    stage = dedupe_for(index, 0.9, CLIP)  # the same batch with a threshold: the fake does find them
    assert stage is not None and all(r.duplicate_of for r in stage.mark(rows, [])[:2])
    assert "nearest_other" in index.round_trips


def test_the_stage_warns_once_per_model_naming_the_message(caplog: pytest.LogCaptureFixture) -> None:
    model = f"open_clip:arch-{uuid.uuid4().hex[:8]}"  # the warning is once per process and model
    with caplog.at_level(logging.WARNING, logger="consumers.dedupe"):
        first = dedupe_for(FakeIndex(), None, model)
        dedupe_for(FakeIndex(), None, model)
        assert getattr(dedupe_for(FakeIndex(), 0.95, model), "threshold", None) == 0.95
        assert getattr(dedupe_for(FakeIndex(), None, CNN), "threshold", None) == 0.85
    assert first is None
    warned = [r.getMessage() for r in caplog.records if r.name == "consumers.dedupe"]
    assert warned == [f"near-duplicates are not marked: {uncalibrated_message(model)}"]


class TaggedEmbedder(FakeEmbedder):
    def __init__(self, model: str) -> None:
        self.tag = ModelTag(model, "random", 3)


@pytest.mark.parametrize(
    ("configured_model", "written_model", "configured", "want"),
    [
        (CNN, CLIP, None, None),  # a reindex to CLIP: the CNN's threshold must not follow it
        (CLIP, CNN, None, 0.85),
        (CNN, CLIP, 0.97, 0.97),
    ],
)
def test_the_workers_threshold_follows_the_model_it_writes_with(
    configured_model: str, written_model: str, configured: float | None, want: float | None
) -> None:
    settings = Settings(_env_file=None, model=configured_model, duplicate_threshold=configured, threads=2)
    index = FakeIndex()
    stages = build_stages(settings, TaggedEmbedder(written_model), FakeStore(), index, FakeDeadLetters(), FakeFeed())  # type: ignore[arg-type]
    try:
        assert getattr(stages.writer.dedupe, "threshold", None) == want  # no stage at all without one
    finally:
        stages.close()


# ---------------------------------------------------------------- calibration
def scores(copies: list[float], negatives: list[float], wrong: int = 0) -> Scores:
    """Scored pairs: each copy's nearest-other similarity (the first ``wrong`` are nearest another
    image), and each distinct image's."""
    right = np.array([i >= wrong for i in range(len(copies))], dtype=bool)
    return Scores(np.array(copies), right, ["crop"] * len(copies), np.array(negatives))


def test_calibration_picks_the_lowest_threshold_that_reaches_the_precision_with_its_recall() -> None:
    s = scores([0.97] * 90 + [0.925] * 10, [0.915, 0.80, 0.60])
    c = calibrate(s, CLIP, 0.995)
    assert (c["threshold"], c["precision"], c["recall"]) == (0.92, 1.0, 1.0)  # 0.91 still marks the 0.915 pair
    assert c["set"] == "LOOKALIKE_DUPLICATE_THRESHOLD=0.92"
    assert c["record"] == 'CALIBRATED_THRESHOLDS["open_clip"] = 0.92' and c["family_threshold"] is None
    lines = calibration_lines(c)
    assert lines[0].startswith(f"{CLIP} (family open_clip): threshold 0.92 (precision 1.0, recall 1.0")
    assert lines[1:] == [
        "to use it, set LOOKALIKE_DUPLICATE_THRESHOLD=0.92",
        "or record it for every open_clip model (now none) in lookalike/families.py: "
        + 'CALIBRATED_THRESHOLDS["open_clip"] = 0.92',
    ]
    loose = calibrate(scores([0.97] * 90 + [0.925] * 10, [0.915] + [0.5] * 200), CLIP, 0.95)
    assert loose["threshold"] == 0.92  # 0.91 has the same recall: the tie goes to the higher threshold


def test_the_recall_is_the_one_at_the_picked_threshold() -> None:
    s = scores([0.99] * 30 + [0.941] * 30 + [0.90] * 40, [0.93, 0.5])
    c = calibrate(s, CLIP, 0.995)
    assert (c["threshold"], c["recall"]) == (0.94, 0.6)  # the 0.90 copies are lost to keep 0.93 unmarked
    assert calibrate(s, CLIP, 0.98)["threshold"] == 0.9  # 100 found, 1 false pair: precision 0.9901


def test_a_model_whose_calibrated_threshold_is_found_again_has_nothing_to_set() -> None:
    s = scores([0.87] * 100, [0.845, 0.3])
    c = calibrate(s, CNN, 0.995, thresholds=[0.80, 0.85, 0.90])
    assert (c["threshold"], c["family_threshold"]) == (0.85, 0.85)
    assert calibration_lines(c)[1] == "the family's calibrated threshold is 0.85 already: nothing to set"


def test_no_threshold_that_reaches_the_precision_is_said_not_guessed() -> None:
    s = scores([0.995] * 5 + [0.96] * 95, [0.2], wrong=5)  # five copies nearest another image, above the grid
    c = calibrate(s, CLIP, 0.999)
    assert c["threshold"] is None and c["set"] is None and c["record"] is None
    assert calibration_lines(c) == [
        f"{CLIP} (family open_clip): no threshold from {GRID[0]} to {GRID[-1]} reaches precision 0.999"
    ]
