"""The pipeline half of ``lookalike eval``: index a dataset through the real stack, query it, clean up.

The eval never touches the user's index. It scopes its own bucket, topics, consumer group and
collection (``Settings.scoped("eval-<random>")``), and runs its own SeaweedFS (whose filer publishes
to the eval's topic: ``infra.local.stack.s3_of_its_own``; its data lives in the eval's temporary
directory) and worker processes (``start_workers``) with those settings. It times from the first
upload until every image is searchable (or dead-lettered), then queries each test image through
``Searcher``, the code path of ``lookalike search``. Unless asked to keep them, it stops its
processes and deletes its collection, topics and temporary directory (objects included) afterwards.

When the configured stack does not answer, ``infra.local.stack.private_stack`` starts a throwaway one on
free ports in a temporary state directory, so that ``lookalike eval --dataset DIR`` works anywhere.
"""

from __future__ import annotations

import logging
import shutil
import tempfile
import time
import uuid
from collections.abc import Callable, Mapping
from pathlib import Path

from infra.evaluation.dataset import Dataset, EvalError, K, Report, judge, make_report
from infra.evaluation.measures import Ranked
from infra.local import stack
from lookalike.embedder import Embedder, TimmEmbedder
from lookalike.imaging import BadImage
from lookalike.settings import Settings

log = logging.getLogger(__name__)

Say = Callable[[str], None]


def eval_settings(settings: Settings, run_id: str, state_dir: Path) -> Settings:
    """The configured stack's addresses and model, with names of the eval's own."""
    return settings.scoped(f"eval-{run_id}", metrics_port=0, state_dir=state_dir)


class EvalRun:
    """One eval's S3 server and bucket, topics, collection and workers; ``close`` removes them all."""

    def __init__(self, settings: Settings, env: Mapping[str, str], workers: int = 1, say: Say = print) -> None:
        self.run_id = uuid.uuid4().hex[:8]
        self.tmp = Path(tempfile.mkdtemp(prefix=f"lookalike-eval-{self.run_id}-"))
        self.settings = eval_settings(settings, self.run_id, self.tmp)
        self.env = dict(env)
        self.n_workers = max(1, workers)
        self.say = say
        self.parts: list[stack.Part] = []

    # ---- set-up
    def start(self, timeout: float = 300.0) -> None:
        """Start its SeaweedFS, bootstrap the eval's names, start its workers, wait until all are ready."""
        from lookalike.bus import ensure_topics

        self.settings, s3 = stack.s3_of_its_own(self.settings)
        s = self.settings
        ensure_topics(s)  # before SeaweedFS publishes its first event
        stack.start_part(s, s3, self.env)
        self.parts.append(s3)  # recorded at once, so that close() stops whatever did start
        stack.wait_ready(s, s3, 60)
        stack.bootstrap(s)
        self.parts += stack.start_workers(s, self.env, self.n_workers)
        for part in self.parts[1:]:
            stack.wait_ready(s, part, timeout)
        self.say(
            f"eval run {self.run_id}: bucket '{s.bucket}' on {s.s3_endpoint}, topic '{s.topic}', collection "
            f"'{s.collection}', {self.n_workers} worker(s) ready (logs in {self.tmp / 'logs'})"
        )

    # ---- ingest
    def ingest(self, dataset: Dataset, timeout: float, concurrency: int = 8) -> tuple[int, int, float]:
        """Upload the training images; wait until each is indexed or dead-lettered.

        Returns (indexed, dead-lettered, seconds from the first upload until all were searchable).
        """
        from lookalike.index import VectorIndex
        from lookalike.store import ObjectStore
        from producers.upload import UploadItem, upload

        s = self.settings
        items = [UploadItem(it.path, it.key, _content_type(it.path)) for it in dataset.train]
        store = ObjectStore(s)
        index = VectorIndex(s)
        dlq = _DeadLetterCounter(s)
        try:
            start = time.perf_counter()
            upload(store, s.bucket, items, concurrency=concurrency, progress=False)
            self.say(f"uploaded {len(items)} images in {time.perf_counter() - start:.1f} s; waiting for the index")
            deadline = time.monotonic() + timeout
            last_said = time.monotonic()
            indexed = dead = 0
            while True:
                indexed = index.count() if index.exists() else 0
                dead = dlq.count()
                if indexed + dead >= len(items):
                    break
                self._check_alive()
                now = time.monotonic()
                if now > deadline:
                    raise EvalError(
                        f"only {indexed} of {len(items)} images indexed ({dead} dead-lettered) "
                        f"after {timeout:.0f} s; see the logs in {self.tmp / 'logs'}"
                    )
                if now - last_said > 15:
                    self.say(f"  {indexed}/{len(items)} indexed")
                    last_said = now
                time.sleep(0.25)
            seconds = time.perf_counter() - start
        finally:
            dlq.close()
            index.close()
        if dead:
            log.warning("%d training images were dead-lettered (topic %s)", dead, s.dead_letter_topic)
        return indexed, dead, seconds

    def _check_alive(self) -> None:
        try:
            stack.check_alive(self.parts)
        except stack.StackError as exc:
            raise EvalError(str(exc)) from exc

    # ---- queries
    def query(self, dataset: Dataset, embedder: Embedder) -> tuple[list[Ranked], list[float]]:
        """Every test image through ``Searcher.search_bytes``, as ``lookalike search`` does."""
        from lookalike.search import Searcher

        labels = dataset.labels()
        counts = dataset.relevant_counts()
        results: list[Ranked] = []
        query_ms: list[float] = []
        searcher = Searcher(self.settings, embedder=embedder)
        try:
            for q in dataset.test:
                try:
                    result = searcher.search_bytes(q.path.read_bytes(), k=K)
                except BadImage as exc:
                    log.warning("skipping query %s: %s", q.path, exc)
                    continue
                query_ms.append(result.total_ms)
                results.append(judge([n.key for n in result.neighbours], q, labels, counts))
        finally:
            searcher.close()
        return results, query_ms

    # ---- tear-down
    def close(self, keep: bool = False) -> None:
        """Stop the eval's processes and, unless ``keep``, delete everything it created."""
        for part in reversed(self.parts):  # workers one at a time, then S3
            stack.stop_part(part)
        self.parts.clear()
        s = self.settings
        if keep:
            self.say(
                f"kept: bucket '{s.bucket}', topics '{s.topic}', '{s.dead_letter_topic}' and '{s.change_feed_topic}', "
                f"collection '{s.collection}', logs in {self.tmp}"
            )
            return
        for what, step in (("collection", self._drop_collection), ("topics", self._delete_topics)):
            try:
                step()
            except Exception as exc:  # one failed clean-up step must not skip the others
                log.warning("eval clean-up: could not delete the %s: %s", what, exc)
        shutil.rmtree(self.tmp, ignore_errors=True)  # the eval's SeaweedFS data (its bucket) with it

    def _drop_collection(self) -> None:
        from lookalike.index import VectorIndex

        index = VectorIndex(self.settings)
        try:
            index.drop()
        finally:
            index.close()

    def _delete_topics(self) -> None:
        from kafka import KafkaAdminClient

        admin = KafkaAdminClient(bootstrap_servers=self.settings.kafka_bootstrap, request_timeout_ms=10_000)
        try:
            existing = set(admin.list_topics())
            topics = (self.settings.topic, self.settings.dead_letter_topic, self.settings.change_feed_topic)
            doomed = [t for t in topics if t in existing]
            if doomed:
                admin.delete_topics(doomed)
        finally:
            admin.close()


