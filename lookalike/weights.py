"""Whether a model's pretrained weights can be had here, asked before timm tries to download them.

Offline, timm's download through ``huggingface_hub`` retries for about a minute before it fails,
and the failure does not say what to do. So before a download we look in the Hugging Face cache
and, if the weights are not there, whether the hub (or the configured HTTPS proxy) can be reached
at all: when neither, loading fails at once with a sentence naming ``LOOKALIKE_WEIGHTS``. Online,
nothing changes: timm downloads as before.
"""

from __future__ import annotations

import urllib.request
from urllib.parse import urlparse

from lookalike.net import connects

REACH_TIMEOUT_S = 3.0
HUB_FILES = ("model.safetensors", "pytorch_model.bin")  # timm's names, the safe one first


def hub_weights(model_name: str) -> tuple[str, tuple[str, ...]] | None:
    """The hub repository and the files timm would download for ``model_name``; None when timm
    would not use the hub (unknown model, a URL or file source: timm says what is wrong then)."""
    try:
        from timm.models import get_pretrained_cfg

        cfg = get_pretrained_cfg(model_name)
    except Exception:  # an unknown name raises in some timm versions: timm reports it itself
        return None
    if cfg is None or not cfg.hf_hub_id:
        return None
    return cfg.hf_hub_id, (cfg.hf_hub_filename,) if cfg.hf_hub_filename else HUB_FILES


def in_hub_cache(repo: str, files: tuple[str, ...]) -> bool:
    """Whether one of ``files`` of ``repo`` is in the local Hugging Face cache (no network)."""
    from huggingface_hub import try_to_load_from_cache

    repo_id, _, revision = repo.partition("@")
    return any(isinstance(try_to_load_from_cache(repo_id, name, revision=revision or None), str) for name in files)


def reachable(url: str, timeout: float = REACH_TIMEOUT_S) -> bool:
    """Whether ``url``'s host (or the HTTPS proxy, when one is set) accepts a connection in time."""
    proxy = urllib.request.getproxies().get("https")
    target = urlparse(proxy if proxy and "://" in proxy else url)
    port = target.port or (443 if target.scheme == "https" else 80)
    return bool(target.hostname) and connects(str(target.hostname), port, timeout)


def missing_weights(model_name: str) -> str | None:
    """Why timm cannot get ``model_name``'s pretrained weights here, or None when it can (or may)."""
    from huggingface_hub import constants

    source = hub_weights(model_name)
    if source is None or in_hub_cache(*source):
        return None
    if constants.HF_HUB_OFFLINE:
        why = "HF_HUB_OFFLINE is set"
    elif not reachable(constants.ENDPOINT):
        why = f"{urlparse(constants.ENDPOINT).hostname} cannot be reached (offline?)"
    else:
        return None
    return (
        f"no weights for {model_name}: they are not in the Hugging Face cache and {why}; "
        f"set LOOKALIKE_WEIGHTS to a local checkpoint of {model_name} "
        f"(in .env: LOOKALIKE_WEIGHTS=/path/to/{model_name}.pth)"
    )
