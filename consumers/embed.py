"""The embed stage: one batched model call for every image a batch upserts."""

from __future__ import annotations

import dataclasses

from consumers.metrics import timed
from consumers.planner import Work
from lookalike.embedder import Embedder
from lookalike.rows import IndexRow


def embed(work: Work, embedder: Embedder) -> list[IndexRow]:
    """The batch's rows with their vectors filled in, in the order of ``work.upserts``.

    Batching is the point: the model runs once per batch (in forward passes of ``infer_batch``),
    not once per image, which is what makes a backlog drain at the model's own speed.
    """
    if not work.upserts:
        return []
    with timed("infer"):
        vectors = embedder.embed_prepared([u.prepared for u in work.upserts])
    return [dataclasses.replace(u.row, vector=vec) for u, vec in zip(work.upserts, vectors, strict=True)]
