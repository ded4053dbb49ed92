"""The event bus: Kafka clients configured one way for every stage (kafka-python)."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer, TopicPartition
from kafka.admin import NewTopic
from kafka.errors import (
    ClusterAuthorizationFailedError,
    IllegalStateError,
    KafkaError,
    TopicAlreadyExistsError,
    TopicAuthorizationFailedError,
    TransactionalIdAuthorizationFailedError,
)

from lookalike.errors import Unavailable
from lookalike.settings import Settings

log = logging.getLogger(__name__)


def security(settings: Settings) -> dict[str, Any]:
    """The TLS/SASL options every Kafka client of this deployment needs (none on a plain listener)."""
    options: dict[str, Any] = {"security_protocol": settings.kafka_security_protocol}
    if settings.kafka_ssl_cafile:
        options["ssl_cafile"] = settings.kafka_ssl_cafile
    if settings.kafka_security_protocol.startswith("SASL"):
        options["sasl_mechanism"] = settings.kafka_sasl_mechanism or "PLAIN"
        options["sasl_plain_username"] = settings.kafka_sasl_username
        options["sasl_plain_password"] = settings.kafka_sasl_password.get_secret_value()
    return options


def admin_client(settings: Settings, **overrides: Any) -> KafkaAdminClient:
    """An admin client with this deployment's bootstrap and security; a broker error is ``Unavailable``."""
    try:
        return KafkaAdminClient(
            bootstrap_servers=settings.kafka_bootstrap, request_timeout_ms=10_000, **security(settings), **overrides
        )
    except KafkaError as exc:
        raise Unavailable("kafka", f"{type(exc).__name__}: {exc}") from exc


def make_producer(settings: Settings, **overrides: Any) -> KafkaProducer:
    """An acks=all producer: a send counts only once the broker has it."""
    options: dict[str, Any] = {
        "bootstrap_servers": settings.kafka_bootstrap,
        "acks": "all",
        "linger_ms": 2,
        "retries": 3,
        "request_timeout_ms": 10_000,
        "max_block_ms": 10_000,
        "key_serializer": lambda k: k.encode("utf-8"),
        "client_id": "lookalike-producer",
        **security(settings),
    }
    options.update(overrides)
    try:
        return KafkaProducer(**options)
    except KafkaError as exc:
        raise Unavailable("kafka", f"{type(exc).__name__}: {exc}") from exc


# errors that refuse every record alike (a closed producer, a missing ACL): wait like for an outage
_NOT_ABOUT_RECORDS = (
    IllegalStateError,
    TopicAuthorizationFailedError,
    ClusterAuthorizationFailedError,
    TransactionalIdAuthorizationFailedError,
)


def is_outage(exc: KafkaError) -> bool:
    """Whether a Kafka error says the broker is unreachable or refusing everyone, by its class only.

    kafka-python marks transient errors ``retriable`` (timeouts, leader moves, lost connections).
    The others (a record too large, an invalid topic) are about what was sent: callers bisect those."""
    return bool(exc.retriable) or isinstance(exc, _NOT_ABOUT_RECORDS)


def publish_acked(producer: KafkaProducer, topic: str, records: Sequence[tuple[str, bytes]], what: str) -> None:
    """Send every record, then wait for each acknowledgement (acks=all): only then is any of it durable.

    An outage raises ``Unavailable`` (the caller retries the whole batch and commits nothing); an
    error about the records themselves propagates as the ``KafkaError`` it is, for ``bisect``."""
    if not records:
        return
    try:
        futures = [producer.send(topic, key=key, value=value) for key, value in records]
        for future in futures:
            future.get(timeout=15)
    except KafkaError as exc:
        if is_outage(exc):
            raise Unavailable("kafka", f"{what} publish failed: {type(exc).__name__}: {exc}") from exc
        raise


