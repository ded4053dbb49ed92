"""Offline without weights: ``lookalike.weights`` says so before any download (issue 25).

timm's download through huggingface_hub retried for 55 s before it failed; ``lookalike.weights``
asks the cache and the network first. Online, or with the weights cached, nothing changes. The
embedder failing at once on it is in ``tests/model/test_offline_weights.py``.
"""

from __future__ import annotations

import time

import pytest

from lookalike import weights
from tests.helpers import free_port


def test_timm_names_the_hub_files_it_would_download() -> None:
    found = weights.hub_weights("mobilenetv2_100")
    assert found is not None and found[0].startswith("timm/mobilenetv2_100")
    assert "model.safetensors" in found[1]
    assert weights.hub_weights("no_such_model_xyz") is None  # timm's own error says what is wrong


def test_hf_hub_offline_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    from huggingface_hub import constants

    monkeypatch.setattr(weights, "in_hub_cache", lambda repo, files: False)
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    assert "HF_HUB_OFFLINE" in (weights.missing_weights("mobilenetv2_100") or "")


def test_cached_or_online_weights_go_on_to_timm(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(weights, "in_hub_cache", lambda repo, files: True)
    assert weights.missing_weights("mobilenetv2_100") is None
    monkeypatch.setattr(weights, "in_hub_cache", lambda repo, files: False)
    monkeypatch.setattr(weights, "reachable", lambda url, timeout=3.0: True)
    assert weights.missing_weights("mobilenetv2_100") is None  # online: timm downloads as before


def test_an_unreachable_host_is_known_quickly() -> None:
    start = time.monotonic()
    assert not weights.reachable(f"http://127.0.0.1:{free_port()}", timeout=1.0)
    assert time.monotonic() - start < 2
