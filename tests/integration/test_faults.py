"""Faults injected against the real local stack, one at a time: the index must still equal the bucket."""

from __future__ import annotations

import json
import os
import signal
import time
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np
import pytest
from kafka import KafkaProducer

from consumers.backfill import backfill
from consumers.metrics import EVENTS
from infra.local import stack
from lookalike.events import ObjectEvent
from tests import zoo
from tests.conftest import open_pipeline
from tests.helpers import (
    CLI,
    PrivateMilvus,
    child,
    dataset_images,
    free_port,
    nothing_committed,
    remove_object,
    topic_messages,
    wait_committed,
    wait_for,
)

pytestmark = pytest.mark.integration


def _publish(settings, events: list[ObjectEvent]) -> None:  # type: ignore[no-untyped-def]
    producer = KafkaProducer(bootstrap_servers=settings.kafka_bootstrap, acks="all")
    for ev in events:
        value = {"EventName": ev.name, "Key": ev.id, "Records": [ev.to_record()]}
        producer.send(settings.topic, key=ev.id.encode(), value=json.dumps(value).encode())
    producer.flush()
    producer.close()


def test_failure_means_no_commit(servers, embedder, tmp_path):  # type: ignore[no-untyped-def]
    """Milvus goes away after the worker started: it retries, commits nothing, then catches up."""
    with PrivateMilvus(tmp_path) as milvus, open_pipeline(servers, embedder, tmp_path, milvus_uri=milvus.uri) as p:
        s = p.settings
        polled: list[int] = []
        since = p.settled_ends()  # the bucket's creation events, which the worker may commit
        p.start_worker(on_batch=lambda batch: polled.append(len(batch)))
        milvus.stop()
        images = dataset_images(5)
        for i, img in enumerate(images):
            p.store.put_file(s.bucket, f"k{i}.jpg", img, "image/jpeg")
        wait_for(lambda: sum(polled) >= 1, 60, what="worker polled the events")
        time.sleep(3)  # several retries happen meanwhile
        assert nothing_committed(s.kafka_bootstrap, s.group, s.topic, since), "committed during the outage"
        milvus.start()
        wait_for(lambda: len(p.indexed()) == 5, 90, what="catch-up after the outage")
        wait_committed(s.kafka_bootstrap, s.group, s.topic, 30)
        p.stop_workers()


def test_bad_image_zoo_goes_to_dead_letters_and_valid_ones_are_indexed(servers, embedder, tmp_path):  # type: ignore[no-untyped-def]
    with open_pipeline(servers, embedder, tmp_path, max_object_bytes=8 * 1024 * 1024) as p:
        s = p.settings
        p.start_worker()
        etags = {}
        for key, make in {**zoo.VALID, **zoo.INVALID}.items():
            etags[key] = p.store.put_bytes(s.bucket, key, make(), "image/jpeg")
        etags["zoo/oversized.jpg"] = p.store.put_bytes(s.bucket, "zoo/oversized.jpg", os.urandom(9 * 1024 * 1024))
        p.store.put_bytes(s.bucket, "zoo/upright.jpg", zoo.jpeg(), "image/jpeg")
        want = {f"{s.bucket}/{k}" for k in [*zoo.VALID, "zoo/upright.jpg"]}
        wait_for(lambda: set(p.indexed()) == want, 120, what="valid zoo indexed")

        bad = {*zoo.INVALID, "zoo/oversized.jpg"}

        def dead() -> dict[str, dict]:
            out = {}
            for _, value in topic_messages(s.kafka_bootstrap, s.dead_letter_topic):
                doc = json.loads(value)
                out[doc["key"].split("/", 1)[1]] = doc
            return out if set(out) >= bad else {}

        letters = wait_for(dead, 60, what="dead letters for every bad object")
        for key in bad:
            doc = letters[key]
            assert doc["reason"] and doc["etag"] == etags[key] and doc["source_offset"] >= 0, doc
        assert "limit" in letters["zoo/oversized.jpg"]["reason"]
        assert "zero-byte" in letters["zoo/zero.jpg"]["reason"]

        # EXIF orientation applied: the rotated photo's vector is the upright photo's
        idx = p.index()
        rows = {
            r["id"]: np.asarray(r["vector"], dtype=np.float32)
            for r in idx.get([f"{s.bucket}/zoo/exif_rotated.jpg", f"{s.bucket}/zoo/upright.jpg"], with_vectors=True)
        }
        idx.close()
        assert float(rows[f"{s.bucket}/zoo/exif_rotated.jpg"] @ rows[f"{s.bucket}/zoo/upright.jpg"]) > 0.97


