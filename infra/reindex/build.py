"""``lookalike reindex``: build the next collection version with another model while search serves.

The build, in order (``lookalike.versions`` has the alias model):

1. resolve the alias (adopting a pre-version collection as ``__v1``) and load the new model;
2. pick the target: an unfinished earlier build for the same model (a crashed run: resumed), else
   the next ``<alias>__vN``; create it;
3. set the build's own consumer group to the topic's end offsets and start a worker in that group
   writing into the target: every event from now on lands there, in order;
4. backfill the bucket into the target (skips unchanged etags, so a rerun embeds nothing twice);
   objects from before step 3 are covered by it, events after by the group;
5. once the group's lag is 0 and a reconcile pass finds nothing to change, ``alter_alias`` and
   restart the local stack's live workers with the model and weights the new version records
   (old-model workers refuse writes once the alias moved); if they do not come up, the alias goes
   back and they restart with the old model (``infra.reindex.switch``);
6. wait until the build's group is caught up again, stop its worker.

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
from infra.reindex.switch import ReindexError, current_target, remember_weights, swap
from lookalike.bus import group_offsets, make_consumer
from lookalike.embedder import TimmEmbedder
from lookalike.index import VectorIndex, count_rows
from lookalike.migration import clear_migration, write_migration
from lookalike.rows import ModelTag
from lookalike.settings import Settings
from lookalike.store import ObjectStore
from lookalike.versions import WEIGHTS_PATH_PROPERTY, Target, Versions, version_of

log = logging.getLogger(__name__)

CATCH_UP_S = 600.0


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
    """The new version's model settings. ``--weights`` wins; ``--no-pretrained`` is random init
    whatever is configured; by default, ``LOOKALIKE_WEIGHTS`` when ``model`` is ``LOOKALIKE_MODEL``
    (a configured checkpoint is that model's, never another's), else timm's pretrained weights."""
    if weights is None and pretrained and model == settings.model:
        weights = settings.weights
    path = Path(weights).expanduser().resolve() if weights is not None else None
    return settings.model_copy(update={"model": model, "weights": path, "pretrained": pretrained})


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
    """The build group's total lag: ``bus.Offsets.lag`` per partition (from its begin when never committed)."""
    return sum(o.lag for o in group_offsets(settings, group).values())


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
        failures = 0
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
                    failures += 1
                    log.log(logging.WARNING if failures == 1 else logging.DEBUG, "progress report skipped: %r", exc)
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
        remember_weights(settings, versions, current)  # the way back (old workers) must exist before a build
        if current.tag == embedder.tag:
            raise ReindexError(f"{alias} ({current.collection}) already holds {model} vectors; nothing to do")
        name, resumed = pick_target(versions, alias, current, embedder.tag)
        target_settings = fresh.model_copy(update={"collection": name})
        index = VectorIndex(target_settings)
        index.open(embedder.tag, create=True)
        index.close()
        if fresh.weights is not None:  # where restarted workers and searchers find the file (lookalike.targets)
            versions.set_property(name, WEIGHTS_PATH_PROPERTY, str(fresh.weights))
        log.info("%s build of %s for %s", "resuming the" if resumed else "starting the", name, model)
        # a group of this run's own: a crashed run's dead member can never hold up this one's join
        group = f"{settings.group}.build.{name}.{uuid.uuid4().hex[:8]}"
        build = Build(settings, target_settings, embedder, group=group)
        try:
            build.start()
            summary = _fill(build, progress)
            summary.previous, summary.resumed = current.collection, resumed
            built = versions.describe(name)
            assert built is not None, f"{name} vanished during its build"
            summary.restarted_workers = swap(settings, versions, current, built)
            build.wait_caught_up(time.monotonic() + CATCH_UP_S)
        finally:
            build.close()
        summary.vectors = count_rows(target_settings)  # after the catch-up: what the swapped-in version holds
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
    return Summary(
        alias=build.settings.collection,
        previous="",
        collection=target.collection,
        model=build.embedder.tag.model,
        weights=build.embedder.tag.weights,
        objects=report.unchanged + report.failed,
        vectors=0,  # counted by ``reindex`` after the swap and its catch-up, not before them
        added=report.added,
        updated=report.updated,
        removed=report.removed,
        unchanged=report.unchanged,
        failed=report.failed,
    )
