"""What the two ``lookalike search`` test modules (images and words) share: a model that must not
load, a checkout with no ``.env`` and no API listening, and one call of the command."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from infra import cli
from tests.helpers import free_port


class NoModel:
    """Stands for ``Searcher``: any construction means the model was being loaded."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        raise AssertionError("the model must not load")


@pytest.fixture(autouse=True)
def isolated(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No .env of the checkout, no API on the default port: an API port nothing listens on."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("LOOKALIKE_API_PORT", str(free_port()))


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    rc = cli.main(["search", *argv])
    out, err = capsys.readouterr()
    return rc, out, err


def answer(handler: BaseHTTPRequestHandler, status: int, doc: dict[str, Any]) -> None:
    """Send ``doc`` as the JSON body of a ``status`` reply, as the API does."""
    data = json.dumps(doc).encode()
    handler.send_response(status)
    handler.send_header("Content-Type", "application/json")
    handler.send_header("Content-Length", str(len(data)))
    handler.end_headers()
    handler.wfile.write(data)


@contextmanager
def served(handler: type[BaseHTTPRequestHandler], monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """``handler`` listening where the command looks for the API, with the token it sends; stopped
    on the way out, even when the test fails."""
    port = free_port()
    server = ThreadingHTTPServer(("127.0.0.1", port), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    monkeypatch.setenv("LOOKALIKE_API_PORT", str(port))
    monkeypatch.setenv("LOOKALIKE_API_TOKEN", "t0ken")
    try:
        yield
    finally:
        server.shutdown()
        server.server_close()
