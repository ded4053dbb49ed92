"""Offline and not cached, the embedder fails at once naming LOOKALIKE_WEIGHTS and the model (issue 25).

Marked ``model``: it builds a ``TimmEmbedder`` (torch and timm load), though no weights are read:
the check in ``lookalike.weights`` stops it before timm's ``create_model``.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from lookalike import weights
from lookalike.embedder import ModelLoadError, TimmEmbedder
from lookalike.settings import Settings

pytestmark = pytest.mark.model


def test_offline_and_not_cached_fails_at_once_naming_the_setting_and_the_model(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    import timm

    monkeypatch.setattr(weights, "in_hub_cache", lambda repo, files: False)
    monkeypatch.setattr(weights, "reachable", lambda url, timeout=3.0: False)

    def no_download(*args: object, **kwargs: object) -> None:
        raise AssertionError("timm must not be asked to download")

    monkeypatch.setattr(timm, "create_model", no_download)
    start = time.monotonic()
    with pytest.raises(ModelLoadError) as info:
        TimmEmbedder(Settings(_env_file=None, weights=None, pretrained=True, model_cache=tmp_path)).load()
    assert time.monotonic() - start < 20  # the imports; no retries
    message = str(info.value)
    assert "LOOKALIKE_WEIGHTS" in message and "mobilenetv2_100" in message and "offline" in message
