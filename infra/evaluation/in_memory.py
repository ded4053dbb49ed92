"""``lookalike eval --in-memory``: the same model, decoding and measures, without any server.

The training images are embedded with the worker's embedder and decoding, and each query is ranked
by exact inner product in numpy. Its agreement with the pipeline's figures is the evidence that the
streaming path loses no accuracy.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Callable

import numpy as np

from infra.evaluation.dataset import Dataset, K, Report, judge, make_report
from infra.evaluation.measures import Ranked
from lookalike.embedder import Embedder
from lookalike.imaging import BadImage, decode_image

log = logging.getLogger(__name__)


def run_in_memory(
    dataset: Dataset,
    embedder: Embedder,
    *,
    max_pixels: int,
    batch_size: int = 32,
    say: Callable[[str], None] = lambda _: None,
) -> Report:
    """Embed the training images, then rank them for each query by exact inner product (unit vectors)."""
    embedder.load()
    start = time.perf_counter()
    keys, gallery, dead = _embed_gallery(dataset, embedder, max_pixels, batch_size, say)
    index_seconds = time.perf_counter() - start

    labels = dataset.labels()
    counts = Counter(labels[k] for k in keys)
    results: list[Ranked] = []
    query_ms: list[float] = []
    for q in dataset.test:
        data = q.path.read_bytes()
        t0 = time.perf_counter()
        try:
            image = decode_image(data, max_pixels=max_pixels, min_side=embedder.decode_size)
            vector = embedder.embed([image])[0]  # prepare refuses crops of a few pixels (ImageTooThin)
        except BadImage as exc:
            log.warning("skipping query %s: %s", q.path, exc)
            continue
        top = rank(gallery, vector, K)
        query_ms.append((time.perf_counter() - t0) * 1000)
        results.append(judge([keys[j] for j in top], q, labels, counts))
    return make_report(
        "in-memory",
        results,
        model=embedder.tag.model,
        dim=embedder.tag.dim,
        n_indexed=len(keys),
        index_seconds=index_seconds,
        query_ms=query_ms,
        n_dead=dead,
    )


def _embed_gallery(
    dataset: Dataset, embedder: Embedder, max_pixels: int, batch_size: int, say: Callable[[str], None]
) -> tuple[list[str], np.ndarray, int]:
    """The training images' keys and unit vectors (one row each), and how many could not be decoded."""
    keys: list[str] = []
    vectors: list[np.ndarray] = []
    dead = 0
    for i in range(0, len(dataset.train), batch_size):
        prepared = []
        for it in dataset.train[i : i + batch_size]:
            try:
                image = decode_image(it.path.read_bytes(), max_pixels=max_pixels, min_side=embedder.decode_size)
                prepared.append(embedder.prepare(image))
            except BadImage as exc:
                log.warning("skipping %s: %s", it.path, exc)
                dead += 1
                continue
            keys.append(it.key)
        vectors.append(embedder.embed_prepared(prepared))
        say(f"  embedded {len(keys)}/{len(dataset.train)}")
    gallery = np.concatenate(vectors) if vectors else np.zeros((0, embedder.tag.dim), dtype=np.float32)
    return keys, gallery, dead


def rank(gallery: np.ndarray, vector: np.ndarray, k: int) -> list[int]:
    """Indices of the ``k`` highest inner products, best first (ties: lower index first)."""
    if len(gallery) == 0:
        return []
    scores = gallery @ np.asarray(vector, dtype=np.float32)
    return [int(j) for j in np.argsort(-scores, kind="stable")[:k]]
