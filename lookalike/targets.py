"""The model an index's target records, turned back into settings: what serving processes load.

Each version behind the alias records a ``ModelTag`` (model, weights origin, dim). Settings go
stale: after ``lookalike reindex`` the ``.env`` that ``demo.sh`` wrote still names the old model's
checkpoint in ``LOOKALIKE_WEIGHTS``. So restarted workers and searchers build their model from the
target's tag (``settings_for_target``), and a worker whose configured model or weights contradict
the target refuses before it loads anything (``check_worker``), naming both.

A ``file:<name>:<sha12>`` tag names a checkpoint by content, not by path. Its file is the first of
these whose name and sha256 prefix match the tag (docs/model-changes.md):

1. the path recorded with the collection (``WEIGHTS_PATH_PROPERTY``; ``reindex`` writes it);
2. ``LOOKALIKE_WEIGHTS``;
3. ``<dir>/<name>`` for each of ``LOOKALIKE_WEIGHTS_DIRS``.
"""

from __future__ import annotations

import logging
from pathlib import Path

from lookalike.embedder import file_tag, weights_tag
from lookalike.errors import ModelMismatch, Unavailable
from lookalike.rows import ModelTag
from lookalike.settings import Settings
from lookalike.versions import WEIGHTS_PATH_PROPERTY, Target, Versions, settings_for_tag

log = logging.getLogger(__name__)


def origin(weights: str) -> str:
    """The weights' origin without a ``+<runtime>`` suffix (the runtime is a setting of its own)."""
    return weights.split("+", 1)[0]


def describe(tag: ModelTag) -> str:
    """``model (weights, dim N)``: how messages name what made a collection's vectors."""
    return f"{tag.model} ({tag.weights}, dim {tag.dim})"


def find_weights(settings: Settings, weights: str, recorded: str | None = None) -> Path:
    """The checkpoint a ``file:`` tag names (see the module docstring for where it looks)."""
    wanted = origin(weights)
    name = wanted.split(":", 1)[1].rsplit(":", 1)[0]
    places = [Path(p).expanduser() for p in (recorded, settings.weights) if p]
    places += [Path(d).expanduser() / name for d in settings.weights_dirs]
    for place in dict.fromkeys(places):
        if place.name == name and place.is_file() and file_tag(place) == wanted:
            return place.resolve()
    tried = ", ".join(str(p) for p in places) or "no place (nothing recorded, no LOOKALIKE_WEIGHTS)"
    raise ModelMismatch(
        f"the index's vectors were made with weights {wanted} but no file of that name and content is at "
        f"{tried}: set LOOKALIKE_WEIGHTS to it or add its directory to LOOKALIKE_WEIGHTS_DIRS"
    )


def settings_for_target(settings: Settings, target: Target) -> Settings:
    """``settings`` with the model and weights ``target`` records (raises ``ModelMismatch`` when the
    target records no model, or a checkpoint that cannot be found)."""
    if target.tag is None:
        raise ModelMismatch(f"{target.collection} records no model")
    path = None
    if origin(target.tag.weights).startswith("file:"):
        path = str(find_weights(settings, target.tag.weights, target.properties.get(WEIGHTS_PATH_PROPERTY)))
    return settings_for_tag(settings, target.tag, path)


def read_target(settings: Settings) -> Target | None:
    """What ``settings.collection`` resolves to now (None: no index yet). Raises ``Unavailable``."""
    from lookalike.index import VectorIndex

    index = VectorIndex(settings)
    try:
        return Versions(index).describe(settings.collection)
    finally:
        index.close()


def check_configured(settings: Settings, target: Target) -> None:
    """Refuse settings whose model or weights are not the ones ``target``'s vectors were made with."""
    if target.tag is None:
        return
    mine = weights_tag(settings)
    if (settings.model, mine) == (target.tag.model, origin(target.tag.weights)):
        return
    raise ModelMismatch(
        f"this worker is configured for model {settings.model} with weights {mine} (LOOKALIKE_MODEL, "
        f"LOOKALIKE_WEIGHTS, LOOKALIKE_PRETRAINED), but {target.alias} points at {target.collection}, whose "
        f"vectors were made by model {target.tag.model} with weights {target.tag.weights} (dim "
        f"{target.tag.dim}); set those to the target's (`lookalike stack status` shows it) or run "
        "`lookalike reindex`"
    )


def check_worker(settings: Settings) -> None:
    """A worker's check before it loads its model: refuse a configuration that contradicts the
    target, with both named (loading first could fail on another model's checkpoint, saying only
    "size mismatch"). Milvus down or no index yet: nothing to compare; the worker's own open waits."""
    try:
        target = read_target(settings)
    except Unavailable as exc:
        log.warning("cannot compare the configured model with the index's yet: %s", exc)
        return
    if target is not None:
        check_configured(settings, target)
