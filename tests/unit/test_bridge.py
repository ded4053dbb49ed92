"""The bridge's HTTP contract: real HTTP against the real uvicorn server, a recording publisher for Kafka.

Everything runs on loopback in this process; the raw-socket helpers send what ``urllib`` refuses
to (negative lengths, chunked bodies, silence).
"""

from __future__ import annotations

import base64
import json
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator

import pytest
from kafka.errors import KafkaTimeoutError

from producers.bridge import PublishRefused
from tests.unit.bridge_tools import TOKEN, RecordingPublisher, StartBridge, bridges, post, raw_exchange


@pytest.fixture()
def start_bridge() -> Iterator[StartBridge]:
    with bridges() as start:
        yield start


@pytest.fixture()
def bridge(start_bridge: StartBridge) -> tuple[str, RecordingPublisher]:
    server, pub = start_bridge()
    return server.url, pub


RECORDS = {
    "Records": [
        {
            "eventName": "s3:ObjectCreated:Put",
            "eventTime": "2024-01-01T00:00:00Z",
            "s3": {"bucket": {"name": "images"}, "object": {"key": "a%2Fb.jpg", "eTag": "e"}},
        }
    ]
}
BODY = json.dumps(RECORDS).encode()
INFINITE = {"key": "k", "size": 1e999}  # JSON's Infinity: int() of it overflows


def head(port: int, extra: str) -> bytes:
    return (
        f"POST /events HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nAuthorization: Bearer {TOKEN}\r\n"
        f"Content-Type: application/json\r\n{extra}\r\n"
    ).encode()


# ---------------------------------------------------------------- the contract as it was
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


def test_basic_auth_password_is_the_token(bridge: tuple[str, RecordingPublisher]) -> None:
    url, pub = bridge
    for password, want in ((TOKEN, 200), ("nope", 401)):
        req = urllib.request.Request(url, data=BODY, method="POST")
        req.add_header("Authorization", "Basic " + base64.b64encode(f"minio:{password}".encode()).decode())
        try:
            with urllib.request.urlopen(req, timeout=5) as r:
                assert r.status == want
        except urllib.error.HTTPError as e:
            assert e.code == want
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
    pub.fail = KafkaTimeoutError("broker down")
    status, doc = post(url, json.dumps(RECORDS).encode())
    assert status == 503 and "unavailable" in doc["error"]
    pub.fail = None
    assert post(url, json.dumps(RECORDS).encode())[0] == 200


def test_health(bridge: tuple[str, RecordingPublisher]) -> None:
    url, _ = bridge
    with urllib.request.urlopen(url.replace("/events", "/healthz"), timeout=5) as r:
        assert json.loads(r.read())["status"] == "ok"


# ---------------------------------------------------------------- permanent vs. retryable
@pytest.mark.parametrize(
    "doc",
    [
        {"Type": "Notification", "Message": 5},  # the parser meets a number where JSON text belongs
        {"Records": "nope"},
        {"Type": "Notification", "Message": "{not json"},
    ],
)
def test_anything_the_parser_raises_is_400(bridge: tuple[str, RecordingPublisher], doc: dict) -> None:
    url, pub = bridge
    status, answer = post(url, json.dumps(doc).encode())
    assert status == 400 and "malformed" in answer["error"]
    assert pub.events == []


def test_a_record_with_a_garbage_field_is_still_published(bridge: tuple[str, RecordingPublisher]) -> None:
    """A size of JSON's Infinity says nothing about the object: the event itself is real, so it is kept
    (the worker reads the object's true size); refusing it would lose the event."""
    url, pub = bridge
    doc = {"Records": [{"eventName": "s3:ObjectCreated:Put", "s3": {"bucket": {"name": "b"}, "object": INFINITE}}]}
    status, _ = post(url, json.dumps(doc).encode())
    assert status == 200
    assert [(e.bucket, e.key, e.size) for e in pub.events] == [("b", "k", None)]


