"""Moving the alias between versions with the local stack's workers following it: swap, rollback, drop.

A swap points the alias at a version and restarts the stack's running workers with the model and
weights that version records (``lookalike.targets.settings_for_target``). Every ``LOOKALIKE_*``
variable is written into their environment (``Settings.as_env``), so neither the caller's
environment nor a ``.env`` can slip the previous model's checkpoint in. If any worker does not come
up, the alias goes back and the same workers restart with the previous version's model: the stack
keeps ingesting, and the caller gets a ``ReindexError`` saying so (the command exits non-zero).
"""

from __future__ import annotations

import logging
import os
from typing import Any

from infra.local.parts import Part, StackError, alive, load_state, save_state, start_part, stop_part, wait_ready
from lookalike.errors import LookalikeError, ModelMismatch
from lookalike.index import VectorIndex
from lookalike.migration import read_migration
from lookalike.settings import Settings
from lookalike.targets import describe, settings_for_target
from lookalike.versions import WEIGHTS_PATH_PROPERTY, Target, Versions, version_of

log = logging.getLogger(__name__)

RESTART_S = 180.0  # a worker's start: interpreter, torch, the model, the group join


class ReindexError(LookalikeError):
    """A build, swap or rollback could not be done; the message says where the alias points now."""


def current_target(versions: Versions, alias: str) -> Target:
    target = versions.resolve(alias)
    if target is None or target.tag is None:
        raise ReindexError(f"nothing to reindex: collection {alias!r} does not exist yet")
    return target


def live_workers(settings: Settings) -> list[Part]:
    """The local stack's running workers (``stack.json`` in the state dir); none outside a local stack."""
    return [p for name, p in sorted(load_state(settings).items()) if name.startswith("worker-") and alive(p)]


def restart(settings: Settings, parts: list[Part], model: Settings, timeout: float = RESTART_S) -> None:
    """Stop each of ``parts``, start it again with ``model``'s settings, wait until all are ready.

    Raises ``StackError`` naming the first that did not come up (with the end of its log)."""
    state = load_state(settings)
    for part in parts:
        stop_part(part)
        start_part(model, part, dict(os.environ))
        state[part.name] = part
        save_state(settings, state)
    for part in parts:
        wait_ready(model, part, timeout)


def remember_weights(settings: Settings, versions: Versions, target: Target) -> Settings:
    """The settings ``target``'s workers need, its checkpoint's path recorded with it if it was not.

    Called before anything moves: a swap must be able to bring these workers back. A version made
    by a worker records no path, and the ``LOOKALIKE_WEIGHTS`` that found it may be gone by the
    time of a later ``--rollback``; the recorded path keeps it findable."""
    try:
        model = settings_for_target(settings, target)
    except ModelMismatch as exc:
        raise ReindexError(f"{exc} (needed to bring back the workers of {target.collection}); nothing moved") from exc
    if model.weights is not None and WEIGHTS_PATH_PROPERTY not in target.properties:  # a file: tag, found
        versions.set_property(target.collection, WEIGHTS_PATH_PROPERTY, str(model.weights))
    return model


def swap(settings: Settings, versions: Versions, old: Target, new: Target, timeout: float = RESTART_S) -> int:
    """Point the alias from ``old`` to ``new`` and restart the workers with ``new``'s model; how many.

    If they do not all come up: the alias back on ``old``, the workers restarted with its model,
    and ``ReindexError``."""
    new_model = remember_weights(settings, versions, new)
    old_model = remember_weights(settings, versions, old)
    parts = live_workers(settings)
    versions.point(settings.collection, new.collection)
    try:
        restart(settings, parts, new_model, timeout)
    except StackError as exc:
        log.error("the workers did not start with %s; the alias goes back to %s", new.collection, old.collection)
        versions.point(settings.collection, old.collection)
        said = f"the workers did not start with {new.collection}, {describe_target(new)}: {exc}\n"
        try:
            restart(settings, parts, old_model, timeout)
        except StackError as again:
            raise ReindexError(
                f"{said}the alias {settings.collection} is back on {old.collection}, but its workers did not "
                f"restart either: {again}"
            ) from exc
        raise ReindexError(
            f"{said}the alias {settings.collection} is back on {old.collection}, {describe_target(old)}, and "
            f"{len(parts)} worker(s) run with it again"
        ) from exc
    return len(parts)


def describe_target(target: Target) -> str:
    return describe(target.tag) if target.tag is not None else "no model recorded"


def rollback(settings: Settings) -> dict[str, Any]:
    """Point the alias back at the version before its current target; restart the workers."""
    index = VectorIndex(settings)
    try:
        versions = Versions(index)
        current = current_target(versions, settings.collection)
        now = version_of(current.collection) or 0
        older = [name for number, name in versions.versions(settings.collection) if number < now]
        if not older:
            raise ReindexError(f"{current.collection} has no previous version to roll back to")
        previous = versions.describe(older[-1])
        if previous is None or previous.tag is None:
            raise ReindexError(f"{older[-1]} records no model")
        restarted = swap(settings, versions, current, previous)
    finally:
        index.close()
    return {
        "alias": settings.collection,
        "collection": previous.collection,
        "model": previous.tag.model,
        "was": current.collection,
        "restarted_workers": restarted,
    }


def drop_previous(settings: Settings) -> dict[str, Any]:
    """Drop every version the alias does not point at (refused while a build runs)."""
    if read_migration(settings) is not None:
        raise ReindexError("a reindex build is running; drop previous versions after it finished")
    index = VectorIndex(settings)
    try:
        versions = Versions(index)
        current = current_target(versions, settings.collection)
        dropped = [name for _, name in versions.versions(settings.collection) if name != current.collection]
        for name in dropped:
            index.call("drop_collection", name)
    finally:
        index.close()
    return {"alias": settings.collection, "collection": current.collection, "dropped": dropped}
