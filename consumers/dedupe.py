"""The dedupe step of the write stage: mark each new row's nearest other object when it is a near-copy.

It runs after the embed stage, inside each write attempt (so an outage is retried like the write),
and returns the rows to upsert in the same Milvus call:

* each new row gets ``duplicate_of`` / ``duplicate_score`` from its nearest other object: the best
  of a Strong index search that leaves out every id the batch rewrites or deletes (their stored
  vectors are stale), and of the *earlier* new rows of the same batch. So two copies in one batch
  find each other deterministically: the later one points at the earlier one;
* rows already marked as copies of an id the batch rewrites or deletes are re-checked from their
  stored vectors (index, the batch's new rows and each other) and re-written with the new mark or
  none: a copy whose original was deleted is no longer marked, unless another near-copy remains.
  An id that is ``new`` (absent from the index when planned, with no write of it in flight) cannot
  be anyone's original, so it is not looked up: a batch of new objects costs one search, no query.

Similarities are inner products of unit vectors, i.e. cosine similarity.

The threshold follows the model the worker writes with (``lookalike.families``): the configured one,
else its family's calibrated one. A family with none (a CLIP model before its calibration) gets no
stage at all (``dedupe_for`` returns None): nothing is marked and nothing searched, rather than a
guessed scale, and the worker says so once in its log.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Collection, Sequence

import numpy as np

from consumers.ports import DuplicateLookup
from lookalike.families import duplicate_threshold, uncalibrated_message
from lookalike.rows import IndexRow

log = logging.getLogger(__name__)
_warned: set[str] = set()  # models whose missing threshold this process has logged

Nearest = tuple[str, float] | None


def _better(current: Nearest, oid: str, score: float) -> Nearest:
    """The closer of two candidates; on a tie the one found first stays."""
    return (oid, score) if current is None or score > current[1] else current


def _marked(row: IndexRow, best: Nearest, threshold: float) -> IndexRow:
    if best is not None and best[1] >= threshold:
        return dataclasses.replace(row, duplicate_of=best[0], duplicate_score=float(best[1]))
    return dataclasses.replace(row, duplicate_of="", duplicate_score=0.0)


class Dedupe:
    """Marks near-copies against ``lookup`` (``lookalike.index.VectorIndex``) at ``threshold``."""

    def __init__(self, lookup: DuplicateLookup, threshold: float) -> None:
        self.lookup = lookup
        self.threshold = threshold

    def mark(self, rows: Sequence[IndexRow], deleted: Sequence[str], new: Collection[str] = ()) -> list[IndexRow]:
        """``rows`` with their marks set, followed by the re-checked rows of other objects.

        ``new``: ids of ``rows`` that were not indexed when planned (nothing can be marked as their
        copy); every other id of the batch, and every deleted one, has its copies re-checked."""
        if not self.lookup.has_duplicates or (not rows and not deleted):
            return list(rows)
        fresh = set(new)
        touched = list(dict.fromkeys([*(r.id for r in rows), *deleted]))
        vectors = np.stack([np.asarray(r.vector, dtype=np.float32) for r in rows]) if rows else None
        found = self.lookup.nearest_other(vectors, touched) if vectors is not None else []
        out: list[IndexRow] = []
        for i, row in enumerate(rows):
            best = found[i]
            for j in range(i):  # earlier rows of this batch: the later copy points at the earlier
                if rows[j].id != row.id:
                    best = _better(best, rows[j].id, float(vectors[i] @ vectors[j]))  # type: ignore[index]
            out.append(_marked(row, best, self.threshold))
        originals = list(dict.fromkeys([*(r.id for r in rows if r.id not in fresh), *deleted]))
        return out + self._recheck(rows, vectors, touched, originals)

    def _recheck(
        self, rows: Sequence[IndexRow], new: np.ndarray | None, touched: list[str], originals: list[str]
    ) -> list[IndexRow]:
        """Rows pointing at one of ``originals`` (rewritten or deleted ids), looked up again."""
        if not originals:
            return []
        gone = set(touched)
        stale = [r for r in self.lookup.marked_as_copies_of(originals) if r.id not in gone]
        if not stale:
            return []
        vectors = np.stack([np.asarray(r.vector, dtype=np.float32) for r in stale])
        found = self.lookup.nearest_other(vectors, [*touched, *(r.id for r in stale)])
        out = []
        for i, row in enumerate(stale):
            best = found[i]
            for j, other in enumerate(rows):  # the batch's new versions are candidates too
                best = _better(best, other.id, float(vectors[i] @ new[j]))  # type: ignore[index]
            for j, other in enumerate(stale):  # and so are the other re-checked rows
                if j != i:
                    best = _better(best, other.id, float(vectors[i] @ vectors[j]))
            out.append(_marked(row, best, self.threshold))
        return out


def dedupe_for(lookup: DuplicateLookup, configured: float | None, model: str) -> Dedupe | None:
    """The stage at the threshold in force for ``model`` (the one whose vectors the worker writes);
    None when there is none, and the writer then runs without the stage.

    Without one, the worker logs once per process and model why nothing is marked: the stages are
    rebuilt after an outage, and one line an outage is noise, not news."""
    threshold = duplicate_threshold(configured, model)
    if threshold is None:
        if model not in _warned:
            _warned.add(model)
            log.warning("near-duplicates are not marked: %s", uncalibrated_message(model))
        return None
    return Dedupe(lookup, threshold)
