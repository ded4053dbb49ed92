"""Which part of the stack answers: the banner that names what is down, before anything else fails.

Each check is a cheap TCP connect (plus one real call where it is cheap), so a dead Milvus or Kafka
never makes the page hang for a client's full connect timeout.
"""

from __future__ import annotations

from dataclasses import dataclass

from lookalike.net import connects
from lookalike.settings import Settings

LABELS = {"s3": "S3 object store", "kafka": "Kafka event bus", "milvus": "Milvus vector index"}


@dataclass(frozen=True)
class PartHealth:
    part: str
    address: str
    up: bool
    detail: str = ""

    @property
    def label(self) -> str:
        return LABELS.get(self.part, self.part)

    def message(self) -> str:
        return f"{self.label} is unreachable at {self.address}" + (f": {self.detail}" if self.detail else "")


def kafka_hosts(bootstrap: str) -> list[tuple[str, int]]:
    out = []
    for item in bootstrap.split(","):
        host, _, port = item.strip().rpartition(":")
        if port.isdigit():
            out.append((host or "127.0.0.1", int(port)))
    return out


def check_stack(settings: Settings, timeout: float = 1.0) -> list[PartHealth]:
    """Reachability of S3, Kafka and Milvus, in that order."""
    s3 = PartHealth("s3", settings.s3_endpoint, connects(*settings.s3_host, timeout=timeout))
    kafka_up = any(connects(h, p, timeout=timeout) for h, p in kafka_hosts(settings.kafka_bootstrap))
    kafka = PartHealth("kafka", settings.kafka_bootstrap, kafka_up)
    remote = "://" in settings.milvus_uri  # otherwise a Milvus Lite file opened in-process
    milvus_up = connects(*settings.milvus_host, timeout=timeout) if remote else True
    milvus = PartHealth("milvus", settings.milvus_uri, milvus_up)
    return [s3, kafka, milvus]


def down_parts(parts: list[PartHealth]) -> set[str]:
    return {p.part for p in parts if not p.up}
