"""Decode memory: a pixel budget shared by every fetch/decode thread, and container-aware cores.

A decoded RGB image costs about 3 bytes a pixel, and each thread may be decoding one. Bounding each
image by ``max_image_pixels`` alone would let N threads hold N of the largest images at once (16
threads x 80 MP = 4 GB of pixels alone). So every decode first reads the image's header (cheap: PIL
parses the size without decoding) and takes its pixel count from one budget shared by the threads;
decodes that would overflow it wait. An image larger than the whole budget (but within
``max_image_pixels``) still runs, alone, so nothing valid is starved.
"""

from __future__ import annotations

import io
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager

from PIL import Image


class PixelBudget:
    """A counting semaphore in pixels: at most ``limit`` pixels decoded at once (one image always fits)."""

    def __init__(self, limit: int) -> None:
        self.limit = max(1, int(limit))
        self.in_use = 0
        self.peak = 0
        self._cond = threading.Condition()

    @contextmanager
    def hold(self, pixels: int) -> Iterator[None]:
        """Wait until ``pixels`` fit beside what other threads decode, hold them for the block."""
        want = max(0, min(int(pixels), self.limit))
        with self._cond:
            self._cond.wait_for(lambda: self.in_use == 0 or self.in_use + want <= self.limit)
            self.in_use += want
            self.peak = max(self.peak, self.in_use)
        try:
            yield
        finally:
            with self._cond:
                self.in_use -= want
                self._cond.notify_all()


def probe_pixels(data: bytes) -> int:
    """Width x height of the (first) frame, from the header alone; 0 if unreadable.

    Unreadable headers cost nothing here: the decoder then refuses the bytes with its own reason.
    """
    try:
        with Image.open(io.BytesIO(data)) as img:
            width, height = img.size
            return int(width) * int(height)
    except Exception:  # any header the decoder will refuse anyway, with its own reason
        return 0


def available_cores() -> int:
    """Cores this process may run on (a container's CPU set, not the host's core count)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):  # not Linux
        return max(1, os.cpu_count() or 1)
