"""The fault run: 500+ images, 2 workers, 3 SIGKILLs, a 10 s Milvus outage, the bad-image zoo, overwrites
and deletes, then a full replay from offset 0 with a new group. Afterwards index == bucket (keys and etags),
no duplicate keys, and every bad object is in the dead-letter topic with a reason."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import threading
import time
from concurrent.futures import ThreadPoolExecutor

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


def test_fault_run(servers, embedder, tmp_path):  # type: ignore[no-untyped-def]
    with (
        PrivateMilvus(tmp_path) as milvus,
        open_pipeline(
            servers, embedder, tmp_path, milvus_uri=milvus.uri, batch_size=16, max_object_bytes=8 * 1024 * 1024
        ) as p,
        contextlib.ExitStack() as procs,
    ):
        s = p.settings
        env = s.as_env()
        spawned = 0

        def spawn(group: str | None = None):  # type: ignore[no-untyped-def]
            nonlocal spawned
            spawned += 1
            extra = {"LOOKALIKE_GROUP": group} if group else {}
            return procs.enter_context(child([*CLI, "worker"], {**env, **extra}, tmp_path / f"worker{spawned}.log"))

        def count() -> int:
            try:
                return len(p.indexed())
            except Exception:  # Milvus is down on purpose for part of the run
                return 0

        workers = [spawn(), spawn()]
        images = dataset_images(N)
        store = p.store
        upload_done = threading.Event()
        upload_errors: list[BaseException] = []

        def upload() -> None:
            try:
                with ThreadPoolExecutor(4) as pool:
                    list(
                        pool.map(
                            lambda i: store.put_file(s.bucket, f"run/{i:03d}.jpg", images[i], "image/jpeg"), range(N)
                        )
                    )
                    for key, make in {**zoo.VALID, **zoo.INVALID}.items():
                        store.put_bytes(s.bucket, key, make(), "image/jpeg")
                    # overwrites with other images, and deletes, while the backlog is still being worked off
                    list(
                        pool.map(
                            lambda i: store.put_file(s.bucket, f"run/{i:03d}.jpg", images[N - 1 - i], "image/jpeg"),
                            range(25),
                        )
                    )
                    list(pool.map(lambda i: remove_object(store, s.bucket, f"run/{i:03d}.jpg"), range(25, 50)))
            except BaseException as exc:
                upload_errors.append(exc)
            finally:
                upload_done.set()

        uploader = threading.Thread(target=upload, daemon=True)
        uploader.start()

        # three SIGKILLs mid-ingest, each worker replaced at once; the next kill waits until the group has
        # settled (replacement ready, progress made) so that each fault is a separate event
        for k, fraction in enumerate((0.1, 0.25, 0.4)):
            wait_for(lambda f=fraction: count() >= f * N, 300, what=f"{fraction:.0%} indexed")
            victim = workers[k % 2]
            os.killpg(victim.pid, signal.SIGKILL)
            victim.wait(10)
            workers[k % 2] = spawn()
            log = tmp_path / f"worker{spawned}.log"
            wait_for(lambda log=log: "worker ready" in log.read_text(), 120, what="replacement worker ready")
            time.sleep(s.session_timeout_ms / 1000 + 2)

        # Milvus away for 10 s mid-ingest
        wait_for(lambda: count() >= 0.55 * N, 300, what="55% indexed")
        milvus.stop()
        time.sleep(10)
        milvus.start()

        uploader.join(300)
        assert upload_done.is_set() and not upload_errors, upload_errors
        bad = {f"{s.bucket}/{k}" for k in zoo.INVALID}
        expected = {k: e for k, e in p.bucket_state().items() if k not in bad}
        assert len(expected) == N - 25 + len(zoo.VALID)
        wait_for(lambda: count() == len(expected) and p.indexed() == expected, 400, what="index == bucket")
        wait_committed(s.kafka_bootstrap, s.group, s.topic, 120)
        for w in workers:
            os.killpg(w.pid, signal.SIGTERM)
            assert w.wait(60) == 0

        # replay the whole topic from offset 0 with a new consumer group: nothing changes
        replay_group = f"{s.group}-replay"
        spawn(replay_group)
        wait_committed(s.kafka_bootstrap, replay_group, s.topic, 300)
        indexed = p.indexed()
        assert indexed == expected
        idx = p.index()
        rows = list(idx.iter_rows(("id",)))
        assert idx.count() == len(rows) == len({r["id"] for r in rows}) == len(expected)  # no duplicate keys
        idx.close()

        letters = {}
        for _, value in topic_messages(s.kafka_bootstrap, s.dead_letter_topic, timeout_s=10):
            doc = json.loads(value)
            letters.setdefault(doc["key"], doc)
        assert bad <= set(letters), f"missing dead letters: {bad - set(letters)}"
        assert all(letters[k]["reason"] for k in bad)
        assert set(letters) <= bad, f"good objects dead-lettered: {set(letters) - bad}"
