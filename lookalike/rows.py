"""The rows of the vector index and the names they travel under: plain data, no Milvus client.

Kept apart from ``index.py`` so the worker, the API and the tests can speak of rows, hits and model
tags without the client code, and so that file stays about its one collection.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from lookalike.events import split_id

MAX_ID = 2048
TAG_PROPERTY = "lookalike.model"
FIELDS = ["id", "etag", "size", "content_type", "event_time", "last_modified", "indexed_at", "model"]
DUPLICATE_FIELDS = ["duplicate_of", "duplicate_score"]


@dataclass(frozen=True)
class ModelTag:
    """What made the vectors: the timm name, where its weights came from, and the dimension."""

    model: str
    weights: str
    dim: int

    def describe(self) -> str:
        return json.dumps({"lookalike": 1, **asdict(self)}, sort_keys=True)

    @classmethod
    def parse(cls, description: str) -> ModelTag | None:
        try:
            doc = json.loads(description or "")
            return cls(model=str(doc["model"]), weights=str(doc["weights"]), dim=int(doc["dim"]))
        except (ValueError, KeyError, TypeError):
            return None


@dataclass(frozen=True)
class IndexRow:
    id: str
    vector: np.ndarray
    etag: str
    size: int
    content_type: str
    event_time: int
    last_modified: int
    duplicate_of: str = ""  # id (bucket/key) of the nearest other object when it is a near-copy
    duplicate_score: float = 0.0  # their cosine similarity (0 when not marked)
    indexed_at: int | None = None  # kept on a re-checked row; None: now


@dataclass(frozen=True)
class IndexedState:
    """What the index holds for one object: enough to skip or refuse a write without the vector."""

    etag: str
    last_modified: int


class ObjectIdParts:
    """``bucket`` and ``key`` of a row whose ``id`` is ``bucket/key``."""

    id: str

    @property
    def bucket(self) -> str:
        return split_id(self.id)[0]

    @property
    def key(self) -> str:
        return split_id(self.id)[1]


@dataclass(frozen=True)
class Hit(ObjectIdParts):
    id: str
    score: float
    fields: dict[str, Any]
