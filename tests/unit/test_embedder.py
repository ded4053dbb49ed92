"""The embedder's decode size from a model's data config: pure arithmetic, no model is loaded.

The tests that load real timm models (decode size, draft decoding's vectors, the runtime choice,
head widths) are in ``tests/model/test_embedder.py``: the unit tier needs no model and no ../shared.
"""

from __future__ import annotations

import pytest

from lookalike.embedder import resize_size


@pytest.mark.parametrize(
    ("config", "want"),
    [
        ({"input_size": (3, 224, 224), "crop_pct": 0.875}, 256),
        ({"input_size": (3, 224, 224), "crop_pct": None}, 256),
        ({"input_size": (3, 288, 288), "crop_pct": 1.0}, 288),
        ({"input_size": (3, 224, 320), "crop_pct": 0.9}, 355),  # non-square: the larger side rules
    ],
)
def test_resize_size_follows_the_data_config(config: dict[str, object], want: int) -> None:
    assert resize_size(config) == want
