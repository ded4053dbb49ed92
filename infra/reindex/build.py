"""``lookalike reindex``: build the next collection version with another model while search serves.

The build, in order (``lookalike.versions`` has the alias model):

1. resolve the alias (adopting a pre-version collection as ``__v1``) and load the new model;
2. pick the target: an unfinished earlier build for the same model (a crashed run: resumed), else
   the next ``<alias>__vN``; create it;
3. set the build's own consumer group to the topic's end offsets and start a worker in that group
   writing into the target: every event from now on lands there, in order;
4. backfill the bucket into the target (skips unchanged etags, so a rerun embeds nothing twice);
   objects from before step 3 are covered by it, events after by the group;
5. once the group's lag is 0 and a reconcile pass finds nothing to change, ``alter_alias``;
6. restart the local stack's live workers with the new model (old-model workers refuse writes
   once the alias moved), wait until the build's group is caught up again, stop its worker.

Progress goes to a progress bar on stderr and to ``<state_dir>/migration-<alias>.json`` (read by
``stack status`` and the dashboard).
"""

from __future__ import annotations

import logging
import os
import threading
import time
import uuid
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from consumers.backfill import BackfillReport, backfill
from consumers.runner import Worker
from infra.parts import StackError, alive, load_state, save_state, start_part, stop_part, wait_ready
from lookalike.bus import consumer_lag, make_consumer
from lookalike.embedder import TimmEmbedder
from lookalike.errors import LookalikeError
from lookalike.index import VectorIndex
from lookalike.rows import ModelTag
from lookalike.settings import Settings
from lookalike.store import ObjectStore
from lookalike.versions import (
    WEIGHTS_PATH_PROPERTY,
    Target,
    Versions,
    clear_migration,
    read_migration,
    settings_for_tag,
    version_of,
    write_migration,
)

log = logging.getLogger(__name__)

CATCH_UP_S = 600.0


class ReindexError(LookalikeError):
    """The build could not start or finish (nothing was swapped)."""


@dataclass
class Summary:
    alias: str
    previous: str
    collection: str
    model: str
    weights: str
    objects: int
    vectors: int
    added: int = 0
    updated: int = 0
    removed: int = 0
    unchanged: int = 0
    failed: int = 0
    resumed: bool = False
    restarted_workers: int = 0
    seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def text(self) -> str:
        return (
            f"reindex: {self.alias} -> {self.collection} ({self.model}, {self.weights}); was {self.previous}. "
            f"{self.vectors} vectors for {self.objects} objects: {self.added} added, {self.updated} updated, "
            f"{self.removed} removed, {self.unchanged} kept, {self.failed} failed; "
            f"{self.restarted_workers} workers restarted; {self.seconds:.0f} s"
        )


def new_settings(settings: Settings, model: str, weights: Path | None, pretrained: bool) -> Settings:
    return settings.model_copy(update={"model": model, "weights": weights, "pretrained": pretrained})


def current_target(versions: Versions, alias: str) -> Target:
    target = versions.resolve(alias)
    if target is None or target.tag is None:
        raise ReindexError(f"nothing to reindex: collection {alias!r} does not exist yet")
    return target


def pick_target(versions: Versions, alias: str, current: Target, tag: ModelTag) -> tuple[str, bool]:
    """An unfinished build of the same model above the current version (resume), else the next name."""
    now = version_of(current.collection) or 0
    for number, name in reversed(versions.versions(alias)):
        if number <= now:
            break
        found = versions.describe(name)
        if found is not None and found.tag == tag:
            return name, True
    return versions.next_name(alias), False


def seek_to_end(settings: Settings, group: str) -> None:
    """Commit the topic's end offsets for ``group``: its worker starts with events from now on."""
    from kafka import TopicPartition
    from kafka.structs import OffsetAndMetadata

    consumer = make_consumer(settings, group=group)
    try:
        parts = [TopicPartition(settings.topic, p) for p in sorted(consumer.partitions_for_topic(settings.topic) or ())]
        consumer.assign(parts)
        ends = consumer.end_offsets(parts)
        consumer.commit({tp: OffsetAndMetadata(int(ends[tp]), "", -1) for tp in parts})
    finally:
        consumer.close()


