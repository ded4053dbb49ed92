"""Changing the model live on the real local stack: versions behind an alias, ``lookalike reindex``.

One scenario (its steps share a few hundred indexed images, which take most of its time):
index with the current model; start a reindex subprocess and SIGKILL it mid-build; rerun it while
searches loop and objects are uploaded, overwritten and deleted; check the swap, the new
collection against the bucket, self-search with the new model, the old worker's refusal to write,
rollback and drop-previous.
"""

from __future__ import annotations

import os
import signal
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from infra.local.status import index_report
from infra.reindex import build, switch
from lookalike.embedder import TimmEmbedder
from lookalike.errors import ModelMismatch
from lookalike.index import VectorIndex
from lookalike.migration import read_migration
from lookalike.search import Searcher
from lookalike.versions import Versions
from tests.conftest import open_pipeline
from tests.helpers import CLI, child, dataset_images, remove_object, wait_for

pytestmark = pytest.mark.integration

NEW_MODEL = "mobilenetv2_050"  # random init: offline and small (mobilenetv3 heads break the dim; see report)
N_IMAGES = 160


@dataclass
class Thread:
    """A background loop whose exceptions the test reads instead of losing them."""

    target: Any
    stop: threading.Event = field(default_factory=threading.Event)
    errors: list[BaseException] = field(default_factory=list)
    thread: threading.Thread | None = None

    def start(self) -> Thread:
        def run() -> None:
            try:
                self.target(self.stop)
            except BaseException as exc:
                self.errors.append(exc)

        self.thread = threading.Thread(target=run, daemon=True)
        self.thread.start()
        return self

    def join(self, timeout: float = 60) -> None:
        self.stop.set()
        assert self.thread is not None
        self.thread.join(timeout)
        assert not self.thread.is_alive(), "thread did not stop"


def _worker(settings: Any, embedder: Any) -> tuple[Thread, Any]:
    from consumers.runner import Worker

    worker = Worker(settings, embedder)
    loop = Thread(lambda stop: worker.run(stop)).start()
    wait_for(lambda: worker.ready.is_set() or loop.errors, 120, what="worker ready")
    assert not loop.errors, loop.errors
    return loop, worker


_READERS: dict[str, VectorIndex] = {}  # one connection per collection read (few connections, not one a poll)


def _reader(settings: Any, collection: str) -> VectorIndex:
    if collection not in _READERS:
        _READERS[collection] = VectorIndex(settings.model_copy(update={"collection": collection}))
    return _READERS[collection]


def _rows(settings: Any, collection: str) -> list[tuple[str, str]]:
    idx = _reader(settings, collection)
    if not idx.exists():
        return []
    return [(r["id"], r["etag"]) for r in idx.iter_rows()]


def _target(settings: Any) -> str:
    target = Versions(_reader(settings, settings.collection)).describe(settings.collection)
    assert target is not None
    return target.collection


@pytest.fixture()
def stage(servers: dict[str, str], embedder: Any, tmp_path: Path) -> Iterator[Any]:
    with open_pipeline(servers, embedder, tmp_path) as p:
        try:
            yield p
        finally:
            for idx in _READERS.values():
                idx.close()
            _READERS.clear()


class GatedEmbedder(TimmEmbedder):
    """The rerun's embedder, held at its first batch until the test has changed the bucket: the
    changes land while the build is filling, however little the killed run left it to do."""

    gate = threading.Event()

    def embed_prepared(self, batch: Any) -> Any:
        assert self.gate.wait(120), "the test never opened the gate"
        return super().embed_prepared(batch)


