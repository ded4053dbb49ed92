"""The live index panel's numbers, free of Streamlit: vectors, lag, ingest rate, latest rows, dead letters.

Nothing here scans Milvus: rate and latest come from the tail of the change feed (the last
``FEED_TAIL`` messages of each partition of ``<topic>.indexed``, see ``lookalike/feed.py``), lag
from Kafka offsets, and the total from the collection's row-count statistic; so a refresh costs the
same at a thousand rows or a million. Every source can be down on its own; ``snapshot`` collects
what it can and names, per part, what it could not get, so one dead service blanks one card of the
panel and not the page.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from kafka import KafkaAdminClient, KafkaConsumer
from kafka.errors import KafkaError

from dashboard.trends import rate_series
from lookalike.bus import read_offsets, security
from lookalike.deadletters import DeadLetterView, recent
from lookalike.errors import Unavailable
from lookalike.feed import FeedRecord, read_tail
from lookalike.index import VectorIndex
from lookalike.rows import ObjectIdParts
from lookalike.settings import Settings
from lookalike.versions import Versions

log = logging.getLogger(__name__)

RATE_WINDOW_MS = 60_000
FEED_TAIL = 500  # feed messages read per partition on each refresh
REFRESH_S = 5  # how often an open panel refreshes
SHARED_FOR_S = 4  # how long one snapshot serves every tab of a dashboard process (under REFRESH_S)


# ---------------------------------------------------------------- consumer lag
@dataclass(frozen=True)
class PartitionLag:
    partition: int
    committed: int | None
    end: int
    lag: int


class KafkaWatch:
    """One admin client and one group-less consumer, shared by every browser session (hence the lock)."""

    def __init__(self, settings: Settings, timeout_ms: int = 5000) -> None:
        self.topic = settings.topic
        self.dead_letter_topic = settings.dead_letter_topic
        self.feed_topic = settings.change_feed_topic
        self.group = settings.group
        self._lock = threading.Lock()
        options: dict[str, Any] = {
            "bootstrap_servers": settings.kafka_bootstrap,
            "request_timeout_ms": timeout_ms,
            **security(settings),
        }
        try:
            self.admin = KafkaAdminClient(client_id="lookalike-dashboard", **options)
            self.consumer = KafkaConsumer(
                client_id="lookalike-dashboard", group_id=None, enable_auto_commit=False, **options
            )
        except KafkaError as exc:
            raise Unavailable("kafka", f"{type(exc).__name__}: {exc}") from exc

    def lag(self) -> list[PartitionLag]:
        with self._lock:
            offsets = read_offsets(self.admin, self.consumer, self.group, self.topic)
        return [PartitionLag(p, o.committed, o.end, o.lag) for p, o in sorted(offsets.items())]

    def dead_letters(self, n: int = 20, timeout_s: float = 3.0) -> list[DeadLetterView]:
        """The ``n`` most recent dead letters, newest first."""
        with self._lock:
            return recent(self.consumer, self.dead_letter_topic, n, timeout_s)

    def feed_tail(self, per_partition: int = FEED_TAIL) -> list[FeedRecord]:
        """The change feed's most recent messages, oldest first (bounded: see ``read_tail``)."""
        with self._lock:
            return read_tail(self.consumer, self.feed_topic, per_partition)

    def close(self) -> None:
        for client in (self.consumer, self.admin):
            try:
                client.close()
            except Exception:  # closing a broken connection must not mask anything
                log.debug("closing a kafka client failed", exc_info=True)


# ---------------------------------------------------------------- the index
@dataclass(frozen=True)
class IndexedObject(ObjectIdParts):
    id: str
    etag: str
    size: int
    indexed_at: int