def lag(settings: Settings, group: str) -> int:
    return sum(max(0, end - (done if done is not None else 0)) for done, end in consumer_lag(settings, group).values())


class Build:
    """One build: the target's settings, its group's worker thread and the progress file."""

    def __init__(self, settings: Settings, target_settings: Settings, embedder: TimmEmbedder, group: str) -> None:
        self.settings = settings
        self.target = target_settings
        self.embedder = embedder
        self.group = group
        self.stop = threading.Event()
        self.errors: list[BaseException] = []
        self.worker = Worker(target_settings, embedder, group=group)
        self.thread = threading.Thread(target=self._run_worker, name="reindex-worker", daemon=True)
        self.monitor = threading.Thread(target=self._report, name="reindex-progress", daemon=True)
        self.total = 0

    def _run_worker(self) -> None:
        try:
            self.worker.run(self.stop)
        except BaseException as exc:  # surfaced by the main thread
            self.errors.append(exc)
            self.stop.set()

    def start(self) -> None:
        seek_to_end(self.settings, self.group)
        self.thread.start()
        deadline = time.monotonic() + 180
        while not self.worker.ready.is_set():
            self.check()
            if time.monotonic() > deadline:
                raise ReindexError("the build's worker did not join its group within 180 s")
            time.sleep(0.2)
        self.monitor.start()

    def check(self) -> None:
        if self.errors:
            raise ReindexError(f"the build's worker failed: {self.errors[0]!r}") from self.errors[0]

    def _report(self) -> None:
        index = VectorIndex(self.target)
        try:
            while not self.stop.wait(1.0):
                try:
                    progress = {
                        "target": self.target.collection,
                        "model": self.embedder.tag.model,
                        "done": index.count(),
                        "total": self.total,
                        "lag": lag(self.settings, self.group),
                        "pid": os.getpid(),
                    }
                    write_migration(self.settings, progress)
                except Exception as exc:  # progress is informative: a failed read skips one report
                    log.debug("progress report skipped: %s", exc)
        finally:
            index.close()

    def wait_caught_up(self, deadline: float) -> None:
        while lag(self.settings, self.group) > 0:
            self.check()
            if time.monotonic() > deadline:
                raise ReindexError(f"the build's group {self.group} did not catch up in time; nothing swapped")
            time.sleep(0.3)

    def close(self) -> None:
        self.stop.set()
        self.thread.join(60)
        self.monitor.join(10)
        clear_migration(self.settings)


def _add(total: BackfillReport, part: BackfillReport) -> None:
    total.added += part.added
    total.updated += part.updated
    total.removed += part.removed
    total.failed = part.failed  # the last pass's failures are the objects that stay out


def reindex(settings: Settings, model: str, weights: Path | None, pretrained: bool, progress: bool = True) -> Summary:
    """Build the next version for ``model``, swap the alias to it, restart the stack's workers."""
    started = time.monotonic()
    alias = settings.collection
    fresh = new_settings(settings, model, weights, pretrained)
    embedder = TimmEmbedder(fresh)
    embedder.load()
    base = VectorIndex(settings)
    try:
        versions = Versions(base)
        current = current_target(versions, alias)
        if current.tag == embedder.tag:
            raise ReindexError(f"{alias} ({current.collection}) already holds {model} vectors; nothing to do")
        name, resumed = pick_target(versions, alias, current, embedder.tag)
        target_settings = fresh.model_copy(update={"collection": name})
        index = VectorIndex(target_settings)
        index.open(embedder.tag, create=True)
        index.close()
        if weights is not None:
            versions.set_property(name, WEIGHTS_PATH_PROPERTY, str(Path(weights).expanduser().resolve()))
        log.info("%s build of %s for %s", "resuming the" if resumed else "starting the", name, model)
        # a group of this run's own: a crashed run's dead member can never hold up this one's join
        group = f"{settings.group}.build.{name}.{uuid.uuid4().hex[:8]}"
        build = Build(settings, target_settings, embedder, group=group)
        try:
            build.start()
            summary = _fill(build, progress)
            summary.previous, summary.resumed = current.collection, resumed
            versions.point(alias, name)
            summary.restarted_workers = restart_workers(settings, fresh)
            build.wait_caught_up(time.monotonic() + CATCH_UP_S)
        finally:
            build.close()
    finally:
        base.close()
    summary.seconds = round(time.monotonic() - started, 1)
    return summary


