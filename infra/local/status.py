"""``stack status``: each recorded part's state and the index behind the alias, read without starting anything.

Apart from ``infra.local.stack`` (which re-exports ``status``) so that starting and stopping parts and
reporting on them stay two files of a readable size.
"""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import Any

from infra.local.parts import alive, load_state, probe
from lookalike.settings import Settings


def index_report(settings: Settings) -> dict[str, Any]:
    """The alias, the physical collection it points at, that one's model and size, and a running build."""
    from lookalike.index import VectorIndex
    from lookalike.migration import read_migration
    from lookalike.versions import Versions

    index: dict[str, Any] = {
        "uri": settings.milvus_uri,
        "alias": settings.collection,
        "collection": settings.collection,
        "vectors": None,
    }
    try:
        idx = VectorIndex(settings, timeout=5)
        target = Versions(idx).describe(settings.collection)
        if target is not None:
            index["collection"] = target.collection
            index["vectors"] = idx.count()
            index["model"] = asdict(target.tag) if target.tag else None
        idx.close()
    except Exception as exc:
        index["error"] = str(exc)
    migration = read_migration(settings)
    if migration is not None:
        index["migration"] = {k: migration.get(k) for k in ("target", "model", "done", "total", "lag")}
    return index


def s3_report(settings: Settings) -> dict[str, Any]:
    """What a client needs to connect to the stack's S3 (never the secret itself), and where the
    secret comes from: the documented local default, or LOOKALIKE_S3_SECRET_KEY (.env or environment)."""
    default = Settings.model_fields["s3_secret_key"].default.get_secret_value()
    local = settings.s3_secret_key.get_secret_value() == default
    return {
        "endpoint": settings.s3_endpoint,
        "bucket": settings.bucket,
        "region": settings.s3_region,
        "access_key_id": settings.s3_access_key,
        "secret": f"the local default {default!r} (docs/operations.md)"
        if local
        else "LOOKALIKE_S3_SECRET_KEY (from .env or the environment)",
        "events": f"SeaweedFS filer -> Kafka topic '{settings.topic}'",
    }


def status(settings: Settings) -> dict[str, Any]:
    """Each recorded part's address, pid and state (up, unhealthy, down), and the index's size."""
    parts = []
    for name, part in load_state(settings).items():
        running = alive(part)
        healthy = running and probe(settings, part)
        state = "up" if healthy else ("unhealthy" if running else "down")
        parts.append({"name": name, "address": part.address, "pid": part.pid, "state": state, "log": part.log})
    index: dict[str, Any] = {
        "uri": settings.milvus_uri,
        "alias": settings.collection,
        "collection": settings.collection,
        "vectors": None,
    }
    if any(p["name"] == "milvus" and p["state"] == "up" for p in parts):
        index = index_report(settings)
    return {
        "parts": parts,
        "index": index,
        "s3": s3_report(settings),
        "bucket": settings.bucket,
        "topic": settings.topic,
        "state_dir": str(Path(settings.state_dir).resolve()),
    }
