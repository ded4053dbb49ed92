"""Dead letters, read back: what the workers refused, and why, for whoever asks about an object.

Workers publish one JSON message per refused message or object on ``<topic>.dlq`` (``consumers/dlq.py``
writes ``key`` (the object's ``bucket/key``), ``etag``, ``reason``, ``topic``, ``partition``,
``offset``, ``size``, ``time``). The dashboard's live panel lists the newest; ``lookalike objects``
and the API's 404 say why one object is not indexed. The reading lives in the core because neither
the dashboard nor the API may import the worker.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass

from kafka import KafkaConsumer, TopicPartition
from kafka.errors import KafkaError

from lookalike.bus import security
from lookalike.errors import Unavailable
from lookalike.feed import tail_records
from lookalike.net import connects
from lookalike.settings import Settings

log = logging.getLogger(__name__)

TAIL = 10_000  # dead letters per partition read when a lookup starts; and ids remembered
REFRESH_S = 1.0  # a long-lived lookup reads what is new at most this often
RETRY_S = 30.0  # after Kafka failed, lookups answer from memory this long before trying again


@dataclass(frozen=True)
class DeadLetterView:
    key: str
    reason: str
    time: float
    etag: str = ""
    size: int | None = None
    topic: str = ""
    partition: int | None = None
    offset: int | None = None


def parse_dead_letter(value: bytes | None, key: bytes | None = None, timestamp_ms: int = 0) -> DeadLetterView:
    """A dead letter as the worker wrote it (``consumers.dlq.DeadLetter``), or what can be said of junk."""
    fallback_key = key.decode("utf-8", "replace") if key else ""
    try:
        doc = json.loads(value or b"")
        if not isinstance(doc, dict):
            raise ValueError("not an object")
    except ValueError:
        return DeadLetterView(key=fallback_key, reason="(unreadable dead letter)", time=timestamp_ms / 1000)

    def opt_int(name: str) -> int | None:
        v = doc.get(name)
        return int(v) if isinstance(v, int | float) else None

    when = doc.get("time")
    return DeadLetterView(
        key=str(doc.get("key") or fallback_key),
        reason=str(doc.get("reason") or "(no reason given)"),
        time=float(when) if isinstance(when, int | float) else timestamp_ms / 1000,
        etag=str(doc.get("etag") or ""),
        size=opt_int("size"),
        topic=str(doc.get("topic") or ""),
        partition=opt_int("partition"),
        offset=opt_int("offset"),
    )


def recent(consumer: KafkaConsumer, topic: str, n: int, timeout_s: float = 3.0) -> list[DeadLetterView]:
    """The ``n`` most recent dead letters of ``topic``, newest first (group-less ``consumer``)."""
    letters = [parse_dead_letter(r.value, r.key, r.timestamp) for r in tail_records(consumer, topic, n, timeout_s)]
    letters.sort(key=lambda d: d.time, reverse=True)
    return letters[:n]


def describe(letter: DeadLetterView) -> str:
    """``dead-lettered: <reason>``, the words the CLI and the API's 404 share."""
    return f"dead-lettered: {letter.reason}"


class DeadLetterLog:
    """The newest dead letter of each object id, kept current by reading only what is new.

    For a process that asks often (the API answers every 404 with it): the first lookup reads the
    last ``tail`` letters, later ones read what arrived since, at most every ``refresh_s``. Kafka
    being down is not an error here: lookups answer from what was read, and try Kafka again after
    ``RETRY_S``. Thread-safe.
    """

    def __init__(self, settings: Settings, tail: int = TAIL, refresh_s: float = REFRESH_S) -> None:
        self.settings = settings
        self.topic = settings.dead_letter_topic
        self.tail = tail
        self.refresh_s = refresh_s
        self._letters: OrderedDict[str, DeadLetterView] = OrderedDict()
        self._consumer: KafkaConsumer | None = None
        self._parts: list[TopicPartition] = []
        self._next = 0.0
        self._lock = threading.Lock()

    def find(self, oid: str, strict: bool = False) -> DeadLetterView | None:
        """The newest dead letter of ``oid`` (``bucket/key``) among those read; None if none.

        ``strict``: read now, and raise ``Unavailable`` if Kafka does not answer, rather than
        answer from what was read before."""
        with self._lock:
            now = time.monotonic()
            if strict or now >= self._next:
                self._next = now + self.refresh_s
                try:
                    self._read_new()
                except (Unavailable, KafkaError, OSError) as exc:
                    self._close()
                    self._next = now + RETRY_S
                    if strict and isinstance(exc, Unavailable):
                        raise
                    if strict:
                        raise Unavailable("kafka", f"{type(exc).__name__}: {exc}") from exc
                    log.info("dead letters unreadable for now: %s", exc)
            return self._letters.get(oid)

    def _read_new(self, timeout_s: float = 3.0) -> None:
        consumer = self._connect()
        if not self._parts:  # no topic yet: connect afresh next time, when it may exist
            self._close()
            return
        ends = consumer.end_offsets(self._parts)
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline and any(consumer.position(tp) < ends[tp] for tp in self._parts):
            for records in consumer.poll(timeout_ms=200, max_records=1000).values():
                for r in records:
                    self._remember(parse_dead_letter(r.value, r.key, r.timestamp))

    def _remember(self, letter: DeadLetterView) -> None:
        self._letters.pop(letter.key, None)
        self._letters[letter.key] = letter
        while len(self._letters) > self.tail:
            self._letters.popitem(last=False)

    def _connect(self) -> KafkaConsumer:
        """The consumer, assigned to the topic's partitions from ``tail`` before their ends (once)."""
        if self._consumer is not None:
            return self._consumer
        host, port = self.settings.kafka_host
        if not connects(host, port):  # a down broker would hold a new client for seconds
            raise Unavailable("kafka", f"nothing listens on {host}:{port}")
        consumer = KafkaConsumer(
            bootstrap_servers=self.settings.kafka_bootstrap,
            client_id="lookalike-deadletters",
            group_id=None,
            enable_auto_commit=False,
            request_timeout_ms=5000,
            **security(self.settings),
        )
        self._consumer = consumer
        self._parts = [TopicPartition(self.topic, p) for p in sorted(consumer.partitions_for_topic(self.topic) or ())]
        if self._parts:
            ends = consumer.end_offsets(self._parts)
            begins = consumer.beginning_offsets(self._parts)
            consumer.assign(self._parts)
            for tp in self._parts:
                consumer.seek(tp, max(begins[tp], ends[tp] - self.tail))
        return consumer

    def _close(self) -> None:
        consumer, self._consumer, self._parts = self._consumer, None, []
        if consumer is not None:
            try:
                consumer.close()
            except Exception:  # closing a broken connection must not mask why it broke
                log.debug("closing the dead-letter consumer failed", exc_info=True)

    def close(self) -> None:
        with self._lock:
            self._close()


def find_dead_letter(settings: Settings, oid: str, tail: int = TAIL) -> DeadLetterView | None:
    """One lookup (the CLI's): the newest dead letter of ``oid`` among the last ``tail`` per partition.

    Raises ``Unavailable`` when Kafka does not answer, so a caller can tell "none" from "unknown"."""
    letters = DeadLetterLog(settings, tail)
    try:
        return letters.find(oid, strict=True)
    finally:
        letters.close()
