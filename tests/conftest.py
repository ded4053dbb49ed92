"""Test tiers: ``tests/unit`` needs nothing (``test_unit_tier.py`` checks it); ``tests/model`` loads
real timm models and ../shared (marker ``model``); ``tests/integration`` gets the real local stack.

The servers (moto S3, Tansu, Milvus Lite) start once per session on free ports; every test gets its
own bucket, topic, consumer group, collection and bridge, so tests cannot see each other's events.
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.helpers import CLI, WEIGHTS, child, free_port, unique, wait_for


@pytest.fixture(scope="session")
def servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """moto, Tansu and Milvus Lite, started once for the session and always stopped."""
    from infra import stack
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
        yield addresses
    finally:
        stack.down(settings, say=lambda _: None)


def make_settings(servers: dict[str, str], **overrides: object):  # type: ignore[no-untyped-def]
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
    return Settings(_env_file=None, **base).scoped(unique("t"), **names)  # type: ignore[arg-type]


@pytest.fixture(scope="session")
def embedder(servers: dict[str, str]):  # type: ignore[no-untyped-def]
    """The real model, loaded once per session and shared by in-process workers and searches."""
    from lookalike.embedder import TimmEmbedder

    emb = TimmEmbedder(make_settings(servers))
    emb.load()
    return emb


@dataclass
class Pipeline:
    """One test's slice of the stack: its bucket, topic, group, collection, bridge and workers."""

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
def open_pipeline(servers: dict[str, str], embedder: object, tmp_path: Path, **overrides: object) -> Iterator[Pipeline]:
    """Fresh bucket/topic/group/collection, a bridge subprocess, and room for workers; all torn down."""
    from infra import stack
    from lookalike.index import VectorIndex

    settings = make_settings(servers, **overrides)
    stack.bootstrap(settings)
    env = settings.as_env()
    p = Pipeline(settings, embedder, tmp_path)
    with child([*CLI, "bridge"], env, tmp_path / "bridge.log"):
        stack.wait_ready(settings, stack.bridge_part(settings), 30)
        try:
            yield p
        finally:
            p.stop_workers()
            with contextlib.suppress(Exception):
                VectorIndex(settings).drop()
    assert not p.errors, f"worker thread failed: {p.errors!r}"


@pytest.fixture()
def pipeline(servers: dict[str, str], embedder: object, tmp_path: Path) -> Iterator[Pipeline]:
    with open_pipeline(servers, embedder, tmp_path) as p:
        yield p


def pytest_configure(config: pytest.Config) -> None:
    import logging

    # pymilvus logs a traceback per failed RPC; outages are injected on purpose here
    logging.getLogger("pymilvus").setLevel(logging.CRITICAL)
