"""In-memory fakes of the worker's ports (store, index, model, dead letters, commits) for unit tests."""

from __future__ import annotations

import hashlib
import io
import json
import threading
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from kafka.structs import TopicPartition
from PIL import Image

from consumers.dlq import DeadLetter
from consumers.ports import Message
from lookalike.events import ObjectEvent
from lookalike.rows import IndexedState, IndexRow, ModelTag
from lookalike.store import ObjectInfo


def png(color: tuple[int, int, int], size: tuple[int, int] = (8, 8)) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, color).save(out, "PNG")
    return out.getvalue()


class FakeStore:
    """A bucket in a dict; etags are md5 of the bytes, Last-Modified a logical clock."""

    def __init__(self) -> None:
        self.objects: dict[tuple[str, str], tuple[ObjectInfo, bytes]] = {}
        self.clock = 1_000
        self.fail: dict[str, BaseException] = {}  # key -> exception raised by get

    def put(self, bucket: str, key: str, data: bytes) -> str:
        self.clock += 1
        etag = hashlib.md5(data).hexdigest()
        self.objects[(bucket, key)] = (ObjectInfo(bucket, key, etag, len(data), "image/png", self.clock), data)
        return etag

    def remove(self, bucket: str, key: str) -> None:
        self.objects.pop((bucket, key), None)

    def get(self, bucket: str, key: str) -> tuple[ObjectInfo, bytes] | None:
        if key in self.fail:
            raise self.fail[key]
        return self.objects.get((bucket, key))


class FakeIndex:
    """Rows by id, with a log of every write (for ordering assertions)."""

    def __init__(self) -> None:
        self.rows: dict[str, IndexRow] = {}
        self.log: list[tuple[str, str]] = []  # (op, id)
        self.lock = threading.Lock()
        self.round_trips: list[str] = []  # every index method called, in order

    def check_target(self) -> None:
        self.round_trips.append("check_target")

    def states(self, ids: Sequence[str]) -> dict[str, IndexedState]:
        return {i: IndexedState(self.rows[i].etag, self.rows[i].last_modified) for i in ids if i in self.rows}

    def upsert(self, rows: Sequence[IndexRow], checked: bool = False) -> None:
        self.round_trips.append("upsert" if checked else "check_target+upsert")
        with self.lock:
            for r in rows:
                assert r.vector is not None
                self.rows[r.id] = r
                self.log.append(("upsert", r.id))

    def delete(self, ids: Sequence[str], checked: bool = False) -> None:
        self.round_trips.append("delete" if checked else "check_target+delete")
        with self.lock:
            for i in ids:
                self.rows.pop(i, None)
                self.log.append(("delete", i))

    def flush(self) -> None:
        pass

    def etags(self) -> dict[str, str]:
        return {i: r.etag for i, r in self.rows.items()}

    has_duplicates = True

    def nearest_other(self, vectors: np.ndarray, exclude: Sequence[str]) -> list[tuple[str, float] | None]:
        """Exact nearest row by inner product, leaving ``exclude`` out (ties: the smaller id)."""
        self.round_trips.append("nearest_other")
        out: list[tuple[str, float] | None] = []
        for v in vectors:
            scored = [(-float(np.dot(r.vector, v)), i) for i, r in self.rows.items() if i not in set(exclude)]
            out.append((min(scored)[1], -min(scored)[0]) if scored else None)
        return out

    def marked_as_copies_of(self, ids: Sequence[str]) -> list[IndexRow]:
        self.round_trips.append("marked_as_copies_of")
        return [r for r in self.rows.values() if r.duplicate_of and r.duplicate_of in set(ids)]


class FakeEmbedder:
    """A 'model' whose vector is the image's mean colour: enough to tell versions apart."""

    tag = ModelTag("fake", "none", 3)
    decode_size: int | None = None  # decode at full size

    def load(self) -> None:
        pass

    def prepare(self, image: Image.Image) -> Any:
        return np.asarray(image, dtype=np.float32).mean(axis=(0, 1))

    def embed_prepared(self, batch: Sequence[Any]) -> np.ndarray:
        return np.stack(list(batch)) if batch else np.zeros((0, 3), dtype=np.float32)


class FakeDeadLetters:
    def __init__(self) -> None:
        self.letters: list[DeadLetter] = []

    def send(self, letters: list[Any]) -> None:
        self.letters.extend(letters)


class FakeCommitter:
    def __init__(self) -> None:
        self.commits: list[dict[TopicPartition, int]] = []

    def commit(self, offsets: Mapping[TopicPartition, int]) -> bool:
        self.commits.append(dict(offsets))
        return True

    def committed(self) -> dict[TopicPartition, int]:
        out: dict[TopicPartition, int] = {}
        for c in self.commits:
            out.update(c)
        return out


class Topic:
    """Messages as the bridge would publish them, with offsets per partition."""

    def __init__(self, name: str = "events") -> None:
        self.name = name
        self.next: dict[int, int] = {}

    def raw(self, value: bytes, partition: int = 0, key: str | None = None) -> Message:
        offset = self.next.get(partition, 0)
        self.next[partition] = offset + 1
        return Message(self.name, partition, offset, key, value)

    def event(self, kind: str, bucket: str, key: str, etag: str | None = None, partition: int = 0) -> Message:
        name = "s3:ObjectCreated:Put" if kind == "created" else "s3:ObjectRemoved:Delete"
        ev = ObjectEvent(kind, bucket, key, etag, None, None, 0, None, name)  # type: ignore[arg-type]
        body = {"EventName": name, "Key": ev.id, "Records": [ev.to_record()]}
        return self.raw(json.dumps(body).encode(), partition, ev.id)


class FakeFeed:
    """The change feed in a list; ``fail`` outages make the next publishes raise ``Unavailable``."""

    def __init__(self) -> None:
        self.records: list[Any] = []
        self.fail = 0
        self.attempts = 0

    def publish(self, records: list[Any]) -> None:
        from lookalike.errors import Unavailable

        self.attempts += 1
        if self.fail:
            self.fail -= 1
            raise Unavailable("kafka", "change-feed publish failed: broker down (fake)")
        self.records.extend(records)
