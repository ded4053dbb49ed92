"""The one factory of the worker's stages, for the worker, backfill and reindex alike.

Why one: the stages must be built the same way wherever they run. Backfill used to build its own,
ignoring ``threads`` and ``flush_rows``; now every caller gets the prepare stage sized by the
settings and the writer with near-duplicate marking, the dead letters and the change feed.
"""

from __future__ import annotations

from dataclasses import dataclass

from consumers.budget import PixelBudget, available_cores
from consumers.dedupe import dedupe_for
from consumers.feed import FeedSink
from consumers.ports import DeadLetterSink
from consumers.prepare import PrepareStage
from consumers.writer import Writer
from lookalike.embedder import Embedder
from lookalike.index import VectorIndex
from lookalike.settings import Settings
from lookalike.store import ObjectStore


@dataclass
class Stages:
    """prepare (look up, fetch, decode, preprocess) and write; embed is a function of the embedder."""

    prepare: PrepareStage
    writer: Writer
    embedder: Embedder

    def close(self) -> None:
        self.prepare.close()


def build_stages(
    settings: Settings,
    embedder: Embedder,
    store: ObjectStore,
    index: VectorIndex,
    dlq: DeadLetterSink,
    feed: FeedSink,
) -> Stages:
    """The stages over these clients, sized by ``settings``.

    Fetch/decode threads are sized to the cores this process may use (at least two, so one waits
    on S3 while one decodes); their memory is bounded by the pixel budget, not by their number.
    The near-duplicate threshold is the one in force for the embedder's model, not the configured
    model's (a reindex writes with another), so a CLIP index never gets a timm threshold.
    """
    threads = max(2, settings.threads or available_cores())
    prepare = PrepareStage(settings, store, index, embedder, threads, PixelBudget(settings.decode_budget))
    dedupe = dedupe_for(index, settings.duplicate_threshold, embedder.tag.model)  # the model of what it writes
    writer = Writer(index, dlq, settings.flush_rows, dedupe=dedupe, feed=feed)
    return Stages(prepare, writer, embedder)
