"""Backfill: reconcile the index with the bucket, for objects whose events never came.

Notifications can be off (a bucket filled before the stack existed, a webhook that was down past
MinIO's queue). Backfill lists the bucket and the index, indexes what is missing or changed (by
etag), removes vectors whose objects are gone, and leaves the rest alone. It covers every watched
bucket (``bucket`` and ``buckets``). It uses the same planner, embed and write stages as the
workers, so it decides from the bucket's current state and never writes bytes older than what is
indexed: running it beside live workers is safe.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from tqdm import tqdm

from consumers.budget import PixelBudget, available_cores
from consumers.dedupe import Dedupe
from consumers.dlq import DeadLetterWriter
from consumers.embed import embed
from consumers.planner import Pending, Planner
from consumers.ports import Message
from consumers.writer import Writer
from lookalike.embedder import Embedder
from lookalike.events import ObjectEvent, object_id
from lookalike.index import IndexedState, VectorIndex
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

    def summary(self) -> str:
        verb = "would be " if self.dry_run else ""
        return (
            f"backfill{' (dry run)' if self.dry_run else ''}: {self.added} {verb}added, {self.updated} {verb}updated, "
            f"{self.removed} {verb}removed, {self.unchanged} unchanged, {self.failed} failed"
        )


def _chunks(items: Sequence[Any], size: int) -> Iterator[Sequence[Any]]:
    for i in range(0, len(items), size):
        yield items[i : i + size]


def backfill(
    settings: Settings, embedder: Embedder, dry_run: bool = False, prefix: str = "", progress: bool = True
) -> BackfillReport:
    """Make the index equal the bucket (under ``prefix``); returns what was done."""
    embedder.load()
    store = ObjectStore(settings)
    index = VectorIndex(settings)
    if index.exists() or not dry_run:
        index.open(embedder.tag, create=True)
    try:
        buckets = settings.watched_buckets
        bucket: dict[str, ObjectInfo] = {
            object_id(o.bucket, o.key): o for name in buckets for o in store.list(name, prefix)
        }
        scopes = tuple(object_id(name, prefix) for name in buckets)
        indexed: dict[str, IndexedState] = {}
        if index.exists():
            for row in index.iter_rows(("id", "etag", "last_modified")):
                if str(row["id"]).startswith(scopes):
                    indexed[row["id"]] = IndexedState(row["etag"], int(row["last_modified"]))
        changed = [o for oid, o in bucket.items() if oid not in indexed or indexed[oid].etag != o.etag]
        gone = sorted(oid for oid in indexed if oid not in bucket)
        report = BackfillReport(unchanged=len(bucket) - len(changed), dry_run=dry_run)
        log.info(
            "backfill: %d objects, %d vectors; %d to index, %d to remove",
            len(bucket),
            len(indexed),
            len(changed),
            len(gone),
        )
        if dry_run:
            report.added = sum(1 for o in changed if object_id(o.bucket, o.key) not in indexed)
            report.updated = len(changed) - report.added
            report.removed = len(gone)
            return report
        _index_objects(settings, store, index, embedder, changed, indexed, report, progress)
        _remove_gone(store, index, gone, report, settings.duplicate_threshold)
        return report
    finally:
        index.close()


def _index_objects(
    settings: Settings,
    store: ObjectStore,
    index: VectorIndex,
    embedder: Embedder,
    objects: list[ObjectInfo],
    indexed: dict[str, IndexedState],
    report: BackfillReport,
    progress: bool,
) -> None:
    if not objects:
        return
    planner = Planner(settings, store, index, embedder, max(2, available_cores()), PixelBudget(settings.decode_budget))
    dlq = DeadLetterWriter(settings)
    writer = Writer(index, dlq, flush_rows=512, dedupe=Dedupe(index, settings.duplicate_threshold))
    try:
        with tqdm(total=len(objects), unit="img", desc="backfill", disable=not progress) as bar:
            for chunk in _chunks(objects, max(1, settings.batch_size)):
                pending = {}
                for o in chunk:
                    ev = ObjectEvent("created", o.bucket, o.key, None, o.size, None, o.last_modified_ms)
                    pending[ev.id] = Pending(ev, Message("backfill", -1, -1, ev.id, b""))
                work = planner.plan_events(pending)
                writer.write(work, embed(work, embedder))
                for upsert in work.upserts:
                    if upsert.row.id in indexed:
                        report.updated += 1
                    else:
                        report.added += 1
                report.failed += len(work.dead)
                report.unchanged += work.skipped
                bar.update(len(chunk))
    finally:
        writer.flush()
        dlq.close()
        planner.close()


def _remove_gone(
    store: ObjectStore, index: VectorIndex, gone: list[str], report: BackfillReport, threshold: float
) -> None:
    for chunk in _chunks(gone, 256):
        still_gone = []
        for oid in chunk:
            bucket, _, key = oid.partition("/")
            if store.stat(bucket, key) is None:  # re-created since the listing? then it stays
                still_gone.append(oid)
        index.upsert(Dedupe(index, threshold).mark([], still_gone))  # copies of them: marks re-checked
        index.delete(still_gone)
        report.removed += len(still_gone)
