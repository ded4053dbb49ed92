"""Retry with capped backoff for infrastructure failures, logging one line per state change."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import TypeVar

from consumers.metrics import UNAVAILABLE
from lookalike.errors import Unavailable

log = logging.getLogger(__name__)
T = TypeVar("T")


class Backoff:
    """Capped exponential backoff that logs one line when a service fails and one when it returns."""

    def __init__(self, first: float = 0.5, cap: float = 10.0) -> None:
        self.first = first
        self.cap = cap
        self.delay = first
        self.down_since: float | None = None
        self.service = ""

    def failed(self, exc: Unavailable) -> float:
        if self.down_since is None or exc.service != self.service:
            log.error("%s is unavailable (%s); pausing consumption, retrying with backoff", exc.service, exc.detail)
            UNAVAILABLE.labels(exc.service).set(1)
            self.down_since = self.down_since or time.monotonic()
            self.service = exc.service
            self.delay = self.first
        delay = self.delay
        self.delay = min(self.cap, self.delay * 2)
        return delay

    def recovered(self) -> None:
        if self.down_since is not None:
            log.warning("%s is back after %.1f s; resuming", self.service, time.monotonic() - self.down_since)
            UNAVAILABLE.labels(self.service).set(0)
        self.down_since = None
        self.delay = self.first


def retry_until(fn: Callable[[], T], stop: threading.Event, max_outage_s: float = 0.0) -> T | None:
    """Run ``fn`` until it succeeds; ``None`` if stopped first. Re-raises after ``max_outage_s`` (0: never)."""
    backoff = Backoff()
    while True:
        try:
            result = fn()
        except Unavailable as exc:
            delay = backoff.failed(exc)
            if max_outage_s and backoff.down_since and time.monotonic() - backoff.down_since > max_outage_s:
                raise
            if stop.wait(delay):
                return None
            continue
        backoff.recovered()
        return result
