"""The decode memory budget: concurrent decodes never hold more pixels than the budget."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

from consumers.budget import PixelBudget, available_cores, probe_pixels
from tests.unit.fakes import png


def test_probe_reads_the_size_from_the_header_and_zero_for_junk() -> None:
    assert probe_pixels(png((1, 2, 3), size=(30, 20))) == 600
    assert probe_pixels(b"not an image") == 0


def test_concurrent_holders_never_exceed_the_budget_and_a_huge_one_runs_alone() -> None:
    budget = PixelBudget(100)
    lock = threading.Lock()
    seen: list[int] = []
    live = [0]

    def decode(pixels: int) -> None:
        with budget.hold(pixels):
            with lock:
                live[0] += min(pixels, 100)
                seen.append(live[0])
            threading.Event().wait(0.01)
            with lock:
                live[0] -= min(pixels, 100)

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(decode, [40, 40, 40, 500, 30, 30, 90, 10] * 3))
    assert max(seen) <= 100 and budget.peak <= 100 and budget.in_use == 0


def test_cores_follow_the_cpu_affinity() -> None:
    import os

    assert available_cores() == len(os.sched_getaffinity(0))
