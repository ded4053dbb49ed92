"""One settings class for every command, read from ``LOOKALIKE_*`` variables (and ``.env``).

It is built once at the edge (the CLI, the dashboard's ``main``) and passed down; library code
never reads the environment itself. Every default points at the local stack that
``lookalike stack up`` starts, so commands work there with no variables set.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated
from urllib.parse import urlparse

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict


class Settings(BaseSettings):
    """Everything a producer, worker, dashboard or tool needs to know about the stack."""

    model_config = SettingsConfigDict(env_prefix="LOOKALIKE_", env_file=".env", extra="ignore")

    # --- object store (S3 API: MinIO in production, moto locally)
    s3_endpoint: str = "http://127.0.0.1:9000"
    s3_access_key: str = "lookalike"
    s3_secret_key: SecretStr = SecretStr("lookalike-secret")
    s3_region: str = "us-east-1"
    bucket: str = "images"
    max_object_bytes: int = Field(50 * 1024 * 1024, description="bigger objects are dead-lettered unread")
    max_image_pixels: int = Field(80_000_000, description="decompression-bomb guard")

    # --- event bus (Kafka protocol: Apache Kafka in production, Tansu locally)
    kafka_bootstrap: str = "127.0.0.1:9092"
    topic: str = "lookalike.events"
    dlq_topic: str | None = Field(None, description="defaults to '<topic>.dlq'")
    group: str = "lookalike-workers"
    partitions: int = 3
    session_timeout_ms: int = 6000

    # --- vector index (Milvus: standalone/cluster in production, Milvus Lite locally)
    milvus_uri: str = "http://127.0.0.1:19530"
    milvus_token: SecretStr = SecretStr("")
    collection: str = "lookalike_images"
    index_type: str = "HNSW"
    flush_rows: int = Field(
        512, description="flush after this many written rows and when writes pause; 0 leaves it to Milvus"
    )

    # --- model
    model: str = "mobilenetv2_100"
    weights: Path | None = Field(None, description="local checkpoint; unset means timm downloads weights")
    pretrained: bool = Field(True, description="false: random init, for plumbing tests only")
    device: str = "auto"
    batch_size: int = 32
    infer_batch: int = Field(0, description="images per forward pass; 0: 8 on CPU (cache-sized), all on GPU")
    threads: int = Field(0, description="torch threads; 0 means all cores")

    # --- producers
    bridge_host: str = "127.0.0.1"
    bridge_port: int = 8088
    bridge_token: SecretStr = SecretStr("lookalike-dev-token")
    bridge_max_body: int = 1024 * 1024

    # --- local stack and operations
    state_dir: Path = Path(".lookalike")
    dashboard_port: int = 8501
    metrics_port: int = Field(0, description="worker Prometheus port; 0 disables")
    metrics_host: str = Field("127.0.0.1", description="interface for /metrics; 0.0.0.0 in containers")
    log_level: str = "INFO"

    # --- worker robustness
    buckets: Annotated[list[str], NoDecode] = Field(
        default_factory=list, description="more buckets to index besides `bucket` (comma-separated)"
    )
    decode_budget_pixels: int = Field(
        0, description="pixels one worker decodes at once, all threads together; 0: 2 x max_image_pixels"
    )

    @field_validator("weights", mode="before")
    @classmethod
    def _empty_weights_is_none(cls, value: object) -> object:
        return None if value in ("", None) else value

    @field_validator("buckets", mode="before")
    @classmethod
    def _split_buckets(cls, value: object) -> object:
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


def _host_port(url: str, default_port: int) -> tuple[str, int]:
    parsed = urlparse(url if "://" in url else f"http://{url}")
    return parsed.hostname or "127.0.0.1", parsed.port or default_port
