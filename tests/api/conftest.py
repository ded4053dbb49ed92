"""Fixtures of the API tests: one indexed sample for the package and an app serving it in-process.

The sample is the dashboard tests' (``tests/dashboard/sample.py``: a few classes, keys
``<class>/<file>``, one junk object dead-lettered) plus a copy under a key with spaces, unicode and
nested folders. The app gets the session's model instead of loading its own; everything else
(SeaweedFS, Tansu, Milvus Lite, a worker) is real.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import open_pipeline
from tests.dashboard.sample import Sample, index_sample
from tests.helpers import DATASET, wait_for

TOKEN = "test-api-token"
ODD_KEY = "odd dir/sub folder/ünïcödé ☃ 100%_x.jpg"
CLASSES = ("Afghan_hound", "ambulance", "banana", "basketball")
PER_CLASS = 4


@dataclass(frozen=True)
class Indexed:
    pipeline: Any
    sample: Sample

    @property
    def settings(self) -> Any:
        return self.pipeline.settings

    @property
    def keys(self) -> set[str]:
        return set(self.sample.keys)


@pytest.fixture(scope="package")
def indexed(servers: dict[str, str], embedder: object, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Indexed]:
    """S3 server, bucket, topic, group, collection and one worker, with the sample and the odd key indexed."""
    tmp: Path = tmp_path_factory.mktemp("api")
    with open_pipeline(servers, embedder, tmp, api_token=TOKEN) as p:
        sample = index_sample(p, classes=CLASSES, per_class=PER_CLASS)
        source = sorted((DATASET / "train" / "brain_coral").iterdir())[0]  # a class of its own here
        p.store.put_file(p.settings.bucket, ODD_KEY, source, "image/jpeg")
        wanted = f"{p.settings.bucket}/{ODD_KEY}"
        wait_for(lambda: wanted in p.indexed(), 120, interval=0.5, what="the odd key indexed")
        yield Indexed(p, Sample({**sample.keys, ODD_KEY: source}))


@pytest.fixture(scope="package")
def client(indexed: Indexed, embedder: object) -> Iterator[Any]:
    """The app on the sample's settings, through FastAPI's TestClient (httpx), lifespan included."""
    from fastapi.testclient import TestClient

    from dashboard.api.app import create_app

    app = create_app(indexed.settings, embedder=embedder)  # type: ignore[arg-type]
    with TestClient(app, raise_server_exceptions=False) as c:
        c.headers["Authorization"] = f"Bearer {TOKEN}"
        yield c


@pytest.fixture()
def anonymous(client: Any) -> Any:
    """The same app, without the token (no lifespan of its own: the package's client runs it)."""
    from fastapi.testclient import TestClient

    return TestClient(client.app, raise_server_exceptions=False)
