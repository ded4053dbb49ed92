"""``lookalike bench --scale N``: how search, the live panel and the server's memory grow with rows.

It fills a private collection (``Settings.scoped``) on the configured Milvus (or, when that does
not answer, on a private stack of its own) with N synthetic 1280-d unit vectors through
``VectorIndex.upsert`` and ``flush``, and at each checkpoint size (10k, 50k, 100k, 200k, ... up to
N) measures upsert rows/s, search p50/p95 (k = 10), recall@10 against exact inner product, the
live panel's snapshot time and the Milvus server's resident memory. The collection is dropped
afterwards.

The vectors are clustered (points scattered around a few thousand random centres), not uniform
noise: in 1280 dimensions uniform random vectors are all nearly orthogonal, every neighbour is as
good as any other, and recall would measure nothing. Exact neighbours of a fixed query sample are
kept as a running top 10 while the rows are generated, so memory stays bounded by one chunk.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import secrets
import signal
import statistics
import sys
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from infra.bench.server_probe import server_memory_mb, server_pid, wait_idle
from lookalike.index import VectorIndex
from lookalike.rows import IndexRow, ModelTag
from lookalike.settings import Settings

Say = Callable[[str], None]

DIM = 1280
K = 10
CHUNK = 2000
CHECKPOINTS = (10_000, 50_000, 100_000, 200_000, 500_000, 1_000_000, 2_000_000, 5_000_000)
SCALE_KEYS = (
    "scale_rows",
    "scale_upsert_rows_per_s",
    "scale_search_p50_ms",
    "scale_search_p95_ms",
    "scale_recall_at_10",
    "scale_live_panel_ms",
    "scale_server_rss_mb",
)


def checkpoints(n: int) -> list[int]:
    """The sizes measured on the way to ``n``: the standard ones below it, then ``n`` itself."""
    return [c for c in CHECKPOINTS if c < n] + [n]


@dataclass
class Clusters:
    """A reproducible clustered data set: ``centres`` unit vectors, points within ``spread`` of one."""

    seed: int = 7
    n_centres: int = 2000
    spread: float = 0.6
    rng: np.random.Generator = field(init=False)
    centres: np.ndarray = field(init=False)

    def __post_init__(self) -> None:
        self.rng = np.random.default_rng(self.seed)
        self.centres = _unit(self.rng.standard_normal((self.n_centres, DIM), dtype=np.float32))

    def sample(self, n: int) -> np.ndarray:
        picks = self.rng.integers(0, self.n_centres, n)
        noise = self.rng.standard_normal((n, DIM), dtype=np.float32) * (self.spread / np.sqrt(DIM))
        return _unit(self.centres[picks] + noise)


def _unit(x: np.ndarray) -> np.ndarray:
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


class ExactTopK:
    """Exact top-k (inner product) of a fixed query set over rows seen so far, one chunk at a time.

    ``recall`` compares hits of the first ``len(found)`` queries with their exact neighbours."""

    def __init__(self, queries: np.ndarray, k: int = K) -> None:
        self.queries = queries
        self.k = k
        self.scores = np.full((len(queries), 0), -np.inf, dtype=np.float32)
        self.ids = np.zeros((len(queries), 0), dtype=np.int64)

    def add(self, vectors: np.ndarray, first_id: int) -> None:
        s = self.queries @ vectors.T
        ids = np.broadcast_to(np.arange(first_id, first_id + len(vectors)), s.shape)
        scores = np.concatenate([self.scores, s], axis=1)
        allids = np.concatenate([self.ids, ids], axis=1)
        top = np.argsort(-scores, axis=1)[:, : self.k]
        self.scores = np.take_along_axis(scores, top, axis=1)
        self.ids = np.take_along_axis(allids, top, axis=1)

    def recall(self, found: list[list[int]]) -> float:
        hits = sum(len(set(f) & set(t.tolist())) for f, t in zip(found, self.ids[: len(found)], strict=True))
        return hits / (self.k * len(found))


def row_id(i: int) -> str:
    return f"scale/{i:09d}"


def wait_indexed(index: VectorIndex, rows: int, timeout_s: float, say: Say, pid: int | None = None) -> float:
    """Wait (up to a deadline) until the index covers ``rows`` rows; returns seconds waited.

    Milvus Lite reports every row as indexed at once and builds each segment's HNSW graph in a
    background thread afterwards; until that ends, searches scan the segment. So, when the server
    is a local process, this also waits until it has been idle (under a quarter of a core) for
    3 s: that is when its builds are done."""
    start = time.monotonic()
    deadline = start + timeout_s
    while time.monotonic() < deadline:
        info = index.client.describe_index(index.name, "vector")
        if int(info.get("indexed_rows", 0)) >= rows and int(info.get("pending_index_rows", 0)) == 0:
            break
        time.sleep(1.0)
    else:
        say(f"  index still building after {timeout_s:.0f} s: searching anyway")
        return time.monotonic() - start
    if pid is not None and not wait_idle(pid, deadline):
        say(f"  the server was still busy after {timeout_s:.0f} s: searching anyway")
    return time.monotonic() - start


def measure_search(
    index: VectorIndex,
    queries: np.ndarray,
    k: int = K,
    budget_s: float = 90.0,
    at_least: int = 20,
    consistency: str = "Strong",
) -> tuple[list[float], list[list[int]]]:
    """One search per query (k = 10), as a user's query is; latencies in ms and the hits' row numbers.

    Stops after ``budget_s`` once ``at_least`` queries ran: on a busy 2-core machine a slow
    configuration would otherwise take the run's whole time to say that it is slow."""
    latencies: list[float] = []
    found: list[list[int]] = []
    deadline = time.monotonic() + budget_s
    for q in queries:
        if len(latencies) >= at_least and time.monotonic() > deadline:
            break
        t0 = time.perf_counter()
        hits = index.search(q[None, :], k=k, consistency=consistency)[0]
        latencies.append((time.perf_counter() - t0) * 1000)
        found.append([int(h.id.rsplit("/", 1)[1]) for h in hits])
    return latencies, found


