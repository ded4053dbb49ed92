"""(a) The compute floor: decode + prepare + model over in-memory images, per batch size.

It shares one loaded ``TimmEmbedder`` (the worker's model class, same weights and threads) with the
other in-process measures, and the image bytes read once, so disk and network are out of it.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from infra.bench.cpu import self_cpu_s
from infra.bench.images import BenchImage
from infra.bench.stats import rate
from lookalike.embedder import Embedder
from lookalike.imaging import decode_image
from lookalike.settings import Settings

Say = Callable[[str], None]

# Decode threads of the floor (the worker's planner uses max(2, cores): 2 on this machine, 4 on a 4-core one).
DECODE_THREADS = 4


@dataclass(frozen=True)
class FloorTrial:
    batch_size: int
    overlapped: bool
    images: int
    seconds: float
    cpu_s: float = 0.0  # this process's CPU (all threads) over the timed part

    @property
    def cpu_ms_per_image(self) -> float:
        return self.cpu_s * 1000 / self.images if self.images else 0.0

    @property
    def ips(self) -> float:
        return rate(self.images, self.seconds)


class _Floor:
    """The floor's two pools (decode, decode-ahead) around one embedder; ``trial`` times one setting."""

    def __init__(self, embedder: Embedder, images: Sequence[BenchImage], max_pixels: int) -> None:
        self.embedder = embedder
        self.images = images
        self.max_pixels = max_pixels
        self.pool = ThreadPoolExecutor(max_workers=DECODE_THREADS, thread_name_prefix="floor-decode")
        self.ahead = ThreadPoolExecutor(max_workers=1, thread_name_prefix="floor-ahead")

    def _prep(self, img: BenchImage) -> Any:
        return self.embedder.prepare(
            decode_image(img.data, max_pixels=self.max_pixels, min_side=self.embedder.decode_size)
        )

    def decode_batch(self, start: int, size: int) -> list[Any]:
        chunk = [self.images[(start + j) % len(self.images)] for j in range(size)]
        return list(self.pool.map(self._prep, chunk))

    def trial(self, size: int, overlapped: bool, trial_s: float) -> FloorTrial:
        self.embedder.embed_prepared(self.decode_batch(0, size))  # warm-up: allocator, kernels
        done, cursor = 0, size
        cpu0 = self_cpu_s()
        start = time.perf_counter()
        next_batch = self.ahead.submit(self.decode_batch, cursor, size) if overlapped else None
        while time.perf_counter() - start < trial_s or done == 0:
            if next_batch is not None:
                batch = next_batch.result()
                next_batch = self.ahead.submit(self.decode_batch, cursor + size, size)
            else:
                batch = self.decode_batch(cursor, size)
            self.embedder.embed_prepared(batch)
            cursor += size
            done += size
        seconds = time.perf_counter() - start
        if next_batch is not None:
            next_batch.result()  # its decode is CPU of this trial too (one batch ahead, not counted as done)
        return FloorTrial(size, overlapped, done, seconds, self_cpu_s() - cpu0)

    def close(self) -> None:
        self.ahead.shutdown(wait=True)
        self.pool.shutdown(wait=True)


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
    floor = _Floor(embedder, images, settings.max_image_pixels)
    trials: list[FloorTrial] = []
    try:
        for _ in range(rounds):
            for size in batch_sizes:
                for overlapped in (False, True):
                    t = floor.trial(size, overlapped, trial_s)
                    trials.append(t)
                    say(f"  floor batch {size:>3} {'overlapped' if overlapped else 'plain     '}: {t.ips:6.1f} img/s")
    finally:
        floor.close()
    return trials
