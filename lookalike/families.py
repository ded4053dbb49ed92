"""Model families: what ``LOOKALIKE_MODEL`` names, and what each family knows about its vectors.

* ``timm``: a timm backbone by its timm name (``mobilenetv2_100``): images only.
* ``open_clip``: ``open_clip:<arch>`` (``open_clip:ViT-B-32``), one of open_clip's model configs:
  an image tower and a text tower that embed into one space, so an index made by it can be
  searched by words as well as by images (docs/text-search.md).

The similarity scale differs between families (CLIP image pairs sit closer together than a CNN's
pooled features do), so the near-duplicate threshold is calibrated per family
(``python -m infra.dupes_eval --model ...``) and recorded here. A family with no calibrated
threshold marks no near-duplicates until ``LOOKALIKE_DUPLICATE_THRESHOLD`` is set, and says so.
"""

from __future__ import annotations

TIMM = "timm"
OPEN_CLIP = "open_clip"
OPEN_CLIP_PREFIX = f"{OPEN_CLIP}:"

# cosine similarity at which the nearest other object is a near-copy, per family, measured with
# `python -m infra.dupes_eval` on the sample set (precision 0.9956, recall 0.9508 for mobilenetv2_100)
CALIBRATED_THRESHOLDS: dict[str, float] = {TIMM: 0.85}


def family(model: str) -> str:
    """The family of a ``LOOKALIKE_MODEL`` value."""
    return OPEN_CLIP if model.startswith(OPEN_CLIP_PREFIX) else TIMM


def clip_arch(model: str) -> str:
    """open_clip's architecture name in ``open_clip:<arch>`` (``ViT-B-32``). Raises ``ValueError``."""
    arch = model.removeprefix(OPEN_CLIP_PREFIX) if family(model) == OPEN_CLIP else ""
    if not arch:
        raise ValueError(f"{model!r} is not an open_clip model: write open_clip:<arch>, e.g. open_clip:ViT-B-32")
    return arch


def has_text_tower(model: str) -> bool:
    """Whether the family embeds text into the image space (search by words)."""
    return family(model) == OPEN_CLIP


def calibrated_threshold(model: str) -> float | None:
    """The near-duplicate threshold calibrated for ``model``'s family, or None when none is."""
    return CALIBRATED_THRESHOLDS.get(family(model))


def duplicate_threshold(configured: float | None, model: str) -> float | None:
    """The threshold in force for ``model``: the configured one, else its family's calibrated one;
    None when neither exists (no near-duplicates are marked then)."""
    return configured if configured is not None else calibrated_threshold(model)


def uncalibrated_message(model: str) -> str:
    """What ``lookalike duplicates``, the API and the dashboard say for a model with no threshold."""
    return (
        f"no near-duplicate threshold is calibrated for {model} (family {family(model)}): run "
        f"`python -m infra.dupes_eval --model {model}` and set LOOKALIKE_DUPLICATE_THRESHOLD to the value it prints"
    )
