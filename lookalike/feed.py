"""The change feed: one Kafka message per object outcome, on the compacted topic ``<topic>.indexed``.

Workers publish it after a batch is durable in Milvus and before its offsets are committed (see
``consumers/feed.py``); readers (the dashboard's live panel, other systems) consume it. Messages are
keyed ``bucket/key``, so compaction keeps the newest outcome of every object and all outcomes of
one object stay in order on one partition. The value is a JSON object::

    {"id": "images/cats/1.jpg", "outcome": "indexed", "etag": "...", "size": 1234,
     "indexed_at": 1764625000123, "duplicate_of": "images/cats/0.jpg"}   # duplicate_of when known
    {"id": "images/cats/1.jpg", "outcome": "removed", "at": 1764625000456}
    {"id": "images/bad.jpg", "outcome": "dead", "reason": "not an image", "etag": "...", "at": ...}

This module is the schema and the tail reader; it has no worker logic, so the dashboard can use it.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Any, Literal

from kafka import KafkaConsumer, TopicPartition
from kafka.errors import KafkaError

from lookalike.errors import Unavailable

Outcome = Literal["indexed", "removed", "dead"]
OUTCOMES: tuple[str, ...] = ("indexed", "removed", "dead")


@dataclass(frozen=True)
class FeedRecord:
    """One outcome of one object. ``at`` is when it became durable (ms since the epoch)."""

    id: str
    outcome: Outcome
    at: int
    etag: str | None = None
    size: int | None = None
    reason: str | None = None
    duplicate_of: str | None = None
    duplicate_score: float | None = None

    def to_json(self) -> bytes:
        doc: dict[str, Any] = {"id": self.id, "outcome": self.outcome, "at": self.at}
        if self.outcome == "indexed":
            doc["indexed_at"] = self.at
        for name in ("etag", "size", "reason", "duplicate_of", "duplicate_score"):
            value = getattr(self, name)
            if value is not None:
                doc[name] = value
        return json.dumps(doc, ensure_ascii=False).encode()

    @classmethod
    def parse(cls, value: bytes | None, key: bytes | None = None, timestamp_ms: int = 0) -> FeedRecord | None:
        """A feed message, or None for anything that is not one (the feed is an open topic)."""
        try:
            doc = json.loads(value or b"")
        except ValueError:
            return None
        if not isinstance(doc, dict) or doc.get("outcome") not in OUTCOMES:
            return None
        oid = doc.get("id") or (key.decode("utf-8", "replace") if key else "")
        at = doc.get("at", doc.get("indexed_at", timestamp_ms))
        size = doc.get("size")
        score = doc.get("duplicate_score")
        return cls(
            id=str(oid),
            outcome=doc["outcome"],
            at=int(at) if isinstance(at, int | float) else timestamp_ms,
            etag=str(doc["etag"]) if doc.get("etag") is not None else None,
            size=int(size) if isinstance(size, int | float) else None,
            reason=str(doc["reason"]) if doc.get("reason") is not None else None,
            duplicate_of=str(doc["duplicate_of"]) if doc.get("duplicate_of") else None,
            duplicate_score=float(score) if isinstance(score, int | float) else None,
        )


def now_ms() -> int:
    return int(time.time() * 1000)


def tail_records(consumer: KafkaConsumer, topic: str, per_partition: int, timeout_s: float = 3.0) -> list[Any]:
    """The last ``per_partition`` records of each partition of ``topic``, as Kafka gives them.

    Cost is bounded by ``per_partition`` times the partitions, whatever the topic holds. The
    consumer must be group-less (it is assigned, sought and unassigned here; not thread-safe).
    Reads until every partition's position reaches the end offset read first; a fetch returns
    whole record batches, so on Tansu (whose end offset is the last batch's base + 1) the rest of
    that batch comes with it. No poll waits for data that is not there. The change feed and the
    dead letters (``lookalike.deadletters``) are both read this one way.
    """
    try:
        tps = [TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic) or ())]
        if not tps:
            return []
        ends = consumer.end_offsets(tps)
        begins = consumer.beginning_offsets(tps)
        consumer.assign(tps)
        for tp in tps:
            consumer.seek(tp, max(begins[tp], ends[tp] - per_partition))
        out: list[Any] = []
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline and any(consumer.position(tp) < ends[tp] for tp in tps):
            for records in consumer.poll(timeout_ms=200, max_records=1000).values():
                out.extend(records)
    except KafkaError as exc:
        raise Unavailable("kafka", f"{type(exc).__name__}: {exc}") from exc
    finally:
        consumer.unsubscribe()
    return out


def read_tail(consumer: KafkaConsumer, topic: str, per_partition: int, timeout_s: float = 3.0) -> list[FeedRecord]:
    """The last ``per_partition`` feed messages of each partition of ``topic``, oldest first by ``at``
    (``tail_records``; anything that is not a feed message is left out)."""
    parsed = (
        FeedRecord.parse(r.value, r.key, r.timestamp) for r in tail_records(consumer, topic, per_partition, timeout_s)
    )
    out = [rec for rec in parsed if rec is not None]
    out.sort(key=lambda r: (r.at, r.id))
    return out
