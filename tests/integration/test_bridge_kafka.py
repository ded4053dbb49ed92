"""The bridge with the real ``Publisher`` against real Tansu: 200 means the record is on the topic,
a record Kafka can never take is a 400 (the sender must not retry it forever), and nothing half-made
reaches the topic. (Kafka down -> 503 is ``test_faults.test_bridge_answers_503_when_kafka_is_down``.)"""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from lookalike.bus import ensure_topics
from producers.bridge import BridgeServer
from tests.conftest import make_settings
from tests.helpers import topic_messages, wait_for
from tests.unit.bridge_tools import post

pytestmark = pytest.mark.integration

TOKEN = "test-token"


def record(key: str) -> dict:
    return {
        "eventName": "s3:ObjectCreated:Put",
        "eventTime": "2024-01-01T00:00:00Z",
        "s3": {"bucket": {"name": "images"}, "object": {"key": key, "eTag": "e", "size": 3}},
    }


@pytest.fixture()
def bridge(servers: dict[str, str]) -> Iterator[BridgeServer]:
    # a body limit above Kafka's 1 MiB request limit, so the producer is what refuses the big record
    settings = make_settings(servers, bridge_port=0, bridge_max_body=4 * 1024 * 1024)
    ensure_topics(settings)
    with BridgeServer(settings) as server:
        yield server


def on_topic(server: BridgeServer) -> list[str | None]:
    return [key for key, _ in topic_messages(server.settings.kafka_bootstrap, server.settings.topic)]


def test_200_only_once_the_records_are_on_the_topic(bridge: BridgeServer) -> None:
    body = {"Records": [record("a.jpg"), record("dir%2Fb.jpg")]}
    assert post(bridge.url, json.dumps(body).encode(), token=TOKEN, timeout=30) == (200, {"published": 2})
    assert sorted(k or "" for k in on_topic(bridge)) == ["images/a.jpg", "images/dir/b.jpg"]


def test_a_record_kafka_refuses_is_400_and_the_bridge_goes_on(bridge: BridgeServer) -> None:
    huge = "k" * (1536 * 1024)  # a 1.5 MB key: over the producer's max_request_size, never publishable
    status, answer = post(bridge.url, json.dumps({"Records": [record(huge)]}).encode(), token=TOKEN, timeout=30)
    assert status == 400 and "MessageSizeTooLarge" in answer["error"]
    # a key that is not valid Unicode cannot be encoded at all: refused before anything is sent
    assert post(bridge.url, json.dumps({"Records": [record("\ud800.jpg")]}).encode(), token=TOKEN)[0] == 400
    assert post(bridge.url, json.dumps({"Records": [record("ok.jpg")]}).encode(), token=TOKEN, timeout=30)[0] == 200
    wait_for(lambda: on_topic(bridge) == ["images/ok.jpg"], 30, what="only the good record on the topic")
