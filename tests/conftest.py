"""Test tiers: ``tests/unit`` needs nothing (``test_unit_tier.py`` checks it); ``tests/model`` loads
real timm models and ../shared (marker ``model``); ``tests/integration`` gets the real local stack.

The servers (SeaweedFS S3, Tansu, Milvus Lite) start once per session on free ports; every test gets
its own bucket, topic, consumer group and collection. A SeaweedFS filer publishes every bucket's events
to one topic, so each pipeline also gets a SeaweedFS of its own (``stack.s3_of_its_own``, about as
quick to start as the bridge it replaces): tests cannot see each other's events.
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from infra.local.parts import Part
from tests.helpers import WEIGHTS, free_port, true_end_offsets, unique, wait_for


@pytest.fixture(scope="session")
def servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """SeaweedFS, Tansu and Milvus Lite, started once for the session and always stopped."""
    from infra.local import stack
    from lookalike.settings import Settings

    state = tmp_path_factory.mktemp("stack")
    addresses = {
        "s3_endpoint": f"http://127.0.0.1:{free_port()}",
        "kafka_bootstrap": f"127.0.0.1:{free_port()}",
        "milvus_uri": f"http://127.0.0.1:{free_port()}",
        "state_dir": str(state),
    }
    settings = Settings(_env_file=None, **addresses)  # type: ignore[arg-type]
    try:
        stack.up(settings, dict(os.environ), workers=0, dashboard=False, bridge=False, say=lambda _: None)
        _SPARES[str(state)] = SpareS3(addresses, state / "spares")
        yield addresses
    finally:
        spare = _SPARES.pop(str(state), None)
        if spare is not None:
            spare.close()
        stack.down(settings, say=lambda _: None)


class SpareS3:
    """The next pipeline's SeaweedFS, started while the current test runs.

    A filer's topic is fixed when it starts, and starting one takes about 3 s (its master's Raft
    start-up, then volume, filer and S3), so each one is started a test ahead, for the scope name the
    next pipeline then takes: a pipeline waits for nothing but its readiness check."""

    def __init__(self, servers: dict[str, str], root: Path) -> None:
        self.servers = servers
        self.root = root
        self.next: tuple[str, str, Part] | None = None

    def take(self) -> tuple[str, str, Part]:
        """(scope name, S3 endpoint, started part) for a pipeline; the one after it starts now."""
        from infra.local import stack

        ready, self.next = self.next or self._start(), None
        try:
            self.next = self._start()
        except BaseException:
            stack.stop_part(ready[2], grace=0)
            raise
        return ready

    def _start(self) -> tuple[str, str, Part]:
        from infra.local import stack

        name = unique("t")
        settings, part = stack.s3_of_its_own(make_settings(self.servers, name=name, state_dir=self.root / name))
        stack.ensure_topics(settings)  # before SeaweedFS publishes its first event
        stack.start_part(settings, part, {})
        return name, settings.s3_endpoint, part

    def close(self) -> None:
        from infra.local import stack

        if self.next is not None:
            stack.stop_part(self.next[2], grace=0)
            self.next = None


_SPARES: dict[str, SpareS3] = {}  # by the session's state dir (tests/milvus_server starts none)


def make_settings(servers: dict[str, str], name: str | None = None, **overrides: object):  # type: ignore[no-untyped-def]
    from lookalike.settings import Settings

    base: dict[str, object] = {
        **servers,
        "bridge_port": free_port(),
        "bridge_token": "test-token",
        "model": "mobilenetv2_100",
        "weights": str(WEIGHTS) if WEIGHTS.exists() else None,
        "pretrained": WEIGHTS.exists(),
        "batch_size": 16,
    }
    base.update(overrides)
    names = {k: base.pop(k) for k in ("bucket", "topic", "dlq_topic", "group", "collection") if k in base}
    # names of the test's own (Settings.scoped), unless the test chose some itself
    return Settings(_env_file=None, **base).scoped(name or unique("t"), **names)  # type: ignore[arg-type]


@pytest.fixture(scope="session")
def embedder(servers: dict[str, str]):  # type: ignore[no-untyped-def]
    """The real model, loaded once per session and shared by in-process workers and searches."""
    from lookalike.embedder import TimmEmbedder

    emb = TimmEmbedder(make_settings(servers))
    emb.load()
    return emb


@dataclass
class Pipeline:
    """One test's slice of the stack: its S3 server, bucket, topic, group, collection and workers."""

    settings: object
    embedder: object
    tmp: Path
    stops: list[threading.Event] = field(default_factory=list)
    threads: list[threading.Thread] = field(default_factory=list)
    errors: list[BaseException] = field(default_factory=list)

    @property
    def store(self):  # type: ignore[no-untyped-def]
        from lookalike.store import ObjectStore

        return ObjectStore(self.settings)  # type: ignore[arg-type]

    def index(self):  # type: ignore[no-untyped-def]
        from lookalike.index import VectorIndex

        idx = VectorIndex(self.settings)  # type: ignore[arg-type]
        wait_for(idx.exists, 60, what="collection")
        idx.open(self.embedder.tag, create=False)  # type: ignore[attr-defined]
        return idx

    def start_worker(self, **kwargs: object):  # type: ignore[no-untyped-def]
        """An in-process worker thread sharing the session's model; returns once it is ready."""
        from consumers.runner import Worker

        stop = threading.Event()
        worker = Worker(self.settings, self.embedder, **kwargs)  # type: ignore[arg-type]

        def run() -> None:
            try:
                worker.run(stop)
            except BaseException as exc:
                self.errors.append(exc)
                raise

        thread = threading.Thread(target=run, daemon=True, name="worker")
        thread.start()
        self.stops.append(stop)
        self.threads.append(thread)
        wait_for(lambda: worker.ready.is_set() or self.errors, 120, what="worker ready")
        assert not self.errors, self.errors
        return worker

    def stop_workers(self) -> None:
        for stop in self.stops:
            stop.set()
        for thread in self.threads:
            thread.join(60)
        self.stops.clear()
        self.threads.clear()

    def settled_ends(self) -> dict[int, int]:
        """The topic's end offsets once the bucket's creation events have landed (the filer sends
        them asynchronously): the same on two readings 0.3 s apart. Taken before a test's own events,
        for ``nothing_committed``'s ``since``."""
        s = self.settings
        ends = true_end_offsets(s.kafka_bootstrap, s.topic)  # type: ignore[attr-defined]
        while True:
            time.sleep(0.3)
            again = true_end_offsets(s.kafka_bootstrap, s.topic)  # type: ignore[attr-defined]
            if again == ends:
                return ends
            ends = again

    def indexed(self) -> dict[str, str]:
        """id -> etag of everything in the collection."""
        idx = self.index()
        try:
            return {r["id"]: r["etag"] for r in idx.iter_rows()}
        finally:
            idx.close()

    def bucket_state(self) -> dict[str, str]:
        s = self.settings
        return {f"{s.bucket}/{o.key}": o.etag for o in self.store.list(s.bucket)}  # type: ignore[attr-defined]


