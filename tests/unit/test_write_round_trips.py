"""What one batch asks of the index: the alias check once, a search, and the reverse look-up only when
some id of the batch can be another row's original (it was indexed, or is being deleted).

Planned by the real plan stage against in-memory fakes, so ``Upsert.replaces`` comes from the same
look-up (overlaid with writes in flight) as in the worker. Also: the per-stage Milvus call counter.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from consumers.batch import Work
from consumers.dedupe import Dedupe
from consumers.embed import embed
from consumers.metrics import timed
from consumers.prepare import PrepareStage
from consumers.writer import Writer
from lookalike.milvus import CALLS, CallCounter
from lookalike.settings import Settings
from tests.unit.fakes import FakeDeadLetters, FakeEmbedder, FakeIndex, FakeStore, Topic, png

B = "images"
RED, NEAR_RED, BLUE = (200, 0, 0), (201, 1, 0), (0, 0, 200)


class Env:
    def __init__(self) -> None:
        settings = Settings(_env_file=None, bucket=B)  # type: ignore[call-arg]
        self.store, self.index, self.emb = FakeStore(), FakeIndex(), FakeEmbedder()
        self.planner = PrepareStage(settings, self.store, self.index, self.emb, threads=2)
        self.writer = Writer(self.index, FakeDeadLetters(), flush_rows=0, dedupe=Dedupe(self.index, 0.999))
        self.topic = Topic()

    def plan(self, *events: tuple[str, str, tuple[int, int, int] | None]) -> Work:
        for _kind, key, colour in events:
            if colour is None:
                self.store.remove(B, key)
            else:
                self.store.put(B, key, png(colour))
        return self.planner.prepare([self.topic.event(kind, B, key) for kind, key, _ in events])

    def write(self, work: Work) -> list[str]:
        """The index calls this batch's write made."""
        self.index.round_trips.clear()
        self.writer.write(*embed(work, self.emb))
        self.planner.inflight.release(work.batch_id)
        return list(self.index.round_trips)


@pytest.fixture()
def env() -> Iterator[Env]:
    e = Env()
    yield e
    e.planner.close()


def test_a_batch_of_new_objects_costs_one_check_one_search_one_upsert(env: Env) -> None:
    calls = env.write(env.plan(("created", "a.png", RED), ("created", "b.png", BLUE), ("created", "c.png", NEAR_RED)))
    assert calls == ["check_target", "nearest_other", "upsert"]
    assert env.index.rows[f"{B}/c.png"].duplicate_of == f"{B}/a.png"  # copies in one batch still meet


def test_an_overwrite_rechecks_the_copies_of_the_old_version(env: Env) -> None:
    env.write(env.plan(("created", "orig.png", RED)))
    env.write(env.plan(("created", "copy.png", NEAR_RED)))
    assert env.index.rows[f"{B}/copy.png"].duplicate_of == f"{B}/orig.png"
    calls = env.write(env.plan(("created", "orig.png", BLUE)))  # same key, another picture
    assert calls == ["check_target", "nearest_other", "marked_as_copies_of", "nearest_other", "upsert"]
    assert env.index.rows[f"{B}/copy.png"].duplicate_of == ""


def test_a_delete_rechecks_and_the_alias_is_checked_once_for_both_writes(env: Env) -> None:
    env.write(env.plan(("created", "orig.png", RED)))
    env.write(env.plan(("created", "copy.png", NEAR_RED)))
    calls = env.write(env.plan(("removed", "orig.png", None), ("created", "other.png", BLUE)))
    assert calls.count("check_target") == 1 and "check_target+upsert" not in calls
    assert "marked_as_copies_of" in calls and calls[-2:] == ["upsert", "delete"]
    assert env.index.rows[f"{B}/copy.png"].duplicate_of == ""


def test_replaces_comes_from_the_lookup_overlaid_with_writes_in_flight(env: Env) -> None:
    first = env.plan(("created", "x.png", RED))
    second = env.plan(("created", "x.png", BLUE))  # planned while the first is not yet written
    assert [u.replaces for u in first.upserts] == [False] and [u.replaces for u in second.upserts] == [True]
    env.write(first)
    env.write(second)
    env.write(env.plan(("created", "copy.png", (1, 0, 200))))
    assert env.index.rows[f"{B}/copy.png"].duplicate_of == f"{B}/x.png"
    gone = env.plan(("removed", "x.png", None))
    back = env.plan(("created", "x.png", RED))  # re-created while its delete is in flight: new
    assert [u.replaces for u in back.upserts] == [False]
    env.write(gone)  # the delete re-checks the copy ...
    assert "marked_as_copies_of" not in env.write(back)  # ... so the re-created key need not
    assert env.index.rows[f"{B}/copy.png"].duplicate_of == ""


def test_calls_are_counted_by_the_stage_they_are_made_in() -> None:
    counter = CallCounter()
    counter.add("describe_collection")
    with counter.stage("dedupe"):
        counter.add("search")
        counter.add("search")
    assert counter.snapshot() == {("other", "describe_collection"): 1, ("dedupe", "search"): 2}


def test_timed_stages_label_the_process_counter() -> None:
    before = CALLS.snapshot().get(("dedupe", "search"), 0)
    with timed("dedupe"):
        CALLS.add("search")
    CALLS.add("search")
    assert CALLS.snapshot()[("dedupe", "search")] == before + 1
