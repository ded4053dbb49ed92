"""dashboard.live and dashboard.health: dead letters, latest rows, ingest rate, outages (lag: tests/unit/test_bus)."""

from __future__ import annotations

import contextlib
import json
import socket
import time

import pytest
from pymilvus import MilvusClient

from dashboard import health, live
from lookalike import deadletters
from lookalike.errors import Unavailable
from lookalike.index import GRPC_OPTIONS, VectorIndex
from lookalike.rows import ModelTag
from tests.conftest import make_settings
from tests.dashboard.sample import JUNK_KEY
from tests.helpers import free_port


# ---------------------------------------------------------------- pure
def test_dead_letters_parse_as_the_worker_writes_them_and_junk_does_not_break_the_panel() -> None:
    doc = {
        "key": "b/x.jpg",
        "etag": "e1",
        "reason": "corrupt or truncated image",
        "topic": "events",
        "partition": 2,
        "offset": 41,
        "size": 12,
        "time": 1_700_000_000.5,
    }
    dl = deadletters.parse_dead_letter(json.dumps(doc).encode(), b"b/x.jpg", 5)
    assert dl == deadletters.DeadLetterView(
        "b/x.jpg", "corrupt or truncated image", 1_700_000_000.5, "e1", 12, "events", 2, 41
    )
    junk = deadletters.parse_dead_letter(b"\xff not json", b"k", 2_000)
    assert (junk.key, junk.reason, junk.time) == ("k", "(unreadable dead letter)", 2.0)
    bare = deadletters.parse_dead_letter(b"{}", None, 3_000)
    assert (bare.key, bare.reason, bare.time, bare.partition) == ("", "(no reason given)", 3.0, None)


def test_health_names_what_does_not_answer() -> None:
    with contextlib.closing(socket.socket()) as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = listener.getsockname()[1]
        dead = free_port()
        settings = make_settings(
            {
                "s3_endpoint": f"http://127.0.0.1:{port}",
                "kafka_bootstrap": f"127.0.0.1:{dead},127.0.0.1:{port}",  # any bootstrap server will do
                "milvus_uri": f"http://127.0.0.1:{dead}",
            }
        )
        parts = health.check_stack(settings)
    assert [(p.part, p.up) for p in parts] == [("s3", True), ("kafka", True), ("milvus", False)]
    assert health.down_parts(parts) == {"milvus"}
    assert parts[2].message() == f"Milvus vector index is unreachable at http://127.0.0.1:{dead}"
    lite_file = make_settings({"milvus_uri": "./local.db", "s3_endpoint": "http://127.0.0.1:1", "kafka_bootstrap": "x"})
    assert health.check_stack(lite_file)[2].up  # Milvus Lite opened in-process: nothing to reach


def test_snapshot_reports_each_part_that_is_down_or_failing() -> None:
    def index() -> VectorIndex:
        raise AssertionError("milvus is down: must not be asked")

    def kafka() -> live.KafkaWatch:
        raise Unavailable("kafka", "NoBrokersAvailable")

    snap = live.snapshot(index, kafka, down={"milvus"}, now_ms=1)
    assert snap.errors == {"milvus": "unreachable", "kafka": "NoBrokersAvailable"}
    assert snap.vectors is None and snap.lag is None and snap.total_lag is None and snap.dead_letters is None


def test_latest_from_the_feed_is_newest_first_one_per_object_and_drops_removed_ones() -> None:
    from lookalike.feed import FeedRecord

    recs = [
        FeedRecord("b/a", "indexed", 1_000, etag="1", size=5),
        FeedRecord("b/b", "indexed", 2_000, etag="2", size=6),
        FeedRecord("b/a", "indexed", 3_000, etag="3", size=7),  # re-indexed: shown once, as newest
        FeedRecord("b/c", "indexed", 2_500),
        FeedRecord("b/c", "removed", 2_600),  # gone since
        FeedRecord("b/d", "dead", 4_000, reason="not an image"),
    ]
    latest = live.feed_latest(list(reversed(recs)), limit=5)
    assert [(o.id, o.etag, o.indexed_at) for o in latest] == [("b/a", "3", 3_000), ("b/b", "2", 2_000)]
    assert live.feed_latest(recs, limit=1)[0].key == "a"


