"""Fixtures of the dashboard tests: one indexed sample for the package, settings exported for the app."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import open_pipeline
from tests.dashboard.sample import DUP_THRESHOLD, DuplicateSample, Sample, index_duplicates, index_sample


@pytest.fixture(scope="package")
def indexed(
    servers: dict[str, str], embedder: object, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[object, Sample]]:
    """A pipeline (bucket, topic, group, collection, bridge, one worker) with the sample indexed."""
    tmp: Path = tmp_path_factory.mktemp("dashboard")
    with open_pipeline(servers, embedder, tmp) as p:
        yield p, index_sample(p)


@pytest.fixture(scope="package")
def duplicated(
    servers: dict[str, str], embedder: object, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[object, DuplicateSample]]:
    """A pipeline of its own with nine distinct images and edited copies of two of them, all indexed
    and marked by the real worker."""
    tmp: Path = tmp_path_factory.mktemp("duplicates")
    with open_pipeline(servers, embedder, tmp, duplicate_threshold=DUP_THRESHOLD) as p:
        yield p, index_duplicates(p)
