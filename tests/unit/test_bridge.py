"""The bridge's HTTP contract, with a recording publisher in place of Kafka."""

from __future__ import annotations

import json
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator

import pytest
from kafka.errors import KafkaTimeoutError

from lookalike.events import ObjectEvent
from lookalike.settings import Settings
from producers.bridge import BridgeServer
from tests.helpers import free_port


class RecordingPublisher:
    topic = "t"

    def __init__(self) -> None:
        self.events: list[ObjectEvent] = []
        self.fail = False

    def publish(self, events: list[ObjectEvent]) -> None:
        if self.fail:
            raise KafkaTimeoutError("broker down")
        self.events.extend(events)

    def close(self) -> None:
        pass


@pytest.fixture()
def bridge() -> Iterator[tuple[str, RecordingPublisher]]:
    settings = Settings(_env_file=None, bridge_port=free_port(), bridge_token="s3cret", bridge_max_body=4096)
    pub = RecordingPublisher()
    server = BridgeServer(settings, pub)  # type: ignore[arg-type]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{settings.bridge_port}/events", pub
    finally:
        server.shutdown()
        server.server_close()


def post(url: str, body: bytes, token: str | None = "s3cret") -> tuple[int, dict]:
    req = urllib.request.Request(url, data=body, method="POST", headers={"Content-Type": "application/json"})
    if token is not None:
        req.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(req, timeout=5) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read() or b"{}")


RECORDS = {
    "Records": [
        {
            "eventName": "s3:ObjectCreated:Put",
            "eventTime": "2024-01-01T00:00:00Z",
            "s3": {"bucket": {"name": "images"}, "object": {"key": "a%2Fb.jpg", "eTag": "e"}},
        }
    ]
}


def test_minio_webhook_body_is_published(bridge: tuple[str, RecordingPublisher]) -> None:
    url, pub = bridge
    body = {"EventName": "s3:ObjectCreated:Put", "Key": "images/a/b.jpg", **RECORDS}
    assert post(url, json.dumps(body).encode()) == (200, {"published": 1})
    assert [e.id for e in pub.events] == ["images/a/b.jpg"]


def test_sns_envelope_with_token_in_query(bridge: tuple[str, RecordingPublisher]) -> None:
    url, pub = bridge
    body = {"Type": "Notification", "Message": json.dumps(RECORDS)}
    assert post(url + "?token=s3cret", json.dumps(body).encode(), token=None)[0] == 200
    assert len(pub.events) == 1


def test_wrong_or_missing_token_is_401(bridge: tuple[str, RecordingPublisher]) -> None:
    url, pub = bridge
    assert post(url, json.dumps(RECORDS).encode(), token="nope")[0] == 401
    assert post(url, json.dumps(RECORDS).encode(), token=None)[0] == 401
    assert post(url + "?token=wrong", json.dumps(RECORDS).encode(), token=None)[0] == 401
    assert pub.events == []


def test_oversized_body_is_413_and_malformed_is_400(bridge: tuple[str, RecordingPublisher]) -> None:
    url, pub = bridge
    assert post(url, b"x" * 5000)[0] == 413
    assert post(url, b"{not json")[0] == 400
    assert post(url, b"[]")[0] == 400
    assert post(url, json.dumps({"Records": [{"eventName": "nope"}]}).encode())[0] == 400
    # still serving afterwards
    assert post(url, json.dumps(RECORDS).encode())[0] == 200
    assert len(pub.events) == 1


def test_kafka_down_is_503_never_2xx(bridge: tuple[str, RecordingPublisher]) -> None:
    url, pub = bridge
    pub.fail = True
    status, doc = post(url, json.dumps(RECORDS).encode())
    assert status == 503 and "unavailable" in doc["error"]
    pub.fail = False
    assert post(url, json.dumps(RECORDS).encode())[0] == 200


def test_health(bridge: tuple[str, RecordingPublisher]) -> None:
    url, _ = bridge
    with urllib.request.urlopen(url.replace("/events", "/healthz"), timeout=5) as r:
        assert json.loads(r.read())["status"] == "ok"
