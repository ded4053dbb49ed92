"""Retrieval measures for ``lookalike eval``: pure functions over ranked relevance lists.

A query's result is reduced to a list of booleans, best hit first: ``True`` where the hit shares
the query's class. Every measure below reads only that list (and, for standard AP, how many
relevant items the gallery holds), so the pipeline and the in-memory evaluation are judged by
exactly the same code.

Two mAP@10 figures are reported on purpose:

* ``ap_towhee``: the towhee "reverse image search" tutorial's ``get_ap``: the precision at each
  rank where a relevant hit appears, averaged over the relevant hits *found* (0 when none). It
  ignores relevant items that were missed, so it flatters a system that finds one good match.
* ``ap_at_k``: the standard AP@k: the same sum divided by ``min(k, number of relevant items in
  the gallery)``, so missed relevant items count against the system.
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from dataclasses import dataclass


def hit_ratio(relevant: Sequence[bool], k: int = 10) -> float:
    """Fraction of the top ``k`` slots holding a relevant item (a short list counts missing slots as misses)."""
    if k <= 0:
        raise ValueError("k must be positive")
    return sum(1 for r in relevant[:k] if r) / k


def _precision_sum(relevant: Sequence[bool], k: int) -> tuple[float, int]:
    """Sum of precision@i over the relevant ranks i <= k, and how many relevant hits were found."""
    found = 0
    total = 0.0
    for i, rel in enumerate(relevant[:k], start=1):
        if rel:
            found += 1
            total += found / i
    return total, found


def ap_towhee(relevant: Sequence[bool], k: int = 10) -> float:
    """The tutorial's AP@k: precision averaged over the relevant hits found in the top ``k``; 0 if none."""
    total, found = _precision_sum(relevant, k)
    return total / found if found else 0.0


def ap_at_k(relevant: Sequence[bool], n_relevant: int, k: int = 10) -> float:
    """Standard AP@k: the precision sum divided by ``min(k, n_relevant)``; 0 if the gallery holds none."""
    if n_relevant <= 0:
        return 0.0
    total, _ = _precision_sum(relevant, k)
    return total / min(k, n_relevant)


def hit_at_1(relevant: Sequence[bool]) -> float:
    """1 when the best hit is relevant, else 0."""
    return 1.0 if relevant and relevant[0] else 0.0


@dataclass(frozen=True)
class Ranked:
    """One query's outcome: relevance of its hits (best first) and the gallery's relevant count."""

    relevant: tuple[bool, ...]
    n_relevant: int


@dataclass(frozen=True)
class Summary:
    mhr_at_10: float
    map_at_10_towhee: float
    map_at_10: float
    hit_at_1: float
    n_queries: int


def summarise(results: Sequence[Ranked], k: int = 10) -> Summary:
    """Each measure averaged over the queries (the "m" in mHR and mAP)."""
    if not results:
        raise ValueError("no queries to summarise")
    return Summary(
        mhr_at_10=statistics.fmean(hit_ratio(r.relevant, k) for r in results),
        map_at_10_towhee=statistics.fmean(ap_towhee(r.relevant, k) for r in results),
        map_at_10=statistics.fmean(ap_at_k(r.relevant, r.n_relevant, k) for r in results),
        hit_at_1=statistics.fmean(hit_at_1(r.relevant) for r in results),
        n_queries=len(results),
    )
