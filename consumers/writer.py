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
    def __init__(self, index: VectorIndex, embedder: Embedder, flush_rows: int = 512) -> None:
        self.index = index
        self.embedder = embedder
        self.flush_rows = flush_rows
        self.unflushed = 0

    def flush(self) -> None:
        """Seal written rows (fast search on Milvus Lite); a refused flush is not an error."""
        if not self.unflushed or not self.flush_rows:
            return
        try:
            with timed("flush"):
                self.index.flush()
            self.unflushed = 0
        except Exception as exc:  # e.g. the server's flush rate limit: sealing happens anyway, later
            log.debug("flush skipped: %s", exc)

    def write(self, work: Work) -> None:
        """Embed and write a batch; raises ``Unavailable`` if Milvus did not accept it."""
        if work.upserts:
            with timed("infer"):
                vectors = self.embedder.embed_prepared([prepared for _, prepared in work.upserts])
            rows = [dataclasses.replace(row, vector=vec) for (row, _), vec in zip(work.upserts, vectors, strict=True)]
            with timed("write"):
                self.index.upsert(rows)
            self.unflushed += len(rows)
        if work.deletes:
            with timed("write"):
                self.index.delete(work.deletes)
            self.unflushed += len(work.deletes)
        if self.flush_rows and self.unflushed >= self.flush_rows:
            self.flush()
