"""The live panel's pictures over time, from what it already reads: no Milvus scan, no new query.

* Ingest rate, per ``BIN_MS``, over the last ``SPAN_MS``: from the change feed's tail that every
  refresh reads anyway (``dashboard.live``), so the line is there as soon as the tab opens.
* Consumer lag over the same minutes: Kafka only says the lag now, so ``History`` keeps each
  refresh's offsets for the dashboard process (every tab shares it).
* "n of N objects indexed" for a bulk upload in progress: from the same offsets. While the lag is
  above zero, N is what arrived on the topic since the lag was last zero, n what the workers
  committed since; dead letters count as done, as the workers are through with them too.
  Started while a load ran, the count begins at the oldest refresh kept (``since`` says when).
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # ``dashboard.live`` imports this module
    from dashboard.live import PartitionLag
    from lookalike.feed import FeedRecord

SPAN_MS = 10 * 60_000
BIN_MS = 15_000


def rate_series(
    records: Sequence[FeedRecord], now_ms: int, full: bool, span_ms: int = SPAN_MS, bin_ms: int = BIN_MS
) -> list[float]:
    """Objects indexed per second in each ``bin_ms`` of the last ``span_ms``, oldest first.

    ``full``: the tail reached its reader's limit, so in a flood it covers less than the span; its
    bins start at its oldest record then, rather than showing the time before as idle. The newest
    bin is still filling: its rate is over the part of it that has passed.
    """
    start = now_ms - span_ms
    if full and records:
        start = max(start, min(r.at for r in records) + bin_ms)  # the first bin would hold part of its records
    first, last = start // bin_ms, now_ms // bin_ms
    counts = [0] * (last - first + 1)
    for r in records:
        slot = r.at // bin_ms - first
        if r.outcome == "indexed" and 0 <= slot < len(counts) and r.at <= now_ms:
            counts[slot] += 1
    seconds = [bin_ms / 1000] * len(counts)
    seconds[-1] = max(1.0, (now_ms - last * bin_ms) / 1000)
    return [round(c / s, 3) for c, s in zip(counts, seconds, strict=True)]


@dataclass(frozen=True)
class Point:
    """One refresh: total lag, offsets committed (summed over partitions) and end offsets (summed)."""

    at_ms: int
    lag: int
    done: int
    end: int


@dataclass(frozen=True)
class Progress:
    done: int
    total: int
    since_ms: int

    @property
    def fraction(self) -> float:
        return min(1.0, self.done / self.total) if self.total else 1.0


class History:
    """The last ``span_ms`` of refreshes, for one dashboard process; thread-safe."""

    def __init__(self, span_ms: int = SPAN_MS) -> None:
        self.span_ms = span_ms
        self._points: deque[Point] = deque()
        self._lock = threading.Lock()

    def add(self, at_ms: int, lag: Sequence[PartitionLag] | None) -> None:
        """Record one snapshot's lag; the same snapshot twice (another tab, a rerun) counts once."""
        if lag is None:
            return
        # end - lag is what the group has done, also for a partition it never committed (lag = end - begin)
        point = Point(at_ms, sum(p.lag for p in lag), sum(p.end - p.lag for p in lag), sum(p.end for p in lag))
        with self._lock:
            if self._points and at_ms <= self._points[-1].at_ms:
                return
            self._points.append(point)
            while self._points and self._points[0].at_ms < at_ms - self.span_ms:
                self._points.popleft()

    def lag_series(self) -> list[int]:
        with self._lock:
            return [p.lag for p in self._points]

    def progress(self) -> Progress | None:
        """The load under way (lag above zero now), counted from the last idle refresh; else None."""
        with self._lock:
            points = list(self._points)
        if not points or points[-1].lag == 0:
            return None
        now = points[-1]
        base = next((p for p in reversed(points[:-1]) if p.lag == 0), points[0])
        total = now.end - base.done
        if total <= 0:
            return None
        return Progress(done=min(total, max(0, now.done - base.done)), total=total, since_ms=base.at_ms)
