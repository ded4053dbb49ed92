"""The near-duplicate measurement's arithmetic and edits (the model run itself is in docs/performance.md)."""

from __future__ import annotations

import io

import numpy as np
from PIL import Image

from infra.evaluation.dupes import EDITS, Scores, choose, curve, edited_copy, recall_by_edit


def test_curve_counts_found_wrong_nearest_and_negatives() -> None:
    s = Scores(
        copy_sim=np.array([0.95, 0.90, 0.80, 0.97]),
        copy_right=np.array([True, True, True, False]),  # the last copy's nearest is not its original
        copy_edit=["crop", "flip", "resize", "jpeg"],
        neg_sim=np.array([0.85, 0.70]),
    )
    at = {r["threshold"]: r for r in curve(s, [0.8, 0.9, 0.96])}
    assert (at[0.8]["found"], at[0.8]["false_pairs"]) == (3, 2)
    assert at[0.8]["precision"] == 0.6 and at[0.8]["recall"] == 0.75
    assert (at[0.9]["found"], at[0.9]["false_pairs"]) == (2, 1)
    assert (at[0.96]["found"], at[0.96]["false_pairs"], at[0.96]["precision"]) == (0, 1, 0.0)


def test_choose_takes_highest_recall_at_the_precision_then_the_higher_threshold() -> None:
    rows = [
        {"threshold": 0.8, "precision": 0.9, "recall": 1.0},
        {"threshold": 0.85, "precision": 0.996, "recall": 0.95},
        {"threshold": 0.86, "precision": 0.999, "recall": 0.95},
        {"threshold": 0.9, "precision": 1.0, "recall": 0.7},
    ]
    assert choose(rows, 0.995)["threshold"] == 0.86


def test_every_edit_gives_a_decodable_jpeg() -> None:
    out = io.BytesIO()
    Image.new("RGB", (64, 48), (200, 10, 10)).save(out, "PNG")
    for edit in EDITS:
        with Image.open(io.BytesIO(edited_copy(out.getvalue(), edit))) as im:
            assert im.format == "JPEG"
            assert im.size == ((32, 24) if edit == "resize" else (52, 40) if edit == "crop" else (64, 48))


def test_recall_by_edit_counts_a_copy_only_when_its_nearest_is_its_original() -> None:
    s = Scores(
        copy_sim=np.array([0.95, 0.80, 0.97, 0.90]),
        copy_right=np.array([True, True, False, True]),
        copy_edit=["flip", "flip", "crop", "crop"],
        neg_sim=np.array([]),
    )
    found = recall_by_edit(s, 0.85)
    assert set(found) == set(EDITS)
    assert (found["flip"], found["crop"]) == (0.5, 0.5)  # flip: 0.80 < 0.85; crop: the 0.97 is another image
