"""One cheap question asked before a slow client is built: does anything listen at host:port?

A Kafka client or a hub download aimed at a dead address holds the caller for seconds (or a minute
of retries); a TCP connect with a deadline answers in milliseconds when the port is closed.
"""

from __future__ import annotations

import socket
import threading


def connects(host: str, port: int, timeout: float = 1.0) -> bool:
    """Whether a TCP connection to ``host:port`` opens within ``timeout`` seconds, name resolution
    included (``getaddrinfo`` takes no timeout, so the attempt runs in a daemon thread)."""
    answer: list[bool] = []

    def attempt() -> None:
        try:
            with socket.create_connection((host, port), timeout=timeout):
                answer.append(True)
        except OSError:
            answer.append(False)

    thread = threading.Thread(target=attempt, daemon=True, name="lookalike-connects")
    thread.start()
    thread.join(timeout + 0.5)
    return bool(answer and answer[0])