@contextlib.contextmanager
def open_pipeline(
    servers: dict[str, str], embedder: object, tmp_path: Path, events_topic: str | None = None, **overrides: object
) -> Iterator[Pipeline]:
    """Fresh bucket/topic/group/collection, a SeaweedFS of its own, and room for workers; all torn down.

    ``events_topic``: where that SeaweedFS publishes instead of the pipeline's topic, for a test
    that wants only its own messages on the topic (the S3 API cannot turn a filer's events off)."""
    from infra.local import stack
    from lookalike.index import VectorIndex

    spare = _SPARES.get(servers["state_dir"])
    settings = make_settings(servers, **{"state_dir": tmp_path, **overrides})
    own_names = settings.topic == f"lookalike.{settings.bucket}" and "s3_endpoint" not in overrides
    if spare is not None and events_topic is None and own_names:
        name, endpoint, s3 = spare.take()  # started a test ago, for this name
        settings = make_settings(servers, name=name, **{"state_dir": tmp_path, "s3_endpoint": endpoint, **overrides})
    else:  # its own topic, chosen here: started now
        settings, s3 = stack.s3_of_its_own(settings)
        s3_settings = settings.model_copy(update={"topic": events_topic or settings.topic})  # its filer's topic
        stack.ensure_topics(s3_settings)  # before SeaweedFS publishes its first event
        stack.start_part(s3_settings, s3, {})
    p = Pipeline(settings, embedder, tmp_path)
    try:
        stack.wait_ready(settings, s3, 60)
        stack.bootstrap(settings)
        yield p
    finally:
        p.stop_workers()
        with contextlib.suppress(Exception):
            VectorIndex(settings).drop()
        stack.stop_part(s3, grace=0)  # throwaway data: nothing to wait for
    assert not p.errors, f"worker thread failed: {p.errors!r}"


@pytest.fixture()
def pipeline(servers: dict[str, str], embedder: object, tmp_path: Path) -> Iterator[Pipeline]:
    with open_pipeline(servers, embedder, tmp_path) as p:
        yield p


def pytest_configure(config: pytest.Config) -> None:
    import logging

    # pymilvus logs a traceback per failed RPC; outages are injected on purpose here
    logging.getLogger("pymilvus").setLevel(logging.CRITICAL)
