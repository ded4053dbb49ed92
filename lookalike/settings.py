"""One settings class for every command, read from ``LOOKALIKE_*`` variables (and ``.env``).

It is built once at the edge (the CLI, the dashboard's ``main``) and passed down; library code
never reads the environment itself. Every default points at the local stack that
``lookalike stack up`` starts, so commands work there with no variables set.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlparse

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict


class Settings(BaseSettings):
    """Everything a producer, worker, dashboard or tool needs to know about the stack."""

    model_config = SettingsConfigDict(env_prefix="LOOKALIKE_", env_file=".env", extra="ignore")

    # --- object store (S3 API: MinIO in production, SeaweedFS locally). The secret's default is the
    # local stack's documented one (docs/operations.md); set LOOKALIKE_S3_SECRET_KEY (.env) elsewhere
    s3_endpoint: str = "http://127.0.0.1:9000"
    s3_access_key: str = "lookalike"
    s3_secret_key: SecretStr = SecretStr("lookalike-secret")
    s3_region: str = "us-east-1"
    bucket: str = "images"
    max_object_bytes: int = Field(50 * 1024 * 1024, description="bigger objects are dead-lettered unread")
    max_image_pixels: int = Field(80_000_000, description="decompression-bomb guard")

    # --- event bus (Kafka protocol: Apache Kafka in production, Tansu locally)
    kafka_bootstrap: str = "127.0.0.1:9092"
    # TLS/SASL for a secured listener (Strimzi, MSK, Confluent): kafka-python's options of the same names
    kafka_security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = "PLAINTEXT"
    kafka_sasl_mechanism: str | None = Field(None, description="PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512")
    kafka_sasl_username: str | None = None
    kafka_sasl_password: SecretStr = SecretStr("")
    kafka_ssl_cafile: str | None = Field(None, description="CA bundle that signed the brokers' certificates")
    topic: str = "lookalike.events"
    dlq_topic: str | None = Field(None, description="defaults to '<topic>.dlq'")
    feed_topic: str | None = Field(None, description="the change feed (compacted); defaults to '<topic>.indexed'")
    group: str = "lookalike-workers"
    partitions: int = 3
    session_timeout_ms: int = 6000

    # --- vector index (Milvus: standalone/cluster in production, Milvus Lite locally)
    milvus_uri: str = "http://127.0.0.1:19530"
    milvus_token: SecretStr = SecretStr("")
    collection: str = "lookalike_images"
    index_type: str = "HNSW"
    hnsw_m: int = Field(16, description="HNSW graph degree (set when a collection is created)")
    hnsw_ef_construction: int = Field(200, description="HNSW build-time candidate list (at creation)")
    hnsw_ef: int = Field(256, description="HNSW search-time candidate list (at least k); see docs/scale.md")
    search_consistency: Literal["Strong", "Bounded", "Session", "Eventually"] = Field(
        "Strong",
        description="consistency of user searches (dashboard, API, CLI); the worker's own reads are always "
        "Strong. Strong sees every acknowledged write but waits for Milvus's time tick (about 200 ms on a "
        "server); Bounded answers at once but may miss the last gracefulTime of writes. See docs/scale.md",
    )
    flush_rows: int = Field(
        128,
        description="flush after this many written rows and when writes pause; 0 leaves it to Milvus. Milvus Lite "
        "scans unsealed rows on every search (the dedupe search runs once per batch): see docs/performance.md",
    )
    duplicate_threshold: float | None = Field(
        None,
        ge=0.0,
        le=1.0,
        description="cosine similarity at which the nearest other object is marked duplicate_of (docs/architecture.md);"
        " unset: the calibrated one of the index's model family (lookalike/families.py), none for some families",
    )

    # --- model
    model: str = "mobilenetv2_100"
    weights: Path | None = Field(None, description="local checkpoint; unset means timm downloads weights")
    weights_dirs: Annotated[list[Path], NoDecode] = Field(
        default_factory=list,
        description="directories (comma-separated) searched for the checkpoint a collection's 'file:<name>:<sha>' "
        "tag names, when neither the path recorded with it nor LOOKALIKE_WEIGHTS holds it (docs/model-changes.md)",
    )
    pretrained: bool = Field(True, description="false: random init, for plumbing tests only")
    device: str = "auto"
    batch_size: int = 32
    infer_batch: int = Field(
        0, description="images per forward pass; 0: 4 with ONNX Runtime (memory), 8 with torch on a CPU, all on GPU"
    )
    threads: int = Field(0, description="torch threads; 0 means all cores")
    draft_decode: bool = Field(
        True, description="decode JPEGs at reduced scale, just above the model's resize size; false: full size"
    )
    runtime: Literal["auto", "torch", "onnx"] = Field(
        "auto", description="forward pass engine; auto: ONNX Runtime on a CPU where its vectors match torch's"
    )
    model_cache: Path = Field(Path("~/.cache/lookalike"), description="exported models (ONNX), reused across runs")

    # --- producers
    bridge_host: str = "127.0.0.1"
    bridge_port: int = 8088
    bridge_token: SecretStr = SecretStr("lookalike-dev-token")
    bridge_max_body: int = 1024 * 1024
    bridge_subscribe_hosts: str = Field(
        "sns.*.amazonaws.com,sns.*.amazonaws.com.cn",
        description="comma-separated host patterns ('*' is one DNS label) whose SNS SubscribeURL the bridge fetches",
    )
    bridge_max_inflight: int = Field(32, description="requests the bridge handles at once; more get 503 + Retry-After")
    bridge_max_connections: int = Field(4096, description="open connections the bridge serves; beyond, 503")
    bridge_idle_timeout: float = Field(5.0, description="seconds a connection may stay silent before its next request")
    bridge_read_timeout: float = Field(10.0, description="seconds a request's body may take to arrive")

    # --- local stack and operations
    state_dir: Path = Path(".lookalike")
    dashboard_port: int = 8501
    metrics_port: int = Field(0, description="worker Prometheus port; 0 disables")
    metrics_host: str = Field("127.0.0.1", description="interface for /metrics; 0.0.0.0 in containers")
    log_level: str = "INFO"

    # --- query API (dashboard/api): listens on loopback unless configured otherwise
    api_host: str = Field("127.0.0.1", description="interface the API listens on; 0.0.0.0 only on purpose")
    api_port: int = 8090
    api_token: SecretStr = Field(SecretStr("lookalike-api-dev-token"), description="bearer token of every /v1 route")

    # --- dashboard access: empty (the local stack) means no login; compose requires one
    dashboard_password: SecretStr = Field(
        SecretStr(""), description="password the dashboard asks for before showing anything; empty: no login"
    )

    # --- worker robustness
    buckets: Annotated[list[str], NoDecode] = Field(
        default_factory=list, description="more buckets to index besides `bucket` (comma-separated)"
    )
    decode_budget_pixels: int = Field(
        0, description="pixels one worker decodes at once, all threads together; 0: 2 x max_image_pixels"
    )

    @field_validator(
        "weights",
        "dlq_topic",
        "feed_topic",
        "kafka_sasl_mechanism",
        "kafka_sasl_username",
        "kafka_ssl_cafile",
        "duplicate_threshold",
        mode="before",
    )
    @classmethod
    def _empty_is_none(cls, value: object) -> object:
        """An empty variable means unset: ``as_env`` writes unset fields so, to override ``.env``."""
        return None if value in ("", None) else value

    @field_validator("buckets", "weights_dirs", mode="before")
    @classmethod
    def _split_list(cls, value: object) -> object:
        if isinstance(value, str):
            return [b.strip() for b in value.split(",") if b.strip()]
        return value

    @property
    def watched_buckets(self) -> tuple[str, ...]:
        """Every bucket whose events the workers act on: ``bucket`` first, then ``buckets``."""
        return tuple(dict.fromkeys([self.bucket, *self.buckets]))

    @property
    def decode_budget(self) -> int:
        """Pixels decoded at once per worker: room for two of the largest images allowed."""
        return self.decode_budget_pixels or 2 * self.max_image_pixels

    @property
    def dead_letter_topic(self) -> str:
        return self.dlq_topic or f"{self.topic}.dlq"

    @property
    def change_feed_topic(self) -> str:
        return self.feed_topic or f"{self.topic}.indexed"

    @property
    def s3_host(self) -> tuple[str, int]:
        return _host_port(self.s3_endpoint, 9000)

    @property
    def kafka_host(self) -> tuple[str, int]:
        host, _, port = self.kafka_bootstrap.split(",")[0].rpartition(":")
        return host or "127.0.0.1", int(port)

    @property
    def milvus_host(self) -> tuple[str, int]:
        return _host_port(self.milvus_uri, 19530)

    @property
    def bridge_url(self) -> str:
        return f"http://{self.bridge_host}:{self.bridge_port}/events"

    @property
    def api_url(self) -> str:
        return f"http://{self.api_host}:{self.api_port}"

    def scoped(self, name: str, **overrides: Any) -> Settings:
        """The same stack and model with names of a run's own, so it never sees the configured data.

        ``name`` (lowercase letters, digits, hyphens) becomes the bucket; the topic, dead-letter
        topic, consumer group and collection are derived from it. Private runs (eval, bench, tests)
        all scope this one way, so their leftovers are recognisable by name.
        """
        if not _SCOPE_NAME.fullmatch(name):
            raise ValueError(f"scope name {name!r}: use 3-40 lowercase letters, digits and hyphens")
        update: dict[str, Any] = {
            "bucket": name,
            "topic": f"lookalike.{name}",
            "dlq_topic": f"lookalike.{name}.dlq",
            "feed_topic": f"lookalike.{name}.indexed",
            "group": f"lookalike-{name}",
            "collection": f"lookalike_{name.replace('-', '_')}",
            **overrides,
        }
        return self.model_copy(update=update)

    def as_env(self) -> dict[str, str]:
        """These settings as ``LOOKALIKE_*`` variables, so a child process runs with exactly them.

        An unset field is written empty rather than left out: otherwise the child would take that
        variable from the parent's environment or its ``.env`` (a restarted worker loaded the old
        model's ``LOOKALIKE_WEIGHTS`` into the new model that way)."""
        env: dict[str, str] = {}
        for field_name, value in self.model_dump().items():
            if value is None:
                value = ""
            elif isinstance(value, SecretStr):
                value = value.get_secret_value()
            elif isinstance(value, list):  # comma-separated, as the list fields read them
                value = ",".join(str(v) for v in value)
            env[f"LOOKALIKE_{field_name.upper()}"] = str(value)
        return env


_SCOPE_NAME = re.compile(r"[a-z0-9][a-z0-9-]{1,38}[a-z0-9]")


def _host_port(url: str, default_port: int) -> tuple[str, int]:
    parsed = urlparse(url if "://" in url else f"http://{url}")
    return parsed.hostname or "127.0.0.1", parsed.port or default_port