def test_a_record_the_publisher_refuses_is_400_not_503(bridge: tuple[str, RecordingPublisher]) -> None:
    url, pub = bridge
    pub.fail = PublishRefused("Kafka refused the record: MessageSizeTooLargeError")
    status, answer = post(url, BODY)
    assert status == 400 and "MessageSizeTooLarge" in answer["error"]


def test_broker_trouble_of_any_kind_is_503_with_retry_after(start_bridge: StartBridge) -> None:
    server, pub = start_bridge()
    for failure in (OSError("connection refused"), RuntimeError("not acknowledged")):
        pub.fail = failure
        status, headers, _ = raw_exchange(server.port, head(server.port, f"Content-Length: {len(BODY)}\r\n") + BODY)
        assert status == 503 and headers.get("retry-after") == "1"
    assert pub.events == []


# ---------------------------------------------------------------- the body limit holds for every framing
@pytest.mark.parametrize("length", ["-1", "abc", "1e3", "+5"])
def test_negative_or_invalid_content_length_is_400(start_bridge: StartBridge, length: str) -> None:
    server, pub = start_bridge()
    status, _, _ = raw_exchange(server.port, head(server.port, f"Content-Length: {length}\r\n") + BODY)
    assert status == 400
    assert pub.events == []


def test_declared_oversized_body_is_413_without_reading_it(start_bridge: StartBridge) -> None:
    server, pub = start_bridge()
    # 1 GB announced, a few bytes sent: the answer comes at once and the connection is closed
    status, headers, _ = raw_exchange(server.port, head(server.port, "Content-Length: 1000000000\r\n") + b"{}")
    assert status == 413 and headers.get("connection") == "close"
    assert pub.events == []


def test_chunked_body_over_the_limit_is_413(start_bridge: StartBridge) -> None:
    server, pub = start_bridge()
    chunk = b"x" * 1000
    chunks = [b"%x\r\n%s\r\n" % (len(chunk), chunk) for _ in range(8)]  # 8 kB of a body with no end
    status, headers, _ = raw_exchange(server.port, head(server.port, "Transfer-Encoding: chunked\r\n"), chunks)
    assert status == 413 and headers.get("connection") == "close"
    assert pub.events == []


def test_chunked_body_within_the_limit_is_published(start_bridge: StartBridge) -> None:
    server, pub = start_bridge()
    chunks = [b"%x\r\n%s\r\n" % (len(part), part) for part in (BODY[:10], BODY[10:])] + [b"0\r\n\r\n"]
    status, _, body = raw_exchange(server.port, head(server.port, "Transfer-Encoding: chunked\r\n"), chunks)
    assert status == 200 and json.loads(body) == {"published": 1}
    assert len(pub.events) == 1


def test_a_body_slower_than_the_read_timeout_is_408(start_bridge: StartBridge) -> None:
    server, pub = start_bridge(bridge_read_timeout=0.5)
    # 100 bytes announced, 10 sent, then silence: answered after the read timeout, not held open
    request = head(server.port, "Content-Length: 100\r\n") + b'{"Records"'
    status, headers, _ = raw_exchange(server.port, request, wait=10)
    assert status == 408 and headers.get("connection") == "close"
    assert pub.events == []


# ---------------------------------------------------------------- bounded concurrency
def test_saturated_bridge_answers_503_with_retry_after(start_bridge: StartBridge) -> None:
    server, pub = start_bridge(bridge_max_inflight=1)
    pub.hold.clear()
    first: list[int] = []
    thread = threading.Thread(target=lambda: first.append(post(server.url, BODY, timeout=30)[0]))
    thread.start()
    try:
        assert pub.entered.wait(10), "the first request never reached the publisher"
        status, headers, _ = raw_exchange(server.port, head(server.port, f"Content-Length: {len(BODY)}\r\n") + BODY)
        assert status == 503 and headers.get("retry-after") == "1"
    finally:
        pub.hold.set()
        thread.join(30)
    assert first == [200] and len(pub.events) == 1
    assert post(server.url, BODY)[0] == 200  # a slot is free again
