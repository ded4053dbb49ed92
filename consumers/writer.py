"""The writer stage: one batched model call, then upserts and deletes in Milvus."""

from __future__ import annotations

import dataclasses
import logging

from consumers.mapper import Work
from consumers.metrics import timed
from lookalike.embedder import Embedder
from lookalike.index import VectorIndex

log = logging.getLogger(__name__)


class Writer:
    def __init__(self, index: VectorIndex, embedder: Embedder) -> None:
        self.index = index
        self.embedder = embedder

    def write(self, work: Work) -> None:
        """Embed and write a batch; raises ``Unavailable`` if Milvus did not accept it."""
        if work.upserts:
            with timed("infer"):
                vectors = self.embedder.embed_prepared([prepared for _, prepared in work.upserts])
            rows = [dataclasses.replace(row, vector=vec) for (row, _), vec in zip(work.upserts, vectors, strict=True)]
            with timed("write"):
                self.index.upsert(rows)
        if work.deletes:
            with timed("write"):
                self.index.delete(work.deletes)
