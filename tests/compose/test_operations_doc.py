"""The production section of docs/operations.md (the README links it) names real files, services and commands."""

from __future__ import annotations

import re

from tests.compose.compose import ENV_EXAMPLE, GPU_COMPOSE, raw, read_env_file
from tests.helpers import REPO


def section() -> str:
    text = (REPO / "docs" / "operations.md").read_text()
    start = text.index("## Production deployment")
    end = text.find("\n## ", start + 1)
    return text[start : end if end > 0 else len(text)]


def test_the_section_covers_bring_up_scale_and_operations() -> None:
    doc = section()
    for needle in (
        "cp infra/deploy/.env.example infra/deploy/.env",
        "docker compose -f infra/deploy/docker-compose.yml up -d --build",
        "--scale worker=",
        "kafka-consumer-groups.sh",
        "backfill",
        "LOOKALIKE_WEIGHTS",
        "Rotating credentials",
        "Upgrading the model",
        "Local stack vs production",
        GPU_COMPOSE.relative_to(REPO).as_posix(),
    ):
        assert needle in doc, f"docs/operations.md production section lacks {needle!r}"


def test_services_and_variables_it_names_exist() -> None:
    doc = section()
    services = set(raw()["services"])
    named: set[str] = set()
    for group in re.findall(r"(?:logs(?: -f)?|up -d) ((?:[a-z][a-z-]+ ?)+)", doc):
        named.update(group.split())  # every word after `up -d` / `logs` is a service
    named.update(re.findall(r"(?:run --rm(?: -[ev] \S+)*|exec) ([a-z][a-z-]+)", doc))  # then a command
    assert {"worker", "kafka", "init-kafka", "init-minio"} <= named, named
    unknown = named - services
    assert not unknown, f"docs/operations.md names services the compose file lacks: {sorted(unknown)}"
    env = read_env_file(ENV_EXAMPLE)
    for var in set(re.findall(r"`((?:LOOKALIKE|MINIO|MILVUS|KAFKA|WORKER)_[A-Z0-9_]+)", doc)):
        assert var in env or var.endswith("_"), f"docs/operations.md names {var}, which infra/deploy/.env.example lacks"