# ---------------------------------------------------------------- from the change feed
def feed_latest(records: list[FeedRecord], limit: int = 8) -> list[IndexedObject]:
    """The ``limit`` most recently indexed objects in the feed's tail, newest first, one per id.

    An object whose newest outcome is a removal or a dead letter is not shown. The tail holds the
    newest message of every partition, so the newest object indexed is always here.
    """
    newest: dict[str, FeedRecord] = {}
    for r in sorted(records, key=lambda r: r.at):
        newest[r.id] = r
    indexed = [r for r in newest.values() if r.outcome == "indexed"]
    indexed.sort(key=lambda r: (r.at, r.id), reverse=True)
    return [IndexedObject(id=r.id, etag=r.etag or "", size=r.size or 0, indexed_at=r.at) for r in indexed[:limit]]


def feed_rate(records: list[FeedRecord], now_ms: int, window_ms: int = RATE_WINDOW_MS) -> float:
    """Objects indexed per second over the last ``window_ms``, from the feed's tail.

    When the tail is shorter than the window (a flood filled it in less time), the rate is taken
    over the span the tail covers instead, so a bulk load reads as its real pace, not a cap.
    """
    since = now_ms - window_ms
    recent = [r for r in records if r.at > since]
    indexed = sum(1 for r in recent if r.outcome == "indexed")
    if not indexed:
        return 0.0
    span_ms = window_ms
    if len(recent) == len(records) and len(records) > 1:  # nothing older in hand: the tail is the window
        span_ms = max(1_000, now_ms - min(r.at for r in records))
    return indexed / (min(span_ms, window_ms) / 1000)


# ---------------------------------------------------------------- one refresh
@dataclass
class LiveSnapshot:
    taken_ms: int
    vectors: int | None = None
    rate_per_s: float | None = None
    rate_series: list[float] = field(default_factory=list)  # per bin, oldest first (``dashboard.trends``)
    latest: list[IndexedObject] = field(default_factory=list)
    lag: list[PartitionLag] | None = None
    dead_letters: list[DeadLetterView] | None = None
    errors: dict[str, str] = field(default_factory=dict)
    collection: str | None = None  # the physical collection the alias points at
    model: str | None = None  # the model its vectors come from
    migration: dict[str, Any] | None = None  # a running `lookalike reindex`: target, model, done, total, lag

    @property
    def total_lag(self) -> int | None:
        return None if self.lag is None else sum(p.lag for p in self.lag)


def snapshot(
    index: Callable[[], VectorIndex],
    kafka: Callable[[], KafkaWatch],
    down: set[str],
    now_ms: int | None = None,
    latest_n: int = 8,
    dead_letters_n: int = 20,
    migration: Callable[[], dict[str, Any] | None] | None = None,
) -> LiveSnapshot:
    """Everything the panel shows; a part in ``down`` (or failing now) is reported in ``errors``."""
    snap = LiveSnapshot(taken_ms=now_ms if now_ms is not None else int(time.time() * 1000))
    snap.migration = migration() if migration is not None else None
    if "milvus" in down:
        snap.errors["milvus"] = "unreachable"
    else:
        try:
            idx = index()
            if idx.exists():
                target = Versions(idx).describe(idx.alias or idx.name)
                if target is not None:
                    snap.collection = target.collection
                    snap.model = target.tag.model if target.tag else None
                snap.vectors = idx.row_count()
            else:
                snap.vectors = 0
        except Exception as exc:
            log.warning("live panel: milvus: %s", exc)
            snap.errors["milvus"] = _short(exc)
    if "kafka" in down:
        snap.errors["kafka"] = "unreachable"
    else:
        try:
            watch = kafka()
            snap.lag = watch.lag()
            snap.dead_letters = watch.dead_letters(dead_letters_n)
            tail = watch.feed_tail()
            snap.rate_per_s = feed_rate(tail, snap.taken_ms)
            snap.rate_series = rate_series(tail, snap.taken_ms, full=len(tail) >= FEED_TAIL)
            snap.latest = feed_latest(tail, latest_n)
        except Exception as exc:
            log.warning("live panel: kafka: %s", exc)
            snap.errors["kafka"] = _short(exc)
    return snap


def _short(exc: BaseException, limit: int = 200) -> str:
    text = exc.detail if isinstance(exc, Unavailable) else f"{type(exc).__name__}: {exc}"
    return text if len(text) <= limit else text[: limit - 1] + "…"
