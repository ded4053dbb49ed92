"""The mapper stage: decide what each event needs, fetch and decode only that.

Work is decided per object id from the *current* state of the bucket, not from the event alone:
a create whose object was since overwritten indexes the newer bytes, a create whose object is gone
removes the vector, and a removal whose key was re-created keeps it. Stale or repeated events
therefore never roll the index back, whatever order they arrive in. A repeated event whose etag is
already indexed is skipped before any download, and bytes older (by Last-Modified) than what is
indexed are never written over it.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from consumers.dlq import DeadLetter
from consumers.metrics import EVENTS, timed
from consumers.reader import Message
from lookalike.embedder import Embedder
from lookalike.errors import BadInput
from lookalike.events import BadEvent, ObjectEvent, parse_message
from lookalike.imaging import decode_image
from lookalike.index import IndexedState, IndexRow, VectorIndex
from lookalike.settings import Settings
from lookalike.store import ObjectStore

log = logging.getLogger(__name__)


@dataclass
class Work:
    """What one batch asks of the index."""

    upserts: list[tuple[IndexRow, Any]] = field(default_factory=list)  # row (vector unset) + prepared tensor
    deletes: list[str] = field(default_factory=list)
    dead: list[DeadLetter] = field(default_factory=list)
    skipped: int = 0


@dataclass(frozen=True)
class Pending:
    """An event and where it came from (for dead letters)."""

    event: ObjectEvent
    source: Message


def latest_events(messages: Sequence[Message], dead: list[DeadLetter]) -> dict[str, Pending]:
    """Parse messages; keep the last event per object id (messages come in partition order)."""
    latest: dict[str, Pending] = {}
    for msg in messages:
        try:
            events = parse_message(msg.value)
        except BadEvent as exc:
            dead.append(DeadLetter(msg.key, None, f"bad event: {exc}", msg.topic, msg.partition, msg.offset))
            EVENTS.labels("dead").inc()
            continue
        for ev in events:
            latest[ev.id] = Pending(ev, msg)
    return latest


class Mapper:
    """Turns events into index work, fetching and decoding in a thread pool."""

    def __init__(
        self, settings: Settings, store: ObjectStore, index: VectorIndex, embedder: Embedder, threads: int = 4
    ) -> None:
        self.settings = settings
        self.store = store
        self.index = index
        self.embedder = embedder
        self.pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="fetch")

    def plan(self, messages: Sequence[Message]) -> Work:
        dead: list[DeadLetter] = []
        latest = latest_events(messages, dead)
        work = self.plan_events(latest)
        work.dead[:0] = dead
        return work

    def plan_events(self, latest: Mapping[str, Pending]) -> Work:
        """Fetch/decode what needs it; ``Unavailable`` propagates so the caller retries the whole batch."""
        work = Work()
        if not latest:
            return work
        with timed("lookup"):
            indexed = self.index.states(list(latest))
        todo: list[Pending] = []
        for oid, pending in latest.items():
            ev = pending.event
            state = indexed.get(oid)
            if ev.kind == "created" and ev.etag and state is not None and state.etag == ev.etag:
                work.skipped += 1
                EVENTS.labels("skipped").inc()
            else:
                todo.append(pending)
        results = list(self.pool.map(lambda p: self._load(p, indexed.get(p.event.id)), todo))
        for pending, (outcome, payload) in zip(todo, results, strict=True):
            oid = pending.event.id
            if outcome == "upsert":
                work.upserts.append(payload)
            elif outcome == "skip":
                work.skipped += 1
            elif outcome == "gone":
                if oid in indexed:
                    work.deletes.append(oid)
            elif outcome == "dead":
                work.dead.append(payload)
                if oid in indexed:  # the bucket no longer holds the image that vector shows
                    work.deletes.append(oid)
            EVENTS.labels(outcome).inc()
        return work

    def _load(self, pending: Pending, state: IndexedState | None) -> tuple[str, Any]:
        """Fetch and decode one object, as it is now."""
        ev = pending.event
        limit = self.settings.max_object_bytes
        if ev.kind == "created" and ev.size is not None and ev.size > limit:
            return "dead", self._dead(pending, ev.etag, ev.size, f"object is {ev.size} bytes, limit {limit}")
        try:
            with timed("fetch"):
                got = self.store.get(ev.bucket, ev.key)
        except BadInput as exc:
            return "dead", self._dead(pending, ev.etag, ev.size, str(exc))
        if got is None:
            return "gone", None
        info, data = got
        if state is not None and (info.etag == state.etag or info.last_modified_ms < state.last_modified):
            return "skip", None
        try:
            with timed("decode"):
                image = decode_image(data, max_pixels=self.settings.max_image_pixels)
                prepared = self.embedder.prepare(image)
        except BadInput as exc:
            return "dead", self._dead(pending, info.etag, info.size, str(exc))
        except Exception as exc:  # a decoder bug on hostile bytes is still this object's problem
            log.exception("unexpected error decoding %s", ev.id)
            return "dead", self._dead(pending, info.etag, info.size, f"decode failed: {type(exc).__name__}: {exc}")
        row = IndexRow(
            id=ev.id,
            vector=None,  # type: ignore[arg-type]  # filled after the batched model call
            etag=info.etag,
            size=info.size,
            content_type=info.content_type or ev.content_type or "",
            event_time=ev.event_time_ms or info.last_modified_ms,
            last_modified=info.last_modified_ms,
        )
        return "upsert", (row, prepared)

    @staticmethod
    def _dead(pending: Pending, etag: str | None, size: int | None, reason: str) -> DeadLetter:
        m = pending.source
        return DeadLetter(pending.event.id, etag, reason, m.topic, m.partition, m.offset, size)

    def close(self) -> None:
        self.pool.shutdown(wait=True, cancel_futures=True)
