"""The in-process measures of ``lookalike bench``: compute floor, model and query latency, the tutorial's way.

They share one loaded ``TimmEmbedder`` (the worker's model class, same weights and threads) and the
image bytes read from local disk once, so disk and the network are out of (a), (d) and (e) except
where the measure is about them (Milvus in (d) and (e)).
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lookalike.bench_stats import rate
from lookalike.embedder import Embedder
from lookalike.imaging import IMAGE_SUFFIXES, decode_image
from lookalike.settings import Settings

log = logging.getLogger(__name__)

Say = Callable[[str], None]

# The worker's fetch/decode pool (consumers.mapper.Mapper's default): the floor decodes as wide.
DECODE_THREADS = 4


@dataclass(frozen=True)
class BenchImage:
    """One image file: its upload key and its bytes (read once, so disk is not in the timings)."""

    key: str
    data: bytes
    content_type: str


def image_files(root: Path) -> list[Path]:
    """Image files under ``root`` in a stable order (sorted paths; hidden files skipped)."""
    if not root.is_dir():
        raise FileNotFoundError(f"{root} is not a folder of images")
    return sorted(
        p
        for p in root.rglob("*")
        if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES and not any(s.startswith(".") for s in p.parts[-3:])
    )


def spread(files: Sequence[Path], n: int, root: Path, prefix: str) -> list[BenchImage]:
    """``n`` images under ``prefix/``; when there are fewer files, they repeat with a ``-rK`` suffix key."""
    if not files:
        raise FileNotFoundError(f"no images under {root}")
    cache: dict[Path, bytes] = {}
    out: list[BenchImage] = []
    for i in range(n):
        path = files[i % len(files)]
        data = cache.get(path)
        if data is None:
            data = cache[path] = path.read_bytes()
        rel = path.relative_to(root).as_posix()
        rounds = i // len(files)
        if rounds:
            stem, dot, ext = rel.rpartition(".")
            rel = f"{stem}-r{rounds}.{ext}" if dot else f"{rel}-r{rounds}"
        ctype = "image/png" if path.suffix.lower() == ".png" else "image/jpeg"
        out.append(BenchImage(f"{prefix}/{rel}", data, ctype))
    return out


# ---------------------------------------------------------------- (a) compute floor
@dataclass(frozen=True)
class FloorTrial:
    batch_size: int
    overlapped: bool
    images: int
    seconds: float

    @property
    def ips(self) -> float:
        return rate(self.images, self.seconds)


def compute_floor(
    embedder: Embedder,
    images: Sequence[BenchImage],
    settings: Settings,
    batch_sizes: Sequence[int] = (1, 2, 4, 8, 16, 32, 64),
    trial_s: float = 2.0,
    say: Say = lambda _: None,
    rounds: int = 2,
) -> list[FloorTrial]:
    """Decode + prepare + model over in-memory bytes, per batch size, plain and overlapped.

    Plain: decode a batch in the pool, then one model call. Overlapped: the pool decodes the next
    batch while the model runs on this one (what a pipelined worker can reach). Each trial runs
    whole batches for at least ``trial_s`` seconds after one warm-up batch. ``rounds`` passes over
    all settings, so a burst of load from elsewhere hurts one pass, not one setting; the best trial
    is the floor (which makes the ingest ratio a conservative figure).
    """
    pool = ThreadPoolExecutor(max_workers=DECODE_THREADS, thread_name_prefix="floor-decode")
    ahead = ThreadPoolExecutor(max_workers=1, thread_name_prefix="floor-ahead")
    max_pixels = settings.max_image_pixels

    def prep(img: BenchImage) -> Any:
        return embedder.prepare(decode_image(img.data, max_pixels=max_pixels))

    def decode_batch(start: int, size: int) -> list[Any]:
        chunk = [images[(start + j) % len(images)] for j in range(size)]
        return list(pool.map(prep, chunk))

    def trial(size: int, overlapped: bool) -> FloorTrial:
        embedder.embed_prepared(decode_batch(0, size))  # warm-up: allocator, kernels
        done, cursor = 0, size
        start = time.perf_counter()
        next_batch = ahead.submit(decode_batch, cursor, size) if overlapped else None
        while time.perf_counter() - start < trial_s or done == 0:
            if next_batch is not None:
                batch = next_batch.result()
                next_batch = ahead.submit(decode_batch, cursor + size, size)
            else:
                batch = decode_batch(cursor, size)
            embedder.embed_prepared(batch)
            cursor += size
            done += size
        seconds = time.perf_counter() - start
        if next_batch is not None:
            next_batch.result()
        return FloorTrial(size, overlapped, done, seconds)

    trials: list[FloorTrial] = []
    try:
        for _ in range(rounds):
            for size in batch_sizes:
                for overlapped in (False, True):
                    t = trial(size, overlapped)
                    trials.append(t)
                    say(f"  floor batch {size:>3} {'overlapped' if overlapped else 'plain     '}: {t.ips:6.1f} img/s")
    finally:
        ahead.shutdown(wait=True)
        pool.shutdown(wait=True)
    return trials


# ---------------------------------------------------------------- (d) model alone and queries
def model_single_ms(embedder: Embedder, images: Sequence[BenchImage], settings: Settings, n: int) -> list[float]:
    """Decode + prepare + model on one image (batch 1), as a query does it, without Milvus."""
    out: list[float] = []
    for i in range(n + 3):
        data = images[i % len(images)].data
        start = time.perf_counter()
        embedder.embed([decode_image(data, max_pixels=settings.max_image_pixels)])
        if i >= 3:  # the first calls warm up
            out.append((time.perf_counter() - start) * 1000)
    return out


@dataclass(frozen=True)
class QueryTimes:
    total_ms: list[float]
    search_ms: list[float]  # the Milvus part alone


def query_ms(settings: Settings, embedder: Embedder, images: Sequence[BenchImage], n: int) -> QueryTimes:
    """``Searcher.search_bytes`` (decode + embed + Milvus search), warm, ``n`` times."""
    from lookalike.search import Searcher

    searcher = Searcher(settings, embedder=embedder)
    try:
        out = QueryTimes([], [])
        for i in range(n + 3):
            result = searcher.search_bytes(images[i % len(images)].data, k=10)
            if i >= 3:
                out.total_ms.append(result.total_ms)
                out.search_ms.append(result.search_ms)
        return out
    finally:
        searcher.close()


def flush(settings: Settings) -> None:
    """Seal the collection's growing rows (a diagnostic: Milvus Lite scans unflushed rows one by one)."""
    from pymilvus import MilvusClient

    client = MilvusClient(uri=settings.milvus_uri, token=settings.milvus_token.get_secret_value(), timeout=60)
    try:
        client.flush(settings.collection)
    finally:
        client.close()


