"""Connections that do nothing cost the bridge nothing: 1,000 idle ones leave it responsive, and
silent or dawdling ones are closed after the idle timeout. Loopback only, bounded in count and time."""

from __future__ import annotations

import contextlib
import socket
from collections.abc import Iterator

import pytest

from tests.helpers import wait_for
from tests.unit.bridge_tools import TOKEN, StartBridge, bridges, closed_by_peer, post

IDLE = 1000
BODY = b'{"Records": [{"eventName": "s3:ObjectCreated:Put", "s3": {"bucket": {"name": "b"}, "object": {"key": "k"}}}]}'


@pytest.fixture()
def start_bridge() -> Iterator[StartBridge]:
    with bridges() as start:
        yield start


@contextlib.contextmanager
def idle_sockets(port: int, n: int) -> Iterator[list[socket.socket]]:
    """``n`` connections that never send a byte; all closed on the way out."""
    socks: list[socket.socket] = []
    try:
        for _ in range(n):
            socks.append(socket.create_connection(("127.0.0.1", port), timeout=10))
        yield socks
    finally:
        for s in socks:
            s.close()


def test_stays_responsive_with_1000_idle_connections_open(start_bridge: StartBridge) -> None:
    server, pub = start_bridge(bridge_idle_timeout=120)  # none of them times out during the test
    with idle_sockets(server.port, IDLE):
        wait_for(lambda: server.connections >= IDLE, 30, what=f"the bridge to accept {IDLE} connections")
        # a normal request still gets its answer at once: no thread or slot is held by the idle ones
        assert post(server.url, BODY, timeout=5) == (200, {"published": 1})
        assert post(server.url, BODY, timeout=5)[0] == 200
        assert server.connections >= IDLE  # served beside them, not by dropping them
    wait_for(lambda: server.connections == 0, 30, what="the bridge to drop the closed connections")
    assert len(pub.events) == 2


def test_silent_and_dawdling_connections_are_closed_after_the_idle_timeout(start_bridge: StartBridge) -> None:
    server, pub = start_bridge(bridge_idle_timeout=0.5)
    with idle_sockets(server.port, 20) as socks:
        # one sends half a request head and stops; one finishes a request and then keeps quiet
        socks[0].sendall(b"POST /events HTTP/1.1\r\nHost: x\r\n")
        socks[1].sendall(
            b"POST /events HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\nContent-Length: %d\r\n\r\n%s"
            % (TOKEN.encode(), len(BODY), BODY)
        )
        for i, s in enumerate(socks):
            assert closed_by_peer(s, wait=15), f"connection {i} is still open"
    wait_for(lambda: server.connections == 0, 10, what="no connections left")
    assert len(pub.events) == 1
