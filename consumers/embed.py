"""The embed stage: one batched model call for every image a batch upserts."""

from __future__ import annotations

import dataclasses

import numpy as np

from consumers.batch import Delete, Upsert, Work, refused
from consumers.bisect import bisect
from consumers.metrics import EVENTS, timed
from lookalike.embedder import Embedder
from lookalike.rows import IndexRow


def embed(work: Work, embedder: Embedder) -> tuple[Work, list[IndexRow]]:
    """The batch, and its rows with their vectors filled in, in the order of its upserts.

    Batching is the point: the model runs once per batch (in forward passes of ``infer_batch``),
    not once per image, which is what makes a backlog drain at the model's own speed. An image the
    model refuses alone (found by ``bisect``) leaves the batch's upserts: it becomes a dead letter,
    and its older vector, if any, is deleted (the bucket holds no image that vector could show).
    """
    if not work.upserts:
        return work, []

    def model(part: list[Upsert]) -> np.ndarray:
        return embedder.embed_prepared([u.prepared for u in part])

    with timed("infer"):
        outcome = bisect(work.upserts, model, "embed")
    if outcome.failed:
        EVENTS.labels("dead").inc(len(outcome.failed))
        work = dataclasses.replace(
            work,
            upserts=outcome.accepted,
            dead=[*work.dead, *(refused(u.source, u.row.id, exc, u.row) for u, exc in outcome.failed)],
            deletes=[*work.deletes, *(Delete(u.row.id, u.source) for u, _ in outcome.failed)],
        )
    rows = [
        dataclasses.replace(u.row, vector=vec)
        for part, vectors in outcome.done
        for u, vec in zip(part, vectors, strict=True)
    ]
    return work, rows
