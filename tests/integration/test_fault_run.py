"""The fault run: 500+ images, 2 workers, 3 SIGKILLs, a 10 s Milvus outage, the bad-image zoo, overwrites
and deletes, then a full replay from offset 0 with a new group. Afterwards index == bucket (keys and etags),
no duplicate keys, and every bad object is in the dead-letter topic with a reason."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests import zoo
from tests.conftest import open_pipeline
from tests.helpers import (
    CLI,
    PrivateMilvus,
    child,
    dataset_images,
    remove_object,
    topic_messages,
    wait_committed,
    wait_for,
)

pytestmark = pytest.mark.integration

N = 500


@dataclass
class Run:
    """The pipeline under fault and its worker processes (each in its own group, stopped however
    the test ends, by the ExitStack)."""

    p: Any
    procs: contextlib.ExitStack
    tmp_path: Path
    spawned: int = 0

    def spawn(self, group: str | None = None) -> Any:
        self.spawned += 1
        extra = {"LOOKALIKE_GROUP": group} if group else {}
        log = self.tmp_path / f"worker{self.spawned}.log"
        return self.procs.enter_context(child([*CLI, "worker"], {**self.p.settings.as_env(), **extra}, log))

    def count(self) -> int:
        try:
            return len(self.p.indexed())
        except Exception:  # Milvus is down on purpose for part of the run
            return 0


def test_fault_run(servers, embedder, tmp_path):  # type: ignore[no-untyped-def]
    with (
        PrivateMilvus(tmp_path) as milvus,
        open_pipeline(
            servers, embedder, tmp_path, milvus_uri=milvus.uri, batch_size=16, max_object_bytes=8 * 1024 * 1024
        ) as p,
        contextlib.ExitStack() as procs,
    ):
        run, s = Run(p, procs, tmp_path), p.settings
        workers = [run.spawn(), run.spawn()]
        uploaded = _upload(p, dataset_images(N))
        _three_kills(run, workers)
        # Milvus away for 10 s mid-ingest
        wait_for(lambda: run.count() >= 0.55 * N, 300, what="55% indexed")
        milvus.stop()
        time.sleep(10)
        milvus.start()

        errors = uploaded.result(timeout=300)
        assert not errors, errors
        bad = {f"{s.bucket}/{k}" for k in zoo.INVALID}
        expected = {k: e for k, e in p.bucket_state().items() if k not in bad}
        assert len(expected) == N - 25 + len(zoo.VALID)
        wait_for(lambda: run.count() == len(expected) and p.indexed() == expected, 400, what="index == bucket")
        wait_committed(s.kafka_bootstrap, s.group, s.topic, 120)
        for w in workers:
            os.killpg(w.pid, signal.SIGTERM)
            assert w.wait(60) == 0

        # replay the whole topic from offset 0 with a new consumer group: nothing changes
        replay_group = f"{s.group}-replay"
        run.spawn(replay_group)
        wait_committed(s.kafka_bootstrap, replay_group, s.topic, 300)
        assert p.indexed() == expected
        idx = p.index()
        try:
            rows = list(idx.iter_rows(("id",)))
            assert idx.count() == len(rows) == len({r["id"] for r in rows}) == len(expected)  # no duplicate keys
        finally:
            idx.close()
        _check_dead_letters(s, bad)


def _upload(p: Any, images: list[Path]) -> Future[list[BaseException]]:
    """In the background: N images, the zoo, then overwrites and deletes while the backlog is worked off."""
    s, store = p.settings, p.store

    def upload() -> list[BaseException]:
        try:
            with ThreadPoolExecutor(4) as pool:
                list(
                    pool.map(lambda i: store.put_file(s.bucket, f"run/{i:03d}.jpg", images[i], "image/jpeg"), range(N))
                )
                for key, make in {**zoo.VALID, **zoo.INVALID}.items():
                    store.put_bytes(s.bucket, key, make(), "image/jpeg")
                overwrite = lambda i: store.put_file(s.bucket, f"run/{i:03d}.jpg", images[N - 1 - i], "image/jpeg")  # noqa: E731
                list(pool.map(overwrite, range(25)))
                list(pool.map(lambda i: remove_object(store, s.bucket, f"run/{i:03d}.jpg"), range(25, 50)))
        except BaseException as exc:
            return [exc]
        return []

    return ThreadPoolExecutor(1, thread_name_prefix="uploader").submit(upload)


def _three_kills(run: Run, workers: list[Any]) -> None:
    """Three SIGKILLs mid-ingest, each worker replaced at once; the next kill waits until the group
    has settled (replacement ready, progress made) so that each fault is a separate event."""
    for k, fraction in enumerate((0.1, 0.25, 0.4)):
        wait_for(lambda f=fraction: run.count() >= f * N, 300, what=f"{fraction:.0%} indexed")
        victim = workers[k % 2]
        os.killpg(victim.pid, signal.SIGKILL)
        victim.wait(10)
        workers[k % 2] = run.spawn()
        log = run.tmp_path / f"worker{run.spawned}.log"
        wait_for(lambda log=log: "worker ready" in log.read_text(), 120, what="replacement worker ready")
        time.sleep(run.p.settings.session_timeout_ms / 1000 + 2)


def _check_dead_letters(s: Any, bad: set[str]) -> None:
    """Every bad object is in the dead-letter topic with a reason, and nothing else is."""
    letters = {}
    for _, value in topic_messages(s.kafka_bootstrap, s.dead_letter_topic, timeout_s=10):
        doc = json.loads(value)
        letters.setdefault(doc["key"], doc)
    assert bad <= set(letters), f"missing dead letters: {bad - set(letters)}"
    assert all(letters[k]["reason"] for k in bad)
    assert set(letters) <= bad, f"good objects dead-lettered: {set(letters) - bad}"