def test_stale_repeated_and_orphan_events_do_not_change_the_index(pipeline):  # type: ignore[no-untyped-def]
    s = pipeline.settings
    a, b = dataset_images(2)
    pipeline.start_worker()
    old = pipeline.store.put_file(s.bucket, "k.jpg", a, "image/jpeg")
    wait_for(lambda: pipeline.indexed().get(f"{s.bucket}/k.jpg") == old, 60, what="first version")
    new = pipeline.store.put_file(s.bucket, "k.jpg", b, "image/jpeg")
    wait_for(lambda: pipeline.indexed().get(f"{s.bucket}/k.jpg") == new, 60, what="second version")

    skipped_before = EVENTS.labels("skipped")._value.get()
    _publish(
        s,
        [
            ObjectEvent("created", s.bucket, "k.jpg", old, 1, None, 1, None, "s3:ObjectCreated:Put"),  # stale replay
            ObjectEvent("removed", s.bucket, "k.jpg", None, None, None, 2, None, "s3:ObjectRemoved:Delete"),  # stale
            ObjectEvent("created", s.bucket, "never-existed.jpg", "e", 1, None, 3, None, "s3:ObjectCreated:Put"),
            ObjectEvent("created", s.bucket, "k.jpg", new, 1, None, 4, None, "s3:ObjectCreated:Put"),  # repeat
        ],
    )
    wait_for(lambda: EVENTS.labels("skipped")._value.get() > skipped_before, 60, what="repeat skipped")
    time.sleep(1)
    assert pipeline.indexed() == {f"{s.bucket}/k.jpg": new}
    assert not any(
        k == f"{s.bucket}/never-existed.jpg" for k, _ in topic_messages(s.kafka_bootstrap, s.dead_letter_topic)
    )


def test_backfill_reconciles_bucket_and_index(pipeline):  # type: ignore[no-untyped-def]
    """Objects put while no worker ran get indexed; vectors of removed objects go; etags decide."""
    s = pipeline.settings
    store = pipeline.store
    imgs = dataset_images(6)
    pipeline.start_worker()
    for i in range(3):
        store.put_file(s.bucket, f"live/{i}.jpg", imgs[i], "image/jpeg")
    wait_for(lambda: len(pipeline.indexed()) == 3, 60, what="live objects")
    pipeline.stop_workers()

    # no worker runs from here on: what follows reaches the topic but only backfill acts on it
    for i in range(3, 6):
        store.put_file(s.bucket, f"quiet/{i}.jpg", imgs[i], "image/jpeg")
    store.put_bytes(s.bucket, "quiet/broken.jpg", b"nope", "image/jpeg")
    remove_object(store, s.bucket, "live/0.jpg")
    store.put_file(s.bucket, "live/1.jpg", imgs[5], "image/jpeg")  # overwritten while off

    dry = backfill(s, pipeline.embedder, dry_run=True, progress=False)
    assert (dry.added, dry.updated, dry.removed, dry.unchanged) == (4, 1, 1, 1)
    assert len(pipeline.indexed()) == 3  # a dry run changes nothing

    report = backfill(s, pipeline.embedder, progress=False)
    assert (report.added, report.updated, report.removed, report.unchanged, report.failed) == (3, 1, 1, 1, 1)
    want = {k: e for k, e in pipeline.bucket_state().items() if not k.endswith("broken.jpg")}
    assert pipeline.indexed() == want

    again = backfill(s, pipeline.embedder, progress=False)
    assert (again.added, again.updated, again.removed, again.failed) == (0, 0, 0, 1)


