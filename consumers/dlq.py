"""Dead letters: messages and objects that can never be indexed, published with a reason."""

from __future__ import annotations

import json
import logging
import time
from dataclasses import asdict, dataclass
from typing import Any

from kafka.errors import KafkaError

from lookalike.bus import make_producer
from lookalike.errors import Unavailable
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
        if not letters:
            return
        try:
            futures = [self.producer.send(self.topic, key=d.key or "", value=d.to_json()) for d in letters]
            for f in futures:
                f.get(timeout=15)
        except KafkaError as exc:
            raise Unavailable("kafka", f"dead-letter publish failed: {exc}") from exc
        for d in letters:
            log.warning("dead letter %s (offset %s:%d): %s", d.key, d.partition, d.offset, d.reason)

    def close(self) -> None:
        self.producer.close(timeout=5)
