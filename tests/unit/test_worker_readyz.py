"""The worker's ``/readyz``: what Kubernetes' readiness probe (infra/deploy/helm) asks, on the metrics port."""

from __future__ import annotations

import urllib.error
import urllib.request
from collections.abc import Iterator

import pytest

from consumers import metrics
from tests.helpers import free_port


@pytest.fixture
def base_url() -> Iterator[str]:
    port = free_port()
    server = metrics.serve(port)
    assert server is not None
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.shutdown()
        server.server_close()
        metrics.READY.set(0)


def status(url: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def test_readyz_follows_the_ready_gauge(base_url: str) -> None:
    """503 until the worker is ready (model loaded, partitions assigned), 200 while it is, 503 after."""
    metrics.READY.set(0)
    assert status(f"{base_url}/readyz") == (503, b"not ready\n")
    metrics.READY.set(1)
    assert status(f"{base_url}/readyz") == (200, b"ready\n")
    metrics.READY.set(0)
    assert status(f"{base_url}/readyz")[0] == 503


def test_metrics_are_still_served_beside_readyz(base_url: str) -> None:
    code, body = status(f"{base_url}/metrics")
    assert code == 200 and b"lookalike_worker_ready" in body


def test_port_zero_serves_nothing() -> None:
    assert metrics.serve(0) is None
