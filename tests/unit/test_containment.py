"""Containment by construction: one object that a batch-level call refuses never stops the batch.

Each batch-level call of the worker (index look-up, model call, near-duplicate search, re-check,
upsert, delete) is made to fail whenever its batch holds one poisoned
object, with an error no code names (``RuntimeError``). Bisection must find that object, dead-letter
it with the error, and write every other object. A record Kafka refuses alone (dead letters,
the change feed) is left out and the rest published; an outage (``Unavailable``) must still propagate
whole, so nothing is dead-lettered for it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pytest
from kafka.errors import KafkaTimeoutError, MessageSizeTooLargeError

from consumers.batch import Work
from consumers.bisect import bisect
from consumers.dedupe import Dedupe
from consumers.dlq import DeadLetter, DeadLetterWriter
from consumers.embed import embed
from consumers.feed import FeedWriter
from consumers.prepare import PrepareStage
from consumers.writer import Writer
from lookalike.errors import ModelMismatch, Unavailable
from lookalike.feed import FeedRecord
from lookalike.rows import IndexedState, IndexRow
from lookalike.settings import Settings
from tests.unit.fakes import FakeDeadLetters, FakeEmbedder, FakeFeed, FakeIndex, FakeStore, Topic, png

B = "images"
POISON = f"{B}/poison\x18.png"
POISON_COLOUR = (13, 13, 13)  # the fake model refuses an image of this mean colour


class Poisoned(RuntimeError):
    """An error that no classification names: only bisection can contain it."""


def _check(ids: Sequence[str], call: str, poisoned: str) -> None:
    if call == poisoned and POISON in ids:
        raise Poisoned(f"{call} refused a batch holding {POISON!r}")


class PoisonIndex(FakeIndex):
    """``FakeIndex`` whose call named ``poisoned`` fails for any batch that holds ``POISON``."""

    def __init__(self, poisoned: str) -> None:
        super().__init__()
        self.poisoned = poisoned
        self.calls: dict[str, int] = {}

    def _seen(self, call: str, ids: Sequence[str]) -> None:
        self.calls[call] = self.calls.get(call, 0) + 1
        _check(ids, call, self.poisoned)

    def states(self, ids: Sequence[str]) -> dict[str, IndexedState]:
        self._seen("states", ids)
        return super().states(ids)

    def upsert(self, rows: Sequence[IndexRow], checked: bool = False) -> None:
        self._seen("upsert", [r.id for r in rows])
        super().upsert(rows, checked)

    def delete(self, ids: Sequence[str], checked: bool = False) -> None:
        self._seen("delete", ids)
        super().delete(ids, checked)

    def nearest_other(self, vectors: np.ndarray, exclude: Sequence[str]) -> list[tuple[str, float] | None]:
        self._seen("nearest_other", exclude)
        return super().nearest_other(vectors, exclude)

    def marked_as_copies_of(self, ids: Sequence[str]) -> list[IndexRow]:
        self._seen("marked_as_copies_of", ids)
        return super().marked_as_copies_of(ids)


class PoisonEmbedder(FakeEmbedder):
    def embed_prepared(self, batch: Sequence[Any]) -> np.ndarray:
        if any(np.allclose(p, POISON_COLOUR) for p in batch):
            raise Poisoned("the model refused a batch holding the poisoned image")
        return super().embed_prepared(batch)


class FakeProducer:
    """A producer whose acknowledgement fails as Kafka's does: refused for ``POISON``, or every send."""

    def __init__(self, outage: bool = False) -> None:
        self.outage = outage
        self.sent: list[str] = []

    def send(self, topic: str, key: str, value: bytes) -> Any:
        producer = self

        class Future:
            def get(self, timeout: float) -> None:
                if producer.outage:
                    raise KafkaTimeoutError("no broker (fake)")
                if key == POISON:
                    raise MessageSizeTooLargeError("record too large (fake)")
                producer.sent.append(key)

        return Future()