def live_panel_ms(settings: Settings, index: VectorIndex) -> float:
    """One ``dashboard.live.snapshot`` of this collection, as a dashboard tab refreshes it."""
    from dashboard.live import KafkaWatch, snapshot
    from infra.local.stack import missing_parts

    down = {"kafka"} if "kafka" in missing_parts(settings) else set()
    watches: list[KafkaWatch] = []

    def kafka() -> KafkaWatch:
        watches.append(KafkaWatch(settings))
        return watches[-1]

    watch = kafka() if not down else None  # connecting once is the dashboard's start-up, not a refresh
    t0 = time.perf_counter()
    snapshot(lambda: index, (lambda: watch) if watch else kafka, down)
    ms = (time.perf_counter() - t0) * 1000
    for w in watches:
        w.close()
    return ms


@contextlib.contextmanager
def scale_target(settings: Settings, env: Mapping[str, str], say: Say) -> Iterator[Settings]:
    """The configured stack when its Milvus answers, else a private one: scoped names either way."""
    from infra.local.stack import missing_parts, private_stack

    scoped = settings.scoped(f"scale-{secrets.token_hex(3)}")
    if "milvus" not in missing_parts(settings):
        yield scoped
        return
    say("the configured Milvus does not answer: starting a private stack for the run")
    with private_stack(scoped, env, say=say) as private:
        yield private


def run_scale(
    settings: Settings, env: Mapping[str, str], n: int, say: Say, queries: int = 200, sweeps: bool = True
) -> dict[str, Any]:
    """Fill, measure at each checkpoint, drop; returns the report (``SCALE_KEYS`` for size ``n``).

    ``sweeps=False`` leaves out the ef and consistency sweeps at the full size (empty lists): a test
    on a server whose every Strong search waits for a time tick need not pay for them."""
    with scale_target(settings, env, say) as target:
        index = VectorIndex(target, timeout=60)
        index.open(ModelTag("synthetic-clusters", "bench-scale", DIM), create=True)
        try:
            return _fill_and_measure(target, index, n, queries, say, sweeps)
        finally:
            index.drop()
            index.close()


def _fill_and_measure(
    settings: Settings, index: VectorIndex, n: int, n_queries: int, say: Say, sweeps: bool = True
) -> dict[str, Any]:
    data = Clusters()
    query_set = data.sample(n_queries)
    exact = ExactTopK(query_set)
    steps: list[dict[str, Any]] = []
    done = 0
    pid = server_pid(settings)
    say(
        f"scale: {n} rows into {index.name} on {settings.milvus_uri} (HNSW M={settings.hnsw_m}, "
        f"efConstruction={settings.hnsw_ef_construction}, ef={settings.hnsw_ef})"
    )
    for size in checkpoints(n):
        upsert_s = _fill(index, data, exact, done, size)  # upserts alone: not the data's generation
        done = size
        t0 = time.perf_counter()
        index.flush()
        added = size - (steps[-1]["rows"] if steps else 0)
        step = {"rows": size, "upsert_rows_per_s": round(added / (upsert_s + time.perf_counter() - t0), 1)}
        step |= _measure_step(settings, index, size, query_set, exact, pid, say)
        say(f"  {step}")
        steps.append(step)
    last = steps[-1]
    return {
        **{f"scale_{k}": v for k, v in last.items() if k != "rows"},
        "scale_rows": last["rows"],
        "scale_search_consistency": settings.search_consistency,
        "scale_ef_sweep": ef_sweep(index, query_set, exact, settings.search_consistency) if sweeps else [],
        "scale_consistency_sweep": consistency_sweep(index, query_set) if sweeps else [],
        "scale_hnsw": {"M": settings.hnsw_m, "efConstruction": settings.hnsw_ef_construction, "ef": settings.hnsw_ef},
        "scale_steps": steps,
    }