def make_consumer(settings: Settings, group: str | None = None, **overrides: Any) -> KafkaConsumer:
    """A manual-commit group consumer; offsets are committed by the worker after the index write."""
    session = min(settings.session_timeout_ms, 6000)
    options: dict[str, Any] = {
        "bootstrap_servers": settings.kafka_bootstrap,
        "group_id": group or settings.group,
        "enable_auto_commit": False,
        "auto_offset_reset": "earliest",
        "session_timeout_ms": session,
        "heartbeat_interval_ms": max(500, session // 3),
        "max_poll_interval_ms": 300_000,
        "max_poll_records": max(1, settings.batch_size),
        "fetch_max_wait_ms": 100,  # a quiet stream's next event is fetched within 0.1 s: freshness
        "client_id": "lookalike-worker",
        **security(settings),
    }
    options.update(overrides)
    try:
        return KafkaConsumer(**options)
    except KafkaError as exc:
        raise Unavailable("kafka", f"{type(exc).__name__}: {exc}") from exc


def ensure_topics(settings: Settings, partitions: int | None = None) -> None:
    """Create the event topic, its dead-letter topic and its change feed (compacted) if missing.

    Apache Kafka compacts the feed, keeping the newest outcome of each ``bucket/key``; Tansu accepts
    the setting but reports no topic configs back, so compaction is not counted on there."""
    admin = admin_client(settings)
    try:
        existing = set(admin.list_topics())
        wanted = [
            NewTopic(name=settings.topic, num_partitions=partitions or settings.partitions, replication_factor=1),
            NewTopic(name=settings.dead_letter_topic, num_partitions=1, replication_factor=1),
            NewTopic(
                name=settings.change_feed_topic,
                num_partitions=partitions or settings.partitions,
                replication_factor=1,
                topic_configs={"cleanup.policy": "compact"},
            ),
        ]
        missing = [t for t in wanted if t.name not in existing]
        if missing:
            try:
                admin.create_topics(missing)
                log.info("created topics %s", [t.name for t in missing])
            except TopicAlreadyExistsError:
                pass
    except KafkaError as exc:
        raise Unavailable("kafka", f"{type(exc).__name__}: {exc}") from exc
    finally:
        admin.close()


@dataclass(frozen=True)
class Offsets:
    """One partition's progress: the group's committed offset (None: never committed), begin and end."""

    committed: int | None
    begin: int
    end: int

    @property
    def lag(self) -> int:
        """End minus committed; a partition never committed lags by all it retains (end - begin).

        Clamped at zero: Tansu's ListOffsets answers with the last *batch*'s offset + 1, which can
        sit below a committed offset inside that batch.
        """
        done = self.begin if self.committed is None else self.committed
        return max(0, self.end - done)


def read_offsets(admin: KafkaAdminClient, consumer: KafkaConsumer, group: str, topic: str) -> dict[int, Offsets]:
    """Per partition of ``topic``: where ``group`` stands. The one place consumer lag is read.

    Callers own the clients (the dashboard keeps its pair for the life of the process); Kafka
    errors become ``Unavailable``. A topic that does not exist gives an empty dict.
    """
    try:
        parts = [TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic) or ())]
        if not parts:
            return {}
        ends = consumer.end_offsets(parts)
        begins = consumer.beginning_offsets(parts)
        committed = admin.list_group_offsets({group: parts}).get(group, {})
    except KafkaError as exc:
        raise Unavailable("kafka", f"{type(exc).__name__}: {exc}") from exc
    out: dict[int, Offsets] = {}
    for tp in parts:
        meta = committed.get(tp)
        offset = meta.offset if meta is not None and meta.offset >= 0 else None
        out[tp.partition] = Offsets(offset, int(begins[tp]), int(ends[tp]))
    return out


def group_offsets(settings: Settings, group: str | None = None, topic: str | None = None) -> dict[int, Offsets]:
    """``read_offsets`` with clients of its own, for callers that ask once (reindex, bench, tests).

    Lag is then ``Offsets.lag`` per partition, so every caller honours the partition's begin offset
    and Tansu's clamp the same way.
    """
    admin = admin_client(settings)
    try:
        consumer = KafkaConsumer(
            bootstrap_servers=settings.kafka_bootstrap, request_timeout_ms=10_000, **security(settings)
        )
    except KafkaError as exc:
        admin.close()
        raise Unavailable("kafka", f"{type(exc).__name__}: {exc}") from exc
    try:
        return read_offsets(admin, consumer, group or settings.group, topic or settings.topic)
    finally:
        consumer.close()
        admin.close()
