"""The bridge: S3 event notifications over HTTP in, one Kafka message per record out.

AWS S3 (through an SNS HTTP subscription) and MinIO's ``notify_webhook`` POST events to us; MinIO
and SeaweedFS (the local stack's S3) can publish to Kafka themselves, and then this bridge is not
needed. We answer 2xx only once the broker acknowledged every record, so a sender that retries on
errors never loses an event; 503 when Kafka is down, 400 for what can never be published. Each
message is keyed ``bucket/key`` so that all events of one object land in one partition, in order, as
MinIO's own Kafka target keys them.

The HTTP contract lives in ``producers.bridge_app`` (FastAPI); this module serves it with uvicorn on
a thread of its own, so ``serve(settings, stop)`` returns cleanly once ``stop`` is set. uvicorn
bounds open connections (``limit_concurrency``) and idle keep-alive time; one gap is closed here: a
connection that never sends a complete request head is dropped after the idle timeout too, instead of
being kept forever.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import threading
import time
from typing import Any

import uvicorn
from uvicorn.protocols.http.h11_impl import H11Protocol

from lookalike.settings import Settings
from producers.bridge_app import make_app
from producers.publisher import Publisher, Publishing, PublishRefused

__all__ = ["BridgeServer", "PublishRefused", "Publisher", "Publishing", "serve"]

log = logging.getLogger(__name__)

START_TIMEOUT_S = 30.0
SHUTDOWN_GRACE_S = 10.0


def _protocol_with_head_deadline(seconds: float) -> type[H11Protocol]:
    """uvicorn's h11 protocol, plus a deadline for each request head.

    uvicorn arms its keep-alive timer only after a response, and cancels it on the first byte; a
    client that connects and stays silent, or sends its headers a byte at a time, holds the
    connection forever. Here every connection must complete a request head within ``seconds`` of
    opening or of its previous response, or it is closed.
    """

    class HeadDeadlineProtocol(H11Protocol):
        _head_timer: asyncio.TimerHandle | None = None

        def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
            super().connection_made(transport)
            self._arm_head_deadline()

        def on_response_complete(self) -> None:
            super().on_response_complete()
            self._arm_head_deadline()

        def connection_lost(self, exc: Exception | None) -> None:
            if self._head_timer is not None:
                self._head_timer.cancel()
            super().connection_lost(exc)

        def _arm_head_deadline(self) -> None:
            if self._head_timer is not None:
                self._head_timer.cancel()
            waiting_after = self.cycle  # a new request head replaces the cycle
            self._head_timer = self.loop.call_later(seconds, self._head_overdue, waiting_after)

        def _head_overdue(self, waiting_after: Any) -> None:
            if self.cycle is waiting_after and not self.transport.is_closing():
                self.transport.close()

    return HeadDeadlineProtocol


def _listen(host: str, port: int) -> socket.socket:
    """Bind here, not inside uvicorn: a taken port raises ``OSError`` to the caller (uvicorn would
    ``sys.exit`` its thread), and port 0 picks a free one."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError:
        sock.close()
        raise
    sock.set_inheritable(True)
    return sock


class BridgeServer:
    """The bridge app served by uvicorn on its own thread; ``start``/``stop`` or a ``with`` block."""

    def __init__(self, settings: Settings, publisher: Publishing | None = None) -> None:
        self.settings = settings
        self.publisher: Publishing = publisher or Publisher(settings)
        self.app = make_app(settings, self.publisher)
        self.socket = _listen(settings.bridge_host, settings.bridge_port)
        self.port: int = self.socket.getsockname()[1]
        config = uvicorn.Config(
            self.app,
            http=_protocol_with_head_deadline(settings.bridge_idle_timeout),
            loop="asyncio",
            ws="none",
            lifespan="off",
            log_config=None,  # the process's logging, as configured by the CLI
            access_log=False,
            timeout_keep_alive=max(1, round(settings.bridge_idle_timeout)),
            limit_concurrency=settings.bridge_max_connections,
            timeout_graceful_shutdown=int(SHUTDOWN_GRACE_S),
            server_header=False,
        )
        self._server = uvicorn.Server(config)
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://{self.settings.bridge_host}:{self.port}/events"

    @property
    def connections(self) -> int:
        """Connections open right now (what ``limit_concurrency`` counts)."""
        return len(self._server.server_state.connections)

    def start(self, timeout: float = START_TIMEOUT_S) -> None:
        """Returns once the server accepts requests; raises ``RuntimeError`` if it did not start."""
        self._thread = threading.Thread(
            target=self._server.run, kwargs={"sockets": [self.socket]}, name="bridge-http", daemon=True
        )
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"the bridge did not start on {self.settings.bridge_host}:{self.port}")
            self._thread.join(0.05)

    def stop(self) -> None:
        """Stop accepting, let requests in flight finish (up to the grace period), close the producer."""
        self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(SHUTDOWN_GRACE_S + 5)
        self.socket.close()
        self.publisher.close()

    def __enter__(self) -> BridgeServer:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def serve(settings: Settings, stop: threading.Event) -> None:
    """Serve until ``stop`` is set."""
    server = BridgeServer(settings)
    server.start()
    log.info(
        "bridge listening on http://%s:%d/events -> topic %s",
        settings.bridge_host,
        server.port,
        settings.topic,
    )
    try:
        stop.wait()
    finally:
        server.stop()