class _DeadLetterCounter:
    """How many dead letters the eval's workers have published (end offsets of its dead-letter topic)."""

    def __init__(self, settings: Settings) -> None:
        from kafka import KafkaConsumer

        self.topic = settings.dead_letter_topic
        self.consumer = KafkaConsumer(bootstrap_servers=settings.kafka_bootstrap, request_timeout_ms=10_000)
        self.checked = 0.0
        self.value = 0

    def count(self) -> int:
        from kafka import TopicPartition

        if time.monotonic() - self.checked < 2.0:
            return self.value
        self.checked = time.monotonic()
        partitions = self.consumer.partitions_for_topic(self.topic) or set()
        ends = self.consumer.end_offsets([TopicPartition(self.topic, p) for p in partitions])
        self.value = int(sum(ends.values()))
        return self.value

    def close(self) -> None:
        self.consumer.close()


def _content_type(path: Path) -> str:
    import mimetypes

    return mimetypes.guess_type(path.name)[0] or "application/octet-stream"


def run_pipeline(
    settings: Settings,
    dataset: Dataset,
    env: Mapping[str, str],
    *,
    embedder: Embedder | None = None,
    workers: int = 1,
    keep: bool = False,
    timeout: float = 1800.0,
    stack_label: str = "configured",
    say: Say = print,
) -> Report:
    """Index ``dataset.train`` through the stack at ``settings``' addresses and query ``dataset.test``."""
    embedder = embedder or TimmEmbedder(settings)
    run = EvalRun(settings, env, workers=workers, say=say)
    try:
        run.start()
        embedder.load()  # the query model; loaded before the clock starts, like the workers'
        indexed, dead, seconds = run.ingest(dataset, timeout)
        say(f"indexed {indexed} images in {seconds:.1f} s; querying {len(dataset.test)} test images")
        results, query_ms = run.query(dataset, embedder)
    finally:
        run.close(keep=keep)
    return make_report(
        "pipeline",
        results,
        model=embedder.tag.model,
        dim=embedder.tag.dim,
        n_indexed=indexed,
        index_seconds=seconds,
        query_ms=query_ms,
        n_dead=dead,
        stack=stack_label,
    )
