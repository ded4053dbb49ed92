"""The bridge: S3 event notifications over HTTP in, one Kafka message per record out.

Locally (moto) and with MinIO's ``notify_webhook``, the bucket POSTs events to us; in production
MinIO can publish to Kafka itself and this bridge is not needed. We answer 2xx only once the broker
acknowledged every record, so a sender that retries on errors never loses an event; 5xx when Kafka
is down. Each message is keyed ``bucket/key`` so that all events of one object land in one
partition, in order, exactly as MinIO's own Kafka target keys them.
"""

from __future__ import annotations

import base64
import hmac
import json
import logging
import threading
import urllib.request
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlparse

from kafka.errors import KafkaError

from lookalike.bus import make_producer
from lookalike.events import BadEvent, ObjectEvent, parse_message
from lookalike.settings import Settings

log = logging.getLogger(__name__)


class Publisher:
    """Publishes events to the topic and waits for the broker's acknowledgement."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.topic = settings.topic
        self._producer: Any = None
        self._lock = threading.Lock()

    def _get(self) -> Any:
        with self._lock:
            if self._producer is None:
                self._producer = make_producer(self.settings, client_id="lookalike-bridge")
            return self._producer

    def publish(self, events: list[ObjectEvent]) -> None:
        producer = self._get()
        futures = []
        for ev in events:
            value = {"EventName": ev.name, "Key": ev.id, "Records": [ev.to_record()]}
            futures.append(producer.send(self.topic, key=ev.id, value=json.dumps(value).encode()))
        for f in futures:
            f.get(timeout=10)

    def close(self) -> None:
        if self._producer is not None:
            self._producer.close(timeout=5)


class BridgeServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, settings: Settings, publisher: Publisher | None = None) -> None:
        self.settings = settings
        self.publisher = publisher or Publisher(settings)
        self.token = settings.bridge_token.get_secret_value()
        self.published = 0
        super().__init__((settings.bridge_host, settings.bridge_port), _Handler)


class _Handler(BaseHTTPRequestHandler):
    server: BridgeServer
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("%s " + format, self.address_string(), *args)

    def do_GET(self) -> None:
        if urlparse(self.path).path in ("/health", "/healthz"):
            self._reply(
                HTTPStatus.OK,
                {"status": "ok", "topic": self.server.publisher.topic, "published": self.server.published},
            )
        else:
            self._reply(HTTPStatus.NOT_FOUND, {"error": "not found"})

    def do_POST(self) -> None:
        if not self._authorised():
            self._reply(HTTPStatus.UNAUTHORIZED, {"error": "missing or wrong token"})
            return
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            self._reply(HTTPStatus.BAD_REQUEST, {"error": "bad Content-Length"})
            return
        if length > self.server.settings.bridge_max_body:
            self.close_connection = True
            self._reply(
                HTTPStatus.REQUEST_ENTITY_TOO_LARGE,
                {"error": f"body over {self.server.settings.bridge_max_body} bytes"},
            )
            return
        body = self.rfile.read(length) if length else b""
        try:
            doc = json.loads(body)
            if not isinstance(doc, dict):
                raise BadEvent("body is not a JSON object")
            if doc.get("Type") == "SubscriptionConfirmation":
                self._confirm(doc)
                self._reply(HTTPStatus.OK, {"confirmed": True})
                return
            events = parse_message(doc)
        except (ValueError, BadEvent) as exc:
            self._reply(HTTPStatus.BAD_REQUEST, {"error": f"malformed notification: {exc}"})
            return
        try:
            self.server.publisher.publish(events)
        except (KafkaError, OSError) as exc:
            log.error("kafka publish failed, answering 503 so the sender retries: %s", exc)
            self._reply(HTTPStatus.SERVICE_UNAVAILABLE, {"error": "event bus unavailable"})
            return
        except Exception as exc:  # never 2xx for an event that was not published
            log.exception("publish failed")
            self._reply(HTTPStatus.SERVICE_UNAVAILABLE, {"error": f"publish failed: {type(exc).__name__}"})
            return
        self.server.published += len(events)
        self._reply(HTTPStatus.OK, {"published": len(events)})

    def _authorised(self) -> bool:
        """Bearer token (MinIO ``auth_token``), basic-auth password, or ``?token=`` (SNS HTTP endpoints)."""
        want = self.server.token
        if not want:
            return True
        header = self.headers.get("Authorization") or ""
        given = ""
        if header.startswith("Bearer "):
            given = header[7:].strip()
        elif header.startswith("Basic "):
            try:
                given = base64.b64decode(header[6:]).decode().partition(":")[2]
            except ValueError:
                given = ""
        else:
            given = (parse_qs(urlparse(self.path).query).get("token") or [""])[0]
        return hmac.compare_digest(given.encode(), want.encode())

    def _confirm(self, doc: dict[str, Any]) -> None:
        url = str(doc.get("SubscribeURL") or "")
        if not url.startswith(("http://", "https://")):
            raise BadEvent("SubscriptionConfirmation without SubscribeURL")
        try:
            with urllib.request.urlopen(url, timeout=10) as response:
                response.read()
            log.info("confirmed SNS subscription for %s", doc.get("TopicArn"))
        except OSError as exc:
            log.error("could not confirm SNS subscription via %s: %s", url, exc)

    def _reply(self, status: HTTPStatus, doc: dict[str, Any]) -> None:
        body = json.dumps(doc).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(body)


def serve(settings: Settings, stop: threading.Event) -> None:
    """Serve until ``stop`` is set."""
    server = BridgeServer(settings)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.2}, daemon=True)
    thread.start()
    log.info(
        "bridge listening on http://%s:%d/events -> topic %s",
        settings.bridge_host,
        settings.bridge_port,
        settings.topic,
    )
    try:
        stop.wait()
    finally:
        server.shutdown()
        server.server_close()
        server.publisher.close()
