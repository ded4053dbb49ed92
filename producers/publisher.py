"""Events to Kafka, with the broker's acknowledgement, and failures sorted into the two kinds that matter.

The bridge's sender (SNS, MinIO's webhook) retries on 5xx and gives up on 4xx, so each failure must
land on the right side: a record that can never be published (it cannot be encoded, or the producer
or broker refuses it as too large or invalid) is ``PublishRefused`` and becomes a 400; anything else
(no broker, a timeout, no acknowledgement) is broker trouble, a 503, and the sender comes back.
"""

from __future__ import annotations

import json
import logging
import threading
from typing import Any, Protocol

from kafka.errors import (
    CorruptRecordError,
    InvalidRecordError,
    InvalidTimestampError,
    InvalidTopicError,
    MessageSizeTooLargeError,
    RecordListTooLargeError,
)

from lookalike.bus import make_producer
from lookalike.events import ObjectEvent
from lookalike.settings import Settings

log = logging.getLogger(__name__)

ACK_TIMEOUT_S = 10.0

# errors about the record itself: publishing it again can only fail again
REFUSED_BY_KAFKA = (
    MessageSizeTooLargeError,
    RecordListTooLargeError,
    CorruptRecordError,
    InvalidRecordError,
    InvalidTimestampError,
    InvalidTopicError,
)


class PublishRefused(ValueError):
    """A record that can never be published as it is; the request that carried it gets a 400."""


class Publishing(Protocol):
    """What the HTTP side needs: ``publish`` returns once the broker acknowledged every event."""

    topic: str

    def publish(self, events: list[ObjectEvent]) -> None: ...

    def close(self) -> None: ...


def encode(event: ObjectEvent) -> tuple[str, bytes]:
    """The Kafka key (``bucket/key``) and value (MinIO's own shape) of one event; ``PublishRefused``
    if it cannot be encoded (a key that is not valid Unicode, say)."""
    try:
        value = {"EventName": event.name, "Key": event.id, "Records": [event.to_record()]}
        return event.id, json.dumps(value).encode()
    except (ValueError, TypeError) as exc:  # UnicodeEncodeError is a ValueError
        raise PublishRefused(f"event for {event.id!r} cannot be encoded: {exc}") from exc


class Publisher:
    """Publishes events to the topic and waits for the broker's acknowledgement (acks=all)."""

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
        """Every record is encoded before any is sent, so a bad one refuses the request up front.
        Raises ``PublishRefused`` (permanent) or anything else (``Unavailable``, ``KafkaError``,
        ``OSError``: worth retrying)."""
        records = [encode(ev) for ev in events]
        producer = self._get()
        try:
            futures = [producer.send(self.topic, key=key, value=value) for key, value in records]
            for future in futures:
                future.get(timeout=ACK_TIMEOUT_S)
        except REFUSED_BY_KAFKA as exc:
            raise PublishRefused(f"Kafka refused the record: {type(exc).__name__}: {exc}") from exc
        except (TypeError, ValueError) as exc:  # the producer's own checks on keys and values
            raise PublishRefused(f"the producer refused the record: {type(exc).__name__}: {exc}") from exc

    def close(self) -> None:
        if self._producer is not None:
            self._producer.close(timeout=5)
