"""Versioned collections behind an alias, so the model can change while search keeps serving.

``LOOKALIKE_COLLECTION`` names a Milvus *alias*; the vectors live in physical collections
``<alias>__v1``, ``<alias>__v2``, ... and each records the model that made them (``ModelTag``).
Readers and writers resolve the alias; ``lookalike reindex`` builds the next version beside the
current one and swaps the alias atomically (``alter_alias``) once it has caught up.

An index from before versions (one physical collection named like the alias) is adopted on first
open by *renaming* it to ``<alias>__v1`` and creating the alias: metadata only, no vector copied
(``rename_collection`` works on Milvus Lite 3.2.2 and Milvus 2.3.5). Milvus forbids an alias and
a collection of the same name, and forbids dropping a collection an alias points at, which is why
the alias is moved before an old version is dropped.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from lookalike.errors import ModelMismatch
from lookalike.milvus import MilvusRefused
from lookalike.rows import TAG_PROPERTY, ModelTag
from lookalike.settings import Settings

log = logging.getLogger(__name__)

WEIGHTS_PATH_PROPERTY = "lookalike.weights_path"
_VERSION = re.compile(r"^(?P<alias>.+)__v(?P<n>[0-9]+)$")


def physical_name(alias: str, version: int) -> str:
    return f"{alias}__v{version}"


def version_of(name: str) -> int | None:
    """The version number of a physical collection name, or None for an alias/plain name."""
    m = _VERSION.match(name)
    return int(m.group("n")) if m else None


def is_physical(name: str) -> bool:
    return version_of(name) is not None


def settings_for_tag(settings: Settings, tag: ModelTag, weights_path: str | None = None) -> Settings:
    """The settings that build the embedder a collection's tag records (for searches after a swap).

    The tag names the weights' origin: ``timm-pretrained`` (``open_clip-pretrained``), ``random-init:seed0`` or
    ``file:<name>:<digest>`` (the path comes from the collection's ``WEIGHTS_PATH_PROPERTY``, or
    from these settings when the file name matches). A ``+<runtime>`` suffix is left to the
    runtime setting; the caller checks that the loaded embedder's tag equals ``tag``.
    """
    origin = tag.weights.split("+", 1)[0]
    update: dict[str, Any] = {"model": tag.model}
    if origin in ("timm-pretrained", "open_clip-pretrained"):
        update.update(weights=None, pretrained=True)
    elif origin.startswith("random-init"):
        update.update(weights=None, pretrained=False)
    elif origin.startswith("file:"):
        name = origin.split(":")[1]
        mine = settings.weights
        path = weights_path or (str(mine) if mine is not None and mine.name == name else None)
        if path is None:
            raise ModelMismatch(f"the index uses weights {origin} but their path is unknown; set LOOKALIKE_WEIGHTS")
        update.update(weights=Path(path), pretrained=True)  # model_copy does not validate: a Path, as the field
    return settings.model_copy(update=update)


@dataclass(frozen=True)
class Target:
    """Where an alias points: the physical collection, its model tag and its properties."""

    alias: str
    collection: str
    tag: ModelTag | None
    properties: dict[str, str]


class MilvusCalls(Protocol):
    """A Milvus connection (``lookalike.milvus.MilvusConnection``, or the ``VectorIndex`` holding one)."""

    def call(self, method: str, *args: Any, **kwargs: Any) -> Any: ...


class Versions:
    """Alias bookkeeping on a Milvus connection."""

    def __init__(self, conn: MilvusCalls) -> None:
        self.conn = conn

    def _do(self, method: str, *args: Any, **kwargs: Any) -> Any:
        return self.conn.call(method, *args, **kwargs)

    def describe(self, name: str) -> Target | None:
        """What ``name`` (an alias or a collection) resolves to; None when it does not exist."""
        if not self._do("has_collection", name):
            return None
        info = self._do("describe_collection", name)
        props = {str(k): str(v) for k, v in (info.get("properties") or {}).items()}
        tag = ModelTag.parse(props.get(TAG_PROPERTY, "")) or ModelTag.parse(info.get("description", ""))
        return Target(name, str(info.get("collection_name") or name), tag, props)

    def resolve(self, alias: str, adopt: bool = True) -> Target | None:
        """The alias's target; a pre-version collection named ``alias`` is adopted as ``__v1`` first."""
        target = self.describe(alias)
        if target is not None and target.collection == alias:
            if not adopt:
                return target
            self.adopt(alias)
            target = self.describe(alias)
        return target

    def adopt(self, alias: str) -> None:
        """Rename the single collection ``alias`` to ``alias__v1`` and put the alias in its place."""
        first = physical_name(alias, 1)
        log.info("adopting collection %s as %s behind alias %s", alias, first, alias)
        self._do("rename_collection", alias, first)
        self.point(alias, first)

    def versions(self, alias: str) -> list[tuple[int, str]]:
        """Every physical version of ``alias``: (number, name), oldest first."""
        found = []
        for name in self._do("list_collections"):
            m = _VERSION.match(name)
            if m and m.group("alias") == alias:
                found.append((int(m.group("n")), name))
        return sorted(found)

    def next_name(self, alias: str) -> str:
        numbers = [n for n, _ in self.versions(alias)]
        return physical_name(alias, max(numbers, default=0) + 1)

    def point(self, alias: str, collection: str) -> None:
        """Make ``alias`` name ``collection`` (atomic for readers: one ``alter_alias``)."""
        if self.alias_exists(alias):
            self._do("alter_alias", collection, alias)
        else:
            try:
                self._do("create_alias", collection, alias)
            except MilvusRefused:  # another process created it meanwhile: it must now exist
                if not self.alias_exists(alias):
                    raise
        log.info("alias %s -> %s", alias, collection)

    def alias_exists(self, alias: str) -> bool:
        target = self.describe(alias)
        return target is not None and target.collection != alias

    def drop_alias(self, alias: str) -> None:
        if self.alias_exists(alias):
            self._do("drop_alias", alias)

    def set_property(self, collection: str, key: str, value: str) -> None:
        self._do("alter_collection_properties", collection, {key: value})
