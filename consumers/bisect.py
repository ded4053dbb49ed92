"""Containment for calls that cover a whole batch: split a refused batch until the culprits stand alone.

A batch-level call (index look-up, model call, near-duplicate search, upsert, delete, dead-letter or
feed publish) can fail because of one object in it: a key Milvus cannot parse, an image the model
chokes on. Naming each such case is a losing game; instead, as AWS Lambda's
``BisectBatchOnFunctionError`` does for stream sources, any failure that is not an outage splits the
batch in halves and retries each, recursively, until the items that fail *alone* are found. Those
are returned with their error (the caller dead-letters them); every other item is processed, and the
batch's offsets move on.

Failures that are not about the data propagate unchanged, so the caller retries the whole batch:
``Unavailable`` (a service is down) and ``ModelMismatch`` (the index moved to another model: the
process must restart). A batch of n items with one culprit costs about 2·log2(n) extra calls.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Generic, TypeVar

from consumers.metrics import BISECTED
from lookalike.errors import ModelMismatch, Unavailable

log = logging.getLogger(__name__)

T = TypeVar("T")
R = TypeVar("R")

# raised by conditions of the process or its services, never by one object: retried whole
NOT_DATA: tuple[type[BaseException], ...] = (Unavailable, ModelMismatch)


@dataclass
class Outcome(Generic[T, R]):
    """What a bisected call did: each accepted part with its result, and each item refused alone."""

    done: list[tuple[list[T], R]] = field(default_factory=list)
    failed: list[tuple[T, Exception]] = field(default_factory=list)

    @property
    def results(self) -> list[R]:
        return [r for _, r in self.done]

    @property
    def accepted(self) -> list[T]:
        return [item for part, _ in self.done for item in part]


def bisect(items: Sequence[T], call: Callable[[list[T]], R], stage: str = "") -> Outcome[T, R]:
    """``call(items)``; on a failure that is not an outage, the same on each half, down to single items.

    Parts run in the order of ``items`` (the first half before the second), so a call whose result
    depends on what earlier items wrote (near-duplicates of one batch) sees them as it would have.
    """
    outcome: Outcome[T, R] = Outcome()
    _run(list(items), call, outcome, stage)
    return outcome


def _run(items: list[T], call: Callable[[list[T]], R], outcome: Outcome[T, R], stage: str) -> None:
    if not items:
        return
    try:
        outcome.done.append((items, call(items)))
        return
    except NOT_DATA:
        raise
    except Exception as exc:  # containment: anything else is about some item of this batch
        if len(items) == 1:
            log.warning("%s refused one item: %s: %s", stage or "call", type(exc).__name__, exc)
            BISECTED.labels(stage or "call", "isolated").inc()
            outcome.failed.append((items[0], exc))
            return
        log.info("%s failed for a batch of %d (%s); splitting it", stage or "call", len(items), type(exc).__name__)
        BISECTED.labels(stage or "call", "split").inc()
    half = len(items) // 2
    _run(items[:half], call, outcome, stage)
    _run(items[half:], call, outcome, stage)