def _fill(index: VectorIndex, data: Clusters, exact: ExactTopK, done: int, size: int) -> float:
    """Upsert rows ``done`` .. ``size`` chunk by chunk, keeping the exact top-k; seconds in upsert."""
    upsert_s = 0.0
    while done < size:
        vectors = data.sample(min(CHUNK, size - done))
        exact.add(vectors, done)
        rows = [IndexRow(row_id(done + i), v, "e", 1, "synthetic", 0, 0) for i, v in enumerate(vectors)]
        t0 = time.perf_counter()
        index.upsert(rows)
        upsert_s += time.perf_counter() - t0
        done += len(vectors)
    return upsert_s


def _measure_step(
    settings: Settings,
    index: VectorIndex,
    size: int,
    queries: np.ndarray,
    exact: ExactTopK,
    pid: int | None,
    say: Say,
) -> dict[str, Any]:
    """One checkpoint's figures once its index is built: search, recall, live panel, server memory."""
    index_wait_s = wait_indexed(index, size, max(300.0, size / 200), say, pid)
    level = settings.search_consistency
    measure_search(index, queries[:50], budget_s=30, consistency=level)  # warm-up: the new index loads
    latencies, found = measure_search(index, queries, consistency=level)
    memory = server_memory_mb(pid)
    return {
        "index_wait_s": round(index_wait_s, 1),
        "search_p50_ms": round(statistics.median(latencies), 2),
        "search_p95_ms": round(float(np.percentile(latencies, 95)), 2),
        "recall_at_10": round(exact.recall(found), 4),
        "live_panel_ms": round(live_panel_ms(settings, index), 1),
        "server_rss_mb": memory["rss"],
        "server_peak_rss_mb": memory["hwm"],
    }


def consistency_sweep(index: VectorIndex, queries: np.ndarray) -> list[dict[str, Any]]:
    """Search p50 at the full size under Strong and Bounded consistency.

    On a Milvus server a Strong search waits until the query node has caught up with the current
    time tick (about 200 ms, longer while writes go on); Bounded does not wait. Milvus Lite ignores
    the level. What ``LOOKALIKE_SEARCH_CONSISTENCY`` trades: freshness against latency."""
    out: list[dict[str, Any]] = []
    for level in ("Strong", "Bounded"):
        latencies, _ = measure_search(index, queries[:60], budget_s=20, consistency=level)
        p50 = round(statistics.median(latencies), 2)
        out.append({"consistency": level, "search_p50_ms": p50, "queries": len(latencies)})
    return out


def ef_sweep(
    index: VectorIndex, queries: np.ndarray, exact: ExactTopK, consistency: str = "Strong"
) -> list[dict[str, float]]:
    """Recall@10 and p50 at the full size for a few search-time ``ef``: what the default is chosen from."""
    out = []
    saved = index.hnsw
    try:
        for ef in (32, 64, 128, 256, 512):
            index.hnsw = (saved[0], saved[1], ef)
            latencies, found = measure_search(index, queries[:100], budget_s=20, consistency=consistency)
            recall = round(exact.recall(found), 4)
            out.append({"ef": ef, "recall_at_10": recall, "search_p50_ms": round(statistics.median(latencies), 2)})
    finally:
        index.hnsw = saved
    return out


def cmd_scale(args: argparse.Namespace, settings: Settings) -> int:
    """``lookalike bench --scale N [--json]``: progress on stderr, the report on stdout."""

    def interrupted(signum: int, _frame: object) -> None:
        raise KeyboardInterrupt  # unwinds through the clean-up: the collection is dropped, servers stopped

    signal.signal(signal.SIGTERM, interrupted)
    report = run_scale(settings, dict(os.environ), args.scale, say=lambda m: print(m, file=sys.stderr))
    print(json.dumps(report) if args.json else json.dumps(report, indent=2))
    return 0
