"""Small lookups over rendered objects, shared by the chart tests."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

Doc = dict[str, Any]


def of_kind(docs: list[Doc], kind: str) -> list[Doc]:
    return [doc for doc in docs if doc["kind"] == kind]


def named(docs: list[Doc], kind: str, suffix: str) -> Doc:
    """The one ``kind`` object whose name ends in ``-<suffix>``."""
    found = [doc for doc in of_kind(docs, kind) if doc["metadata"]["name"].endswith(f"-{suffix}")]
    assert len(found) == 1, f"{kind} *-{suffix}: found {[d['metadata']['name'] for d in found]}"
    return found[0]


def pod_specs(docs: list[Doc]) -> Iterator[tuple[Doc, Doc]]:
    """(owner, pod spec) of every Deployment and Job."""
    for doc in docs:
        if doc["kind"] in ("Deployment", "Job"):
            yield doc, doc["spec"]["template"]["spec"]


def containers(spec: Doc) -> list[Doc]:
    """Init containers and containers alike: each one is held to the same security rules."""
    return [*spec.get("initContainers", []), *spec["containers"]]


def settings(docs: list[Doc]) -> dict[str, str]:
    """The LOOKALIKE_* settings the ConfigMap gives every pod."""
    return dict(of_kind(docs, "ConfigMap")[0]["data"])


def env(container: Doc) -> dict[str, Doc]:
    return {item["name"]: item for item in container.get("env", [])}