# ---------------------------------------------------------------- (e) the tutorial's way
def seed_way(settings: Settings, embedder: Embedder, images: Sequence[BenchImage], collection: str) -> float:
    """The tutorial's loop: a towhee pipeline that decodes, embeds and inserts ONE image per call.

    Its own collection (same index type, same model); one ``MilvusClient.insert`` per image, then a
    Strong count to check every row is searchable. Returns images per second over the whole loop.
    """
    import warnings

    from pymilvus import DataType, MilvusClient

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from towhee import pipe

    client = MilvusClient(uri=settings.milvus_uri, token=settings.milvus_token.get_secret_value(), timeout=30)
    try:
        if client.has_collection(collection):
            client.drop_collection(collection)
        schema = MilvusClient.create_schema(auto_id=True, enable_dynamic_field=False)
        schema.add_field("id", DataType.INT64, is_primary=True)
        schema.add_field("path", DataType.VARCHAR, max_length=2048)
        schema.add_field("vector", DataType.FLOAT_VECTOR, dim=embedder.tag.dim)
        params = client.prepare_index_params()
        params.add_index(field_name="vector", index_type=settings.index_type, metric_type="IP")
        client.create_collection(collection, schema=schema, index_params=params, consistency_level="Strong")
        client.load_collection(collection)
        by_key = {img.key: img.data for img in images}

        def decode(path: str) -> Any:
            return decode_image(by_key[path], max_pixels=settings.max_image_pixels)

        def embed_one(img: Any) -> Any:
            return embedder.embed([img])[0]

        def insert_one(path: str, vec: Any) -> None:
            client.insert(collection, [{"path": path, "vector": [float(x) for x in vec]}])

        seed = (
            pipe.input("path")
            .map("path", "img", decode)
            .map("img", "vec", embed_one)
            .map(("path", "vec"), (), insert_one)
            .output()
        )
        seed(images[0].key).get()  # warm-up row, outside the clock
        start = time.perf_counter()
        for img in images:
            seed(img.key).get()
        rows = client.query(collection, filter="", output_fields=["count(*)"], consistency_level="Strong")
        seconds = time.perf_counter() - start
        count = int(rows[0]["count(*)"]) if rows else 0
        if count < len(images):
            log.warning("the tutorial's way holds %d of %d rows", count, len(images))
        return rate(len(images), seconds)
    finally:
        try:
            client.drop_collection(collection)
        finally:
            client.close()


# ---------------------------------------------------------------- (f) memory
def peak_rss_mb(pid: int) -> float | None:
    """VmHWM (peak resident set) of a live process in MB (MiB), from /proc; None if unreadable."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except (OSError, ValueError, IndexError):
        return None
    return None


def cpu_note() -> str:
    """The load average next to the core count, to flag a contended machine in the report."""
    try:
        one, five, _ = os.getloadavg()
    except OSError:
        return "load average unknown"
    return f"load average {one:.2f} (1 min), {five:.2f} (5 min) on {os.cpu_count()} cores"
