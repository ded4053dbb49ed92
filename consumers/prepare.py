"""The plan stage: decide what each event needs against the truth, fetch and decode only that.

Work is decided per object id from the *current* state of the bucket, not from the event alone:
a create whose object was since overwritten indexes the newer bytes, a create whose object is gone
removes the vector, and a removal whose key was re-created keeps it. A repeated event whose etag is
already indexed is skipped before any download, and bytes older (by Last-Modified) than what is
indexed are never written over it.

"What is indexed" must include what is *about to be*: the plan for batch N+1 runs while batch N is
still being embedded and written. So the planner keeps an overlay of its own planned-but-not-yet-
durable writes per id (``InFlight``) and consults it before the index. Without it, PUT then DELETE
in consecutive batches would leave a ghost (the delete trusted a stale "absent"), and DELETE then
re-PUT of the same bytes would be skipped as "already indexed". Deletes for objects that are gone
or refused are issued unconditionally: they are idempotent, so no state needs trusting for them.

Containment: whatever goes wrong with one message or object (a malformed event, a foreign bucket,
a key the client refuses, an unexpected exception in a decoder) becomes a dead letter naming the
exception; only ``Unavailable`` (S3 or Milvus down) escapes, so the caller retries the batch.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from kafka.structs import TopicPartition

from consumers.batch import Delete, Pending, Upsert, Work, dead_letter, reason_of, refused
from consumers.bisect import bisect
from consumers.budget import PixelBudget, probe_pixels
from consumers.dlq import DeadLetter
from consumers.metrics import EVENTS, timed
from consumers.ports import IndexStates, Message, ObjectSource
from lookalike.embedder import Embedder
from lookalike.errors import Unavailable
from lookalike.events import BadEvent, parse_message
from lookalike.imaging import content_type_of, decode_image
from lookalike.rows import IndexedState, IndexRow
from lookalike.settings import Settings

log = logging.getLogger(__name__)


class Looked(dict[str, IndexedState]):
    """Index states by id, and the ids whose look-up Milvus refused (dead-lettered, not planned)."""

    def __init__(self, states: Mapping[str, IndexedState]) -> None:
        super().__init__(states)
        self.refused: set[str] = set()


_DELETED = None  # an overlay entry meaning "a delete of this id is in flight"


class InFlight:
    """Planned writes not yet durable, per id: the planner's view of what the index is about to hold.

    Entries are added when a batch is planned and released when its write is durable, or when its
    partition is revoked and the batch is dropped. Thread-safe: the plan and write stages share it.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._by_id: dict[str, list[tuple[int, TopicPartition, IndexedState | None]]] = {}

    def record(self, work: Work) -> None:
        with self._lock:
            for u in work.upserts:
                state = IndexedState(u.row.etag, u.row.last_modified)
                self._by_id.setdefault(u.row.id, []).append((work.batch_id, u.source.tp, state))
            for d in work.deletes:
                self._by_id.setdefault(d.id, []).append((work.batch_id, d.source.tp, _DELETED))

    def overlay(self, indexed: Mapping[str, IndexedState], ids: Sequence[str]) -> dict[str, IndexedState]:
        """``indexed`` as it will be once every planned write has landed (for these ids)."""
        with self._lock:
            out = dict(indexed)
            for oid in ids:
                entries = self._by_id.get(oid)
                if not entries:
                    continue
                latest = entries[-1][2]
                if latest is _DELETED:
                    out.pop(oid, None)
                else:
                    out[oid] = latest
            return out

    def release(self, batch_id: int) -> None:
        """The batch is durable (or dropped): the index itself now tells the truth for its ids."""
        self._drop(lambda b, tp: b == batch_id)

    def forget(self, partitions: set[TopicPartition]) -> None:
        """The partitions were revoked: their planned writes will never happen here."""
        self._drop(lambda b, tp: tp in partitions)

    def __len__(self) -> int:
        with self._lock:
            return sum(len(v) for v in self._by_id.values())

    def _drop(self, match: Any) -> None:
        with self._lock:
            for oid in list(self._by_id):
                kept = [e for e in self._by_id[oid] if not match(e[0], e[1])]
                if kept:
                    self._by_id[oid] = kept
                else:
                    del self._by_id[oid]


def latest_events(messages: Sequence[Message], watched: Sequence[str], dead: list[DeadLetter]) -> dict[str, Pending]:
    """Parse messages; keep the last event per object id (messages come in partition order).

    A message that cannot be parsed, whatever the exception, and an event for a bucket this worker
    does not watch become dead letters; they never stop the batch. A server-wide feed (SeaweedFS's
    filer publishes every bucket) is the exception: its other buckets are skipped and counted.
    """
    latest: dict[str, Pending] = {}
    for msg in messages:
        try:
            events = parse_message(msg.value, key=msg.key)
        except Exception as exc:  # containment: one message never stops the worker
            reason = f"bad event: {exc}" if isinstance(exc, BadEvent) else f"bad event: {reason_of(exc)}"
            dead.append(dead_letter(msg, reason))
            EVENTS.labels("dead").inc()
            continue
        for ev in events:
            if ev.bucket not in watched and ev.server_wide:
                EVENTS.labels("other_bucket").inc()
                continue
            if ev.bucket not in watched:
                dead.append(dead_letter(msg, f"bucket not watched: {ev.bucket}", key=ev.id))
                EVENTS.labels("dead").inc()
                continue
            latest[ev.id] = Pending(ev, msg)
    return latest