def _run(poisoned: str, deleted: bool = False) -> tuple[PoisonIndex, FakeDeadLetters, Work, FakeFeed]:
    """Index nine objects and the poisoned one in one batch (or delete them all, with ``deleted``)."""
    settings = Settings(_env_file=None, bucket=B)  # type: ignore[call-arg]
    store, index, dlq, feed = FakeStore(), PoisonIndex(poisoned), FakeDeadLetters(), FakeFeed()
    planner = PrepareStage(settings, store, index, PoisonEmbedder(), threads=2)
    writer = Writer(index, dlq, flush_rows=0, dedupe=Dedupe(index, 0.99), feed=feed)
    topic = Topic()
    keys = [f"k{i}.png" for i in range(9)] + [POISON.split("/", 1)[1]]
    for i, key in enumerate(keys):
        colour = POISON_COLOUR if key in POISON and poisoned == "model" else (20 * i + 30, 7 * i, 200 - 9 * i)
        store.put(B, key, png(colour))
    try:
        if deleted:  # index them first (nothing poisoned yet), then remove them all
            poisoned_call, index.poisoned = index.poisoned, ""
            writer.write(*embed(planner.prepare([topic.event("created", B, k) for k in keys]), planner.embedder))
            index.poisoned = poisoned_call
            for key in keys:
                store.remove(B, key)
        work = planner.prepare([topic.event("removed" if deleted else "created", B, k) for k in keys])
        work, rows = embed(work, planner.embedder)
        writer.write(work, rows)
    finally:
        planner.close()
    return index, dlq, work, feed


# new objects are nobody's original, so no marked_as_copies_of is made for them: the delete case has it
@pytest.mark.parametrize("poisoned", ["states", "model", "nearest_other", "upsert"])
def test_one_refused_object_is_dead_lettered_and_the_rest_indexed(poisoned: str) -> None:
    index, dlq, _, _ = _run(poisoned)
    assert [d.key for d in dlq.letters] == [POISON]
    assert "Poisoned" in dlq.letters[0].reason
    assert sorted(index.rows) == sorted(f"{B}/k{i}.png" for i in range(9))


@pytest.mark.parametrize("poisoned", ["states", "delete", "marked_as_copies_of"])
def test_one_refused_delete_is_dead_lettered_and_the_rest_removed(poisoned: str) -> None:
    index, dlq, _, _ = _run(poisoned, deleted=True)
    assert [d.key for d in dlq.letters] == [POISON]
    assert set(index.rows) <= {POISON}  # the poisoned id's vector stays only if its delete was refused


@pytest.mark.parametrize("sink", ["feed", "dlq"])
def test_a_record_kafka_refuses_alone_is_left_out_and_the_rest_published(sink: str) -> None:
    producer = FakeProducer()
    keys = [f"{B}/k{i}.png" for i in range(5)] + [POISON] + [f"{B}/m{i}.png" for i in range(4)]
    if sink == "feed":
        feed = object.__new__(FeedWriter)
        feed.topic, feed.producer = "feed", producer
        feed.publish([FeedRecord(k, "indexed", 1) for k in keys])
    else:
        dlq = object.__new__(DeadLetterWriter)
        dlq.topic, dlq.producer = "dlq", producer
        dlq.send([DeadLetter(k, None, "not an image", "events", 0, i) for i, k in enumerate(keys)])
    assert sorted(set(producer.sent)) == sorted(k for k in keys if k != POISON)


def test_a_kafka_outage_is_unavailable_never_a_refusal() -> None:
    feed = object.__new__(FeedWriter)
    feed.topic, feed.producer = "feed", FakeProducer(outage=True)
    with pytest.raises(Unavailable):
        feed.publish([FeedRecord(f"{B}/k.png", "indexed", 1)])


def test_bisection_costs_a_few_calls_per_culprit() -> None:
    index, _, _, _ = _run("upsert")
    assert index.calls["upsert"] <= 2 * 4 + 1  # 10 items: about 2*log2(10) extra calls


@pytest.mark.parametrize("error", [Unavailable("milvus", "down"), ModelMismatch("alias moved")])
def test_errors_not_about_data_propagate_whole(error: Exception) -> None:
    calls: list[list[int]] = []

    def call(part: list[int]) -> None:
        calls.append(part)
        raise error

    with pytest.raises(type(error)):
        bisect([1, 2, 3, 4], call)
    assert calls == [[1, 2, 3, 4]]  # never split: the whole batch is retried later


def test_bisect_keeps_order_and_isolates_every_culprit() -> None:
    seen: list[list[int]] = []

    def call(part: list[int]) -> int:
        seen.append(part)
        if 3 in part or 6 in part:
            raise ValueError("bad")
        return sum(part)

    outcome = bisect(list(range(8)), call)
    assert [item for item, _ in outcome.failed] == [3, 6]
    assert outcome.accepted == [0, 1, 2, 4, 5, 7]  # the order of the input
    assert sum(outcome.results) == sum([0, 1, 2, 4, 5, 7])