def test_reindex_swaps_models_live_and_rolls_back(stage: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    s = stage.settings
    images = dataset_images(N_IMAGES + 8)
    live, _ = _worker(s, stage.embedder)
    for i, path in enumerate(images[:N_IMAGES]):
        stage.store.put_file(s.bucket, f"img/{i:03d}.jpg", path, "image/jpeg")
    wait_for(lambda: len(_rows(s, f"{s.collection}__v1")) == N_IMAGES, 180, interval=1, what="first version indexed")
    assert _target(s) == f"{s.collection}__v1"
    query = images[7].read_bytes()
    searcher = Searcher(s, embedder=stage.embedder)
    try:
        before = searcher.search_bytes(query, k=5)
        assert before.model == "mobilenetv2_100" and before.neighbours[0].key == "img/007.jpg"
        _crash_mid_build(s, tmp_path)
        GatedEmbedder.gate.clear()
        monkeypatch.setattr(build, "TimmEmbedder", GatedEmbedder)
        summary, answers = _rerun_while_searching(stage, searcher, query, images)

        assert summary.resumed and summary.collection == f"{s.collection}__v2" and summary.model == NEW_MODEL
        assert _target(s) == f"{s.collection}__v2"
        # every answer came from exactly one model: its collection is the version of that model
        pairs = {(c, m) for c, m, _ in answers}
        assert pairs <= {(f"{s.collection}__v1", "mobilenetv2_100"), (f"{s.collection}__v2", NEW_MODEL)}, pairs
        assert all(key == "img/007.jpg" for c, _, key in answers if c.endswith("__v1"))
        # the new version equals the bucket: keys and etags, no duplicates
        bucket = stage.bucket_state()
        rows = _rows(s, f"{s.collection}__v2")
        assert len(rows) == len({i for i, _ in rows}) and dict(rows) == bucket
        assert summary.vectors == len(bucket) == N_IMAGES + 8 - 3
        after = searcher.search_bytes(images[N_IMAGES + 2].read_bytes(), k=5)
        assert after.model == NEW_MODEL and after.neighbours[0].key == "new/2.jpg"
        assert after.neighbours[0].score == pytest.approx(1.0, abs=1e-3)

        _old_worker_refuses_new_one_takes_over(stage, live, images[20])
        _rollback_and_drop(s, searcher, query, before.neighbours[0].score)
    finally:
        searcher.close()
        live.join()


def _crash_mid_build(s: Any, tmp_path: Path) -> None:
    """A crash mid-build: the target exists with part of the bucket, the alias has not moved."""
    cmd = [*CLI, "reindex", "--model", NEW_MODEL, "--no-pretrained", "--json"]
    with child(cmd, s.as_env(), tmp_path / "reindex-1.log") as proc:
        progress = wait_for(lambda: (read_migration(s) or {}).get("done"), 180, interval=0.1, what="build progress")
        assert proc.poll() is None, "the build finished before it could be killed"
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(30)
    assert 0 < progress < N_IMAGES
    assert _target(s) == f"{s.collection}__v1"
    assert read_migration(s) is None  # the dead builder's progress file is not reported


def _rerun_while_searching(
    stage: Any, searcher: Searcher, query: bytes, images: list[Path]
) -> tuple[Any, list[tuple[str, str, str]]]:
    """The rerun, with searches looping and objects changing during the build; its summary and
    every answer's (collection, model, top key)."""
    s = stage.settings
    answers: list[tuple[str, str, str]] = []

    def search_loop(stop: threading.Event) -> None:
        while not stop.is_set():
            r = searcher.search_bytes(query, k=3)
            answers.append((r.collection, r.model, r.neighbours[0].key if r.neighbours else ""))

    searching = Thread(search_loop).start()
    result: dict[str, Any] = {}
    rerun = Thread(lambda stop: result.update(summary=build.reindex(s, NEW_MODEL, None, False, progress=False)))
    rerun.start()
    try:
        wait_for(lambda: read_migration(s) or rerun.errors, 180, interval=0.1, what="the rerun's build")
        assert not rerun.errors, rerun.errors
        _reported_and_changed(stage, images)
    finally:  # also when an assertion failed: the build must not stay blocked, writing after the test
        GatedEmbedder.gate.set()  # the build goes on: it has not finished filling, so it sees every change
        rerun.join(300)
        searching.join()
    assert not rerun.errors, rerun.errors
    assert not searching.errors, searching.errors
    return result["summary"], answers


def _reported_and_changed(stage: Any, images: list[Path]) -> None:
    """While the rerun's build is held: its migration is reported, then the bucket changes (new
    objects, overwrites, deletes) that the build must pick up."""
    s, store = stage.settings, stage.store
    migration = read_migration(s)
    assert migration is not None
    assert migration["target"] == f"{s.collection}__v2" and migration["model"] == NEW_MODEL
    report = index_report(s)  # what `lookalike stack status --json` prints under "index" while Milvus is up
    assert (report["alias"], report["collection"]) == (s.collection, f"{s.collection}__v1")
    assert report["model"]["model"] == "mobilenetv2_100" and report["vectors"] >= N_IMAGES
    assert report["migration"]["target"] == f"{s.collection}__v2"
    assert {"model", "done", "total", "lag"} <= set(report["migration"])
    for i, path in enumerate(images[N_IMAGES:]):
        store.put_file(s.bucket, f"new/{i}.jpg", path, "image/jpeg")
    for i in range(3):
        store.put_file(s.bucket, f"img/{100 + i:03d}.jpg", images[i], "image/jpeg")  # overwrite
        remove_object(store, s.bucket, f"img/{120 + i:03d}.jpg")


def _old_worker_refuses_new_one_takes_over(stage: Any, live: Thread, image: Path) -> None:
    """The old-model worker refuses to write into the new version; a new-model one takes over."""
    s = stage.settings
    stage.store.put_file(s.bucket, "late.jpg", image, "image/jpeg")
    wait_for(lambda: live.errors, 60, what="the old worker's refusal")
    assert isinstance(live.errors[0], ModelMismatch), live.errors
    assert f"{s.bucket}/late.jpg" not in dict(_rows(s, f"{s.collection}__v1"))
    new_settings = build.new_settings(s, NEW_MODEL, None, False)
    fresh, _ = _worker(new_settings, TimmEmbedder(new_settings))
    try:
        wait_for(lambda: f"{s.bucket}/late.jpg" in dict(_rows(s, f"{s.collection}__v2")), 60, 1, "late object")
    finally:
        fresh.join()
    assert not fresh.errors, fresh.errors


def _rollback_and_drop(s: Any, searcher: Searcher, query: bytes, score_before: float) -> None:
    """Rollback restores the old answers; drop-previous removes the version not served."""
    back = switch.rollback(s)
    assert back["collection"] == f"{s.collection}__v1" and back["was"] == f"{s.collection}__v2"
    again = searcher.search_bytes(query, k=5)
    assert again.model == "mobilenetv2_100" and again.collection == f"{s.collection}__v1"
    assert again.neighbours[0].key == "img/007.jpg"
    assert again.neighbours[0].score == pytest.approx(score_before, abs=1e-4)
    dropped = switch.drop_previous(s)
    assert dropped["dropped"] == [f"{s.collection}__v2"]
    index = VectorIndex(s)
    try:
        assert f"{s.collection}__v2" not in index.collections()
    finally:
        index.close()