def test_rate_from_the_feed_counts_indexed_in_the_window_or_over_a_flooded_tail() -> None:
    from lookalike.feed import FeedRecord

    now = 100_000
    calm = [FeedRecord(f"b/{i}", "indexed", now - 90_000 + i * 10_000) for i in range(9)]  # 5 in the last minute
    assert live.feed_rate(calm, now) == pytest.approx(5 / 60)
    flood = [FeedRecord(f"b/{i}", "indexed", now - 10_000 + i * 10) for i in range(1000)]  # tail spans 10 s
    assert live.feed_rate(flood, now) == pytest.approx(1000 / 10)
    assert live.feed_rate([FeedRecord("b/x", "removed", now)], now) == 0.0


# ---------------------------------------------------------------- real Kafka and Milvus
@pytest.mark.integration
def test_kafka_watch_reads_lag_and_recent_dead_letters(indexed) -> None:  # type: ignore[no-untyped-def]
    from lookalike.bus import make_producer

    pipeline, _ = indexed
    s = pipeline.settings
    watch = live.KafkaWatch(s)
    try:
        lag = watch.lag()
        assert [p.partition for p in lag] == list(range(s.partitions))
        assert all(p.lag == 0 and p.committed is not None for p in lag), lag
        assert sum(p.end for p in lag) > 0

        producer = make_producer(s)
        for i in range(3):
            value = json.dumps({"key": f"{s.bucket}/extra-{i}", "reason": f"reason {i}", "time": time.time() + i})
            producer.send(s.dead_letter_topic, key=f"extra-{i}", value=value.encode()).get(timeout=15)
        producer.close()
        letters = watch.dead_letters(n=3)
        assert [d.reason for d in letters] == ["reason 2", "reason 1", "reason 0"]  # newest first, at most n
        everything = watch.dead_letters(n=50)
        junk = [d for d in everything if d.key.endswith(JUNK_KEY)]
        assert len(junk) == 1 and junk[0].reason.startswith("not an image") and junk[0].topic == s.topic
    finally:
        watch.close()


@pytest.mark.integration
def test_the_panel_takes_the_count_from_milvus_and_never_scans_its_rows(servers: dict[str, str]) -> None:
    settings = make_settings(servers)
    index = VectorIndex(settings)
    try:
        index.open(ModelTag("test", "none", 4))
        now = int(time.time() * 1000)
        old = [(f"b/old-{i}", now - (i + 2) * 3_600_000) for i in range(3)]  # 2, 3 and 4 hours ago
        recent = [(f"b/new-{i}", now - 1_000 * (10 - i)) for i in range(3)]  # the last 10 s
        rows = [
            {
                "id": oid,
                "vector": [1.0, 0.0, 0.0, 0.0],
                "etag": "e",
                "size": 1,
                "content_type": "image/jpeg",
                "event_time": at,
                "last_modified": at,
                "indexed_at": at,
                "model": "test",
                "duplicate_of": "",
                "duplicate_score": 0.0,
            }
            for oid, at in old + recent
        ]
        planter = MilvusClient(
            uri=settings.milvus_uri, grpc_options=GRPC_OPTIONS
        )  # rows stamped in the past: the index stamps now
        try:
            planter.upsert(settings.collection, rows)
        finally:
            planter.close()
        watch = live.KafkaWatch(settings)
        try:
            snap = live.snapshot(lambda: index, lambda: watch, down=set(), latest_n=3)
        finally:
            watch.close()
        assert snap.vectors == 6  # the row-count statistic, no scan
        assert snap.latest == []  # the panel reads "latest" from the change feed only, never from Milvus
        assert snap.lag == [] and snap.dead_letters == []  # this settings' topics do not exist
        assert not snap.errors
    finally:
        index.drop()
        index.close()
