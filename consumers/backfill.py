"""Backfill: reconcile the index with the bucket, for objects whose events never came.

Notifications can be off (a bucket filled before the stack existed, a webhook that was down past
MinIO's queue). Backfill lists the bucket and the index, indexes what is missing or changed (by
etag), removes vectors whose objects are gone, and leaves the rest alone. It covers every watched
bucket (``bucket`` and ``buckets``). It uses the same prepare, embed and write stages as the
workers, so it decides from the bucket's current state and never writes bytes older than what is
indexed: running it beside live workers is safe.

It streams: the bucket listing (S3 lists keys in order) and the index's ids (read in ordered
primary-key ranges) are merged as two sorted streams, ``chunk`` ids at a time, so memory does not
grow with the bucket; ``--prefix`` is applied by both servers (S3 prefix, Milvus id range). After
each chunk the last id done and the counts so far go to a checkpoint in the state dir; an outage
retries from there with the worker's backoff, and a run after a crash resumes from it.
"""

from __future__ import annotations

import hashlib
import json
import logging
import sys
import threading
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from functools import partial
from pathlib import Path
from typing import Any

from consumers.batch import Delete, Pending, Work
from consumers.dlq import DeadLetterWriter
from consumers.embed import embed
from consumers.feed import FeedWriter
from consumers.ports import Message
from consumers.retry import retry_until
from consumers.stages import build_stages
from lookalike.embedder import Embedder
from lookalike.events import ObjectEvent, object_id, split_id
from lookalike.filters import prefix_upper_bound
from lookalike.index import VectorIndex
from lookalike.rows import IndexedState
from lookalike.settings import Settings
from lookalike.store import ObjectInfo, ObjectStore

log = logging.getLogger(__name__)


@dataclass
class BackfillReport:
    added: int = 0
    updated: int = 0
    removed: int = 0
    unchanged: int = 0
    failed: int = 0
    dry_run: bool = False

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def add(self, other: BackfillReport) -> None:
        for name in ("added", "updated", "removed", "unchanged", "failed"):
            setattr(self, name, getattr(self, name) + getattr(other, name))

    def summary(self) -> str:
        verb = "would be " if self.dry_run else ""
        return (
            f"backfill{' (dry run)' if self.dry_run else ''}: {self.added} {verb}added, {self.updated} {verb}updated, "
            f"{self.removed} {verb}removed, {self.unchanged} unchanged, {self.failed} failed"
        )


CHUNK = 1000


def merged(objects: Iterator[ObjectInfo], rows: Iterator[dict[str, Any]]) -> Iterator[Entry]:
    """Merge two id-sorted streams: each id once, with its object (or None) and its indexed state."""
    obj = next(objects, None)
    row = next(rows, None)
    while obj is not None or row is not None:
        oid = object_id(obj.bucket, obj.key) if obj is not None else None
        rid = str(row["id"]) if row is not None else None
        if rid is None or (oid is not None and oid < rid):
            yield Entry(str(oid), obj, None)
            obj = next(objects, None)
        elif oid is None or rid < oid:
            yield Entry(rid, None, _state(row))
            row = next(rows, None)
        else:
            yield Entry(oid, obj, _state(row))
            obj, row = next(objects, None), next(rows, None)


@dataclass(frozen=True)
class Entry:
    id: str
    obj: ObjectInfo | None
    state: IndexedState | None


def _state(row: dict[str, Any] | None) -> IndexedState | None:
    return None if row is None else IndexedState(str(row["etag"]), int(row["last_modified"]))


def _batched(entries: Iterator[Entry], size: int) -> Iterator[list[Entry]]:
    chunk: list[Entry] = []
    for e in entries:
        chunk.append(e)
        if len(chunk) >= size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


class Checkpoint:
    """The last id done and the counts so far, per collection and scope, in the state dir."""

    def __init__(self, settings: Settings, prefix: str) -> None:
        scope = hashlib.sha1(json.dumps([settings.watched_buckets, prefix]).encode()).hexdigest()[:12]
        self.path = Path(settings.state_dir, "backfill", f"{settings.collection}-{scope}.json")

    def load(self) -> tuple[str, BackfillReport]:
        try:
            doc = json.loads(self.path.read_text())
            return str(doc["after"]), BackfillReport(**doc["report"])
        except (OSError, ValueError, KeyError, TypeError):
            return "", BackfillReport()

    def save(self, after: str, report: BackfillReport) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps({"after": after, "report": report.to_dict()}))
        tmp.replace(self.path)  # atomic: a crash leaves the previous checkpoint

    def clear(self) -> None:
        self.path.unlink(missing_ok=True)