class PrepareStage:
    """Turns a batch of messages into index work, fetching and decoding in a thread pool."""

    def __init__(
        self,
        settings: Settings,
        store: ObjectSource,
        index: IndexStates,
        embedder: Embedder,
        threads: int = 4,
        budget: PixelBudget | None = None,
    ) -> None:
        self.settings = settings
        self.store = store
        self.index = index
        self.embedder = embedder
        self.watched = settings.watched_buckets
        self.budget = budget or PixelBudget(settings.decode_budget)
        self.inflight = InFlight()
        self.pool = ThreadPoolExecutor(max_workers=max(1, threads), thread_name_prefix="fetch")
        self._batches = 0

    def prepare(self, messages: Sequence[Message], epochs: Mapping[TopicPartition, int] | None = None) -> Work:
        """Plan a batch and record its writes as in flight; ``Unavailable`` propagates (nothing recorded)."""
        dead: list[DeadLetter] = []
        latest = latest_events(messages, self.watched, dead)
        self._batches += 1
        work = self.prepare_events(latest, Work(list(messages), batch_id=self._batches, epochs=dict(epochs or {})))
        work.dead[:0] = dead
        self.inflight.record(work)
        return work

    def prepare_events(self, latest: Mapping[str, Pending], work: Work | None = None) -> Work:
        """Decide, fetch and decode what needs it, against the index overlaid with writes in flight."""
        work = work if work is not None else Work([p.source for p in latest.values()])
        if not latest:
            return work
        indexed = self._lookup(latest, work)
        todo: list[Pending] = []
        for oid, pending in latest.items():
            ev = pending.event
            state = indexed.get(oid)
            if oid in indexed.refused:
                continue
            if ev.kind == "created" and ev.etag and state is not None and state.etag == ev.etag:
                work.skipped += 1
                EVENTS.labels("skipped").inc()
            else:
                todo.append(pending)
        results = list(self.pool.map(lambda p: self._contained(p, indexed.get(p.event.id)), todo))
        for pending, (outcome, payload) in zip(todo, results, strict=True):
            if outcome == "upsert":
                work.upserts.append(payload)
            elif outcome == "skip":
                work.skipped += 1
            elif outcome == "gone":  # unconditional: idempotent, and the state may be stale
                work.deletes.append(Delete(pending.event.id, pending.source))
            elif outcome == "dead":  # the bucket holds no image that a vector of this id could show
                work.dead.append(payload)
                work.deletes.append(Delete(pending.event.id, pending.source))
            EVENTS.labels(outcome).inc()
        return work

    def _lookup(self, latest: Mapping[str, Pending], work: Work) -> Looked:
        """What the index holds (overlaid with writes in flight) for each id, in one call per batch.

        An id the index refuses to look up alone (found by ``bisect``) becomes a dead letter and is
        left out of the plan: nothing can be decided, or written, for it."""
        with timed("lookup"):
            outcome = bisect(list(latest), self.index.states, "lookup")
        states: dict[str, IndexedState] = {}
        for part in outcome.results:
            states.update(part)
        looked = Looked(self.inflight.overlay(states, list(latest)))
        for oid, exc in outcome.failed:
            pending = latest[oid]
            work.dead.append(refused(pending.source, oid, exc))
            looked.refused.add(oid)
            EVENTS.labels("dead").inc()
        return looked

    def _contained(self, pending: Pending, state: IndexedState | None) -> tuple[str, Any]:
        """``_load``, with any failure but an outage turned into this object's dead letter."""
        try:
            return self._load(pending, state)
        except Unavailable:
            raise
        except Exception as exc:  # containment: one object never stops the worker
            log.debug("object %s refused", pending.event.id, exc_info=True)
            ev = pending.event
            return "dead", dead_letter(pending.source, reason_of(exc), ev.id, ev.etag, ev.size)

    def _load(self, pending: Pending, state: IndexedState | None) -> tuple[str, Any]:
        """Fetch and decode one object, as it is now."""
        ev = pending.event
        limit = self.settings.max_object_bytes
        if ev.kind == "created" and ev.size is not None and ev.size > limit:
            reason = f"object is {ev.size} bytes, limit {limit}"
            return "dead", dead_letter(pending.source, reason, ev.id, ev.etag, ev.size)
        with timed("fetch"):
            got = self.store.get(ev.bucket, ev.key)
        if got is None:
            return "gone", None
        info, data = got
        if state is not None and (info.etag == state.etag or info.last_modified_ms < state.last_modified):
            return "skip", None
        try:
            with self.budget.hold(probe_pixels(data)), timed("decode"):
                image = decode_image(
                    data, max_pixels=self.settings.max_image_pixels, min_side=self.embedder.decode_size
                )
                prepared = self.embedder.prepare(image)
        except Exception as exc:  # the bytes read are refused: name the version that was read
            return "dead", dead_letter(pending.source, reason_of(exc), ev.id, info.etag, info.size)
        row = IndexRow(
            id=ev.id,
            vector=None,  # type: ignore[arg-type]  # filled after the batched model call
            etag=info.etag,
            size=info.size,
            content_type=content_type_of(data, info.content_type or ev.content_type),
            event_time=ev.event_time_ms or info.last_modified_ms,
            last_modified=info.last_modified_ms,
        )
        return "upsert", Upsert(row, prepared, pending.source, replaces=state is not None)

    def close(self) -> None:
        self.pool.shutdown(wait=True, cancel_futures=True)