def test_sigterm_finishes_the_batch_commits_and_leaves(servers, embedder, tmp_path):  # type: ignore[no-untyped-def]
    with open_pipeline(servers, embedder, tmp_path, batch_size=8) as p:
        s = p.settings
        env = s.as_env()
        images = dataset_images(40)
        log = tmp_path / "worker.log"
        since = p.settled_ends()
        with child([*CLI, "worker"], env, log) as proc:
            for i, img in enumerate(images):
                p.store.put_file(s.bucket, f"t/{i:02d}.jpg", img, "image/jpeg")
            wait_for(lambda: len(p.indexed()) >= 8, 120, what="some progress")
            os.killpg(proc.pid, signal.SIGTERM)
            assert proc.wait(30) == 0
        text = log.read_text()
        assert "received SIGTERM" in text and "worker stopped" in text
        assert not nothing_committed(s.kafka_bootstrap, s.group, s.topic, since), "SIGTERM must commit what was written"
        with child([*CLI, "worker"], env, tmp_path / "worker2.log"):
            wait_for(lambda: len(p.indexed()) == 40, 180, what="the rest after restart")
            wait_committed(s.kafka_bootstrap, s.group, s.topic, 60)


def test_bridge_answers_503_when_kafka_is_down(tmp_path: Path) -> None:
    from lookalike.bus import ensure_topics
    from lookalike.settings import Settings

    kafka_port = free_port()
    settings = Settings(
        _env_file=None,
        kafka_bootstrap=f"127.0.0.1:{kafka_port}",
        bridge_port=free_port(),
        bridge_token="t",
        state_dir=tmp_path,
    )  # type: ignore[arg-type]
    env = settings.as_env()
    broker = [
        stack.tansu_binary(),
        "broker",
        "--listener-url",
        f"tcp://127.0.0.1:{kafka_port}",
        "--advertised-listener-url",
        f"tcp://127.0.0.1:{kafka_port}",
    ]
    body = json.dumps({"Records": [ObjectEvent("created", "b", "k.jpg", "e", 1).to_record()]}).encode()

    def post() -> int:
        req = urllib.request.Request(
            settings.bridge_url, data=body, method="POST", headers={"Authorization": "Bearer t"}
        )
        try:
            with urllib.request.urlopen(req, timeout=60) as r:
                return r.status
        except urllib.error.HTTPError as e:
            return e.code

    with (
        child(broker, {}, tmp_path / "tansu.log") as tansu,
        child([*CLI, "bridge"], env, tmp_path / "bridge.log"),
    ):
        stack.wait_ready(settings, stack.Part("kafka", [], settings.kafka_bootstrap), 30)
        ensure_topics(settings)
        stack.wait_ready(settings, stack.bridge_part(settings), 30)
        assert post() == 200
        os.killpg(tansu.pid, signal.SIGKILL)
        tansu.wait(10)
        assert post() == 503
        with urllib.request.urlopen(settings.bridge_url.replace("/events", "/healthz"), timeout=10) as r:
            assert r.status == 200  # still serving


def test_s3_outage_pauses_and_catches_up(servers, embedder, tmp_path):  # type: ignore[no-untyped-def]
    """The worker's S3 connection is cut: it retries, writes and commits nothing, then catches up."""
    from urllib.parse import urlparse

    from lookalike.store import ObjectStore
    from tests.helpers import TcpProxy

    with open_pipeline(servers, embedder, tmp_path) as p:
        direct = ObjectStore(p.settings)
        real = urlparse(p.settings.s3_endpoint)
        proxy = TcpProxy(real.hostname or "127.0.0.1", real.port or 0)
        proxy.up()
        try:
            p.settings = s = p.settings.model_copy(update={"s3_endpoint": f"http://127.0.0.1:{proxy.port}"})
            polled: list[int] = []
            since = p.settled_ends()
            p.start_worker(on_batch=lambda batch: polled.append(len(batch)))
            proxy.down()
            for i, img in enumerate(dataset_images(4)):
                direct.put_file(s.bucket, f"o{i}.jpg", img, "image/jpeg")
            wait_for(lambda: sum(polled) >= 1, 60, what="worker polled the events")
            time.sleep(3)
            assert p.indexed() == {}
            assert nothing_committed(s.kafka_bootstrap, s.group, s.topic, since), "committed during the outage"
            proxy.up()
            wait_for(lambda: len(p.indexed()) == 4, 120, what="catch-up after the S3 outage")
            wait_committed(s.kafka_bootstrap, s.group, s.topic, 60)
        finally:
            proxy.down()