def backfill(
    settings: Settings,
    embedder: Embedder,
    dry_run: bool = False,
    prefix: str = "",
    progress: bool = True,
    chunk: int = CHUNK,
    stop: threading.Event | None = None,
) -> BackfillReport:
    """Make the index equal the bucket (under ``prefix``); returns what was done.

    Resumes from the checkpoint a crashed run left (a dry run neither reads nor writes one).
    """
    if not dry_run:  # a dry run only compares etags: no model (about 1 GB of memory) is loaded
        embedder.load()
    store = ObjectStore(settings)
    index = VectorIndex(settings)
    checkpoint = Checkpoint(settings, prefix)
    after, report = ("", BackfillReport()) if dry_run else checkpoint.load()
    if after:
        log.info("backfill: resuming after %s", after)
    report.dry_run = dry_run
    try:
        if not dry_run:
            index.open(embedder.tag, create=True)
        elif index.exists() and (tag := index.stored_tag()) is not None:
            index.open(tag, create=False)  # as it is, whatever model made it
        stages = None if dry_run else _Stages(settings, store, index, embedder)
        try:
            for bucket in sorted(settings.watched_buckets, key=lambda b: f"{b}/"):  # in id order
                if after and after >= object_id(bucket, "\U0010ffff"):
                    continue  # a bucket the checkpoint is past
                state = {"after": after}
                done = retry_until(
                    partial(_pass, store, index, stages, bucket, prefix, state, report, chunk, checkpoint, progress),
                    stop or threading.Event(),
                )
                if done is None:
                    return report
                after = state["after"]
        finally:
            if stages is not None:
                stages.close()
        if not dry_run:
            checkpoint.clear()
        return report
    finally:
        index.close()


def _pass(
    store: ObjectStore,
    index: VectorIndex,
    stages: _Stages | None,
    bucket: str,
    prefix: str,
    state: dict[str, str],
    report: BackfillReport,
    chunk: int,
    checkpoint: Checkpoint,
    progress: bool,
) -> bool:
    """One bucket from ``state["after"]`` on, chunk by chunk; an outage raises, to be retried from there."""
    scope = object_id(bucket, prefix)
    after = state["after"] if state["after"] >= scope else ""
    start_key = split_id(after)[1] if after.startswith(f"{bucket}/") else ""
    objects = store.list(bucket, prefix, start_after=start_key, page=chunk)
    resume = after.startswith(f"{bucket}/")
    rows = index.iter_rows(
        ("id", "etag", "last_modified"), batch=chunk, lo=after if resume else scope, hi=prefix_upper_bound(scope)
    )
    rows = (r for r in rows if str(r["id"]) > after) if resume else rows  # ``id > x`` for the resumed range
    rows = rows if index.exists() else iter(())
    for entries in _batched(merged(objects, rows), chunk):
        part = BackfillReport(dry_run=report.dry_run)
        _reconcile(entries, stages, part)
        report.add(part)
        state["after"] = entries[-1].id
        if stages is not None:
            checkpoint.save(state["after"], report)
        if progress:
            print(f"backfill: up to {state['after']}: {report.summary()}", file=sys.stderr)
    return True


def _reconcile(entries: list[Entry], stages: _Stages | None, part: BackfillReport) -> None:
    """One chunk: index what is missing or changed, remove what is gone (re-checked), count the rest."""
    changed = [e for e in entries if e.obj is not None and (e.state is None or e.state.etag != e.obj.etag)]
    gone = [e.id for e in entries if e.obj is None]
    part.unchanged += sum(1 for e in entries if e.obj is not None) - len(changed)
    if stages is None:  # dry run
        part.added = sum(1 for e in changed if e.state is None)
        part.updated = len(changed) - part.added
        part.removed = len(gone)
        return
    known = {e.id for e in changed if e.state is not None}
    stages.index_objects([e.obj for e in changed if e.obj is not None], known, part)
    stages.remove_gone(gone, part)


def _source(oid: str) -> Message:
    """Backfill's work comes from a listing, not a topic: dead letters name ``backfill`` as their source."""
    return Message("backfill", -1, -1, oid, b"")


class _Stages:
    """The worker's prepare, embed and write stages (``build_stages``), opened once for the whole run."""

    def __init__(self, settings: Settings, store: ObjectStore, index: VectorIndex, embedder: Embedder) -> None:
        self.settings = settings
        self.store = store
        self.dlq = DeadLetterWriter(settings)
        self.feed = FeedWriter(settings)  # what backfill indexes and removes shows up in the feed too
        self.stages = build_stages(settings, embedder, store, index, self.dlq, self.feed)

    def index_objects(self, objects: list[ObjectInfo], known: set[str], report: BackfillReport) -> None:
        step = max(1, self.settings.batch_size)
        for i in range(0, len(objects), step):
            pending = {}
            for o in objects[i : i + step]:
                ev = ObjectEvent("created", o.bucket, o.key, None, o.size, None, o.last_modified_ms)
                pending[ev.id] = Pending(ev, _source(ev.id))
            work, rows = embed(self.stages.prepare.prepare_events(pending), self.stages.embedder)
            self.stages.writer.write(work, rows)
            for upsert in work.upserts:
                if upsert.row.id in known:
                    report.updated += 1
                else:
                    report.added += 1
            report.failed += len(work.dead)
            report.unchanged += work.skipped

    def remove_gone(self, gone: list[str], report: BackfillReport) -> None:
        """Remove the vectors of objects still gone (re-checked: re-created since the listing stays).

        Through the writer, as the worker removes: the marks of their copies are re-checked, and
        the removals reach the change feed."""
        still_gone = [oid for oid in gone if self.store.stat(*split_id(oid)) is None]
        if still_gone:
            self.stages.writer.write(Work([], deletes=[Delete(oid, _source(oid)) for oid in still_gone]), [])
        report.removed += len(still_gone)

    def close(self) -> None:
        self.stages.writer.flush()
        self.stages.close()
        self.feed.close()
        self.dlq.close()
