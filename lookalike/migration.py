"""A running reindex build's progress, in a file of the state dir, for the processes that show it.

Written by ``lookalike reindex`` while it builds (``infra/reindex``), read by ``stack status`` and the
dashboard, which may not import the reindex code: so it lives in the core, apart from the alias
bookkeeping of ``versions``.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from lookalike.settings import Settings


def migration_path(settings: Settings) -> Path:
    """``<state_dir>/migration-<alias>.json``: written by ``reindex`` while it builds, then removed."""
    return Path(settings.state_dir, f"migration-{settings.collection}.json")


def write_migration(settings: Settings, progress: dict[str, Any]) -> None:
    """Atomically (write, then rename), so a reader never sees half a file."""
    path = migration_path(settings)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(progress))
    os.replace(tmp, path)


def read_migration(settings: Settings) -> dict[str, Any] | None:
    """The running build's ``target``, ``model``, ``done``, ``total`` and ``lag``; None when none runs."""
    try:
        doc = json.loads(migration_path(settings).read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(doc, dict):
        return None
    try:  # a build killed mid-way leaves its file behind: only a live builder's counts
        pid = int(doc.get("pid", 0))
        if pid <= 0:
            return None
        os.kill(pid, 0)
    except (OSError, ValueError):
        return None
    return doc


def clear_migration(settings: Settings) -> None:
    migration_path(settings).unlink(missing_ok=True)