def _fill(build: Build, progress: bool) -> Summary:
    """Backfill, then reconcile until the target equals the bucket with the group caught up."""
    target = build.target
    objects = [o for b in target.watched_buckets for o in ObjectStore(target).list(b)]
    build.total = len(objects)
    report = backfill(target, build.embedder, progress=progress)
    build.check()
    deadline = time.monotonic() + CATCH_UP_S
    while True:
        build.wait_caught_up(deadline)
        again = backfill(target, build.embedder, progress=False)
        _add(report, again)
        report.unchanged = again.unchanged
        if again.added + again.updated + again.removed == 0 and lag(build.settings, build.group) == 0:
            break
        if time.monotonic() > deadline:
            raise ReindexError("the new collection did not settle to equal the bucket in time; nothing swapped")
    index = VectorIndex(target)
    try:
        vectors = index.count()
    finally:
        index.close()
    return Summary(
        alias=build.settings.collection,
        previous="",
        collection=target.collection,
        model=build.embedder.tag.model,
        weights=build.embedder.tag.weights,
        objects=report.unchanged + report.failed,
        vectors=vectors,
        added=report.added,
        updated=report.updated,
        removed=report.removed,
        unchanged=report.unchanged,
        failed=report.failed,
    )


def restart_workers(settings: Settings, model_settings: Settings, timeout: float = 180) -> int:
    """Restart the local stack's running workers with ``model_settings``' model; how many."""
    state = load_state(settings)
    workers = [p for name, p in sorted(state.items()) if name.startswith("worker-") and alive(p)]
    for part in workers:
        stop_part(part)
        start_part(model_settings, part, dict(os.environ))
        state[part.name] = part
        save_state(settings, state)
    for part in workers:
        try:
            wait_ready(model_settings, part, timeout)
        except StackError as exc:
            raise ReindexError(f"the alias moved but {part.name} did not restart: {exc}") from exc
    return len(workers)


def rollback(settings: Settings) -> dict[str, Any]:
    """Point the alias back at the version before its current target; restart the workers."""
    index = VectorIndex(settings)
    try:
        versions = Versions(index)
        current = current_target(versions, settings.collection)
        now = version_of(current.collection) or 0
        older = [name for number, name in versions.versions(settings.collection) if number < now]
        if not older:
            raise ReindexError(f"{current.collection} has no previous version to roll back to")
        previous = versions.describe(older[-1])
        if previous is None or previous.tag is None:
            raise ReindexError(f"{older[-1]} records no model")
        path = previous.properties.get(WEIGHTS_PATH_PROPERTY)
        model_settings = settings_for_tag(settings, previous.tag, path)
        versions.point(settings.collection, previous.collection)
    finally:
        index.close()
    restarted = restart_workers(settings, model_settings)
    return {
        "alias": settings.collection,
        "collection": previous.collection,
        "model": previous.tag.model,
        "was": current.collection,
        "restarted_workers": restarted,
    }


def drop_previous(settings: Settings) -> dict[str, Any]:
    """Drop every version the alias does not point at (refused while a build runs)."""
    if read_migration(settings) is not None:
        raise ReindexError("a reindex build is running; drop previous versions after it finished")
    index = VectorIndex(settings)
    try:
        versions = Versions(index)
        current = current_target(versions, settings.collection)
        dropped = [name for _, name in versions.versions(settings.collection) if name != current.collection]
        for name in dropped:
            index._call(index.client.drop_collection, name)
    finally:
        index.close()
    return {"alias": settings.collection, "collection": current.collection, "dropped": dropped}
