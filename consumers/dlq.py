"""Dead letters: messages and objects that can never be indexed, published with a reason."""

from __future__ import annotations

import json
import logging
import time
from dataclasses import asdict, dataclass
from typing import Any

from consumers.bisect import bisect
from lookalike.bus import make_producer, publish_acked
from lookalike.settings import Settings

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class DeadLetter:
    key: str | None
    etag: str | None
    reason: str
    topic: str
    partition: int
    offset: int
    size: int | None = None

    def to_json(self) -> bytes:
        doc: dict[str, Any] = asdict(self)
        doc["source_offset"] = self.offset
        doc["time"] = time.time()
        return json.dumps(doc).encode()


class DeadLetterWriter:
    """Publishes dead letters and waits for the broker before the batch may commit."""

    def __init__(self, settings: Settings) -> None:
        self.topic = settings.dead_letter_topic
        self.producer = make_producer(settings, client_id="lookalike-dlq")

    def send(self, letters: list[DeadLetter]) -> None:
        """Publish and wait for every acknowledgement; an outage raises ``Unavailable``.

        A letter the broker refuses alone (found by bisection) cannot itself be dead-lettered: it
        is logged with its reason and counted, and the batch goes on."""
        if not letters:
            return
        outcome = bisect(letters, self._publish, "dead-letter")
        for d in outcome.accepted:
            log.warning("dead letter %r (offset %s:%d): %s", d.key, d.partition, d.offset, d.reason)
        for d, exc in outcome.failed:
            log.error("dead letter %r was refused by Kafka (%s); its reason was: %s", d.key, exc, d.reason)

    def _publish(self, letters: list[DeadLetter]) -> None:
        publish_acked(self.producer, self.topic, [(d.key or "", d.to_json()) for d in letters], "dead-letter")

    def close(self) -> None:
        self.producer.close(timeout=5)
