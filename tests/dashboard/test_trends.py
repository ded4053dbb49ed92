"""dashboard.trends: the Live index tab's lines and "n of N" from data the panel already reads."""

from __future__ import annotations

from dashboard.live import PartitionLag
from dashboard.trends import History, rate_series
from lookalike.feed import FeedRecord

NOW = 1_000_000_000_000  # a multiple of every bin below


def indexed(at: int, oid: str = "b/k") -> FeedRecord:
    return FeedRecord(id=oid, outcome="indexed", at=at)


def test_rate_per_bin_counts_indexed_outcomes_only_and_the_newest_bin_over_its_elapsed_part() -> None:
    records = [indexed(NOW - 25_000), indexed(NOW - 24_000), FeedRecord("b/x", "dead", NOW - 23_000)]
    records += [indexed(NOW + 1_000), indexed(NOW + 1_500)]
    series = rate_series(records, NOW + 2_000, full=False, span_ms=30_000, bin_ms=10_000)
    # bins from NOW-30s: [-30,-20) holds two, [-20,-10) and [-10,0) none, [0,+10) two in its first 2 s
    assert series == [0.2, 0.0, 0.0, 1.0]


def test_a_full_tail_starts_the_line_where_it_knows_the_rate() -> None:
    records = [indexed(NOW - 12_000 + i) for i in range(50)]  # a flood: the tail spans 50 ms
    partial = rate_series(records, NOW, full=True, span_ms=60_000, bin_ms=10_000)
    whole = rate_series(records, NOW, full=False, span_ms=60_000, bin_ms=10_000)
    assert len(whole) == 7 and whole[:4] == [0.0] * 4  # the minute before reads as idle ...
    assert len(partial) < len(whole)  # ... unless the tail was cut by its limit: then it is left out


def lag(*partitions: tuple[int, int]) -> list[PartitionLag]:
    """(end, lag) per partition."""
    return [PartitionLag(p, end - behind, end, behind) for p, (end, behind) in enumerate(partitions)]


def test_lag_line_keeps_each_refresh_once_and_only_the_span() -> None:
    history = History(span_ms=60_000)
    history.add(NOW, lag((10, 0)))
    history.add(NOW, lag((10, 5)))  # the same snapshot seen by another tab
    history.add(NOW + 5_000, lag((20, 4), (7, 1)))
    history.add(NOW + 62_000, lag((30, 2)))  # the first refresh is over a minute old now
    history.add(NOW + 67_000, None)  # Kafka down: nothing to draw
    assert history.lag_series() == [5, 2]


def test_a_bulk_upload_reads_n_of_n_from_the_last_idle_refresh() -> None:
    history = History()
    assert history.progress() is None
    history.add(NOW, lag((100, 0), (50, 0)))  # idle: everything so far was done
    history.add(NOW + 5_000, lag((160, 40), (90, 30)))  # 100 arrived, 30 of them done
    load = history.progress()
    assert load is not None and (load.done, load.total, load.since_ms) == (30, 100, NOW)
    assert load.fraction == 0.3
    history.add(NOW + 10_000, lag((160, 0), (90, 0)))
    assert history.progress() is None  # done: the bar goes


def test_opened_during_a_load_it_counts_from_the_oldest_refresh() -> None:
    history = History()
    history.add(NOW, lag((500, 400)))
    history.add(NOW + 5_000, lag((600, 300)))
    load = history.progress()
    assert load is not None and (load.done, load.total) == (200, 500)
