"""The bench's /proc CPU reader and its per-image arithmetic, on hand-made /proc trees and this process."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from infra.bench.cpu import (
    ProcStat,
    all_stats,
    cpu_by_group,
    ms_per_image,
    overhead_ratio,
    parse_stat,
    read_stat,
    self_cpu_s,
    tree_cpu_s,
)


def _stat_line(pid: int, comm: str, ppid: int, utime: int, stime: int, cutime: int = 0, cstime: int = 0) -> str:
    # fields 3.. : state ppid pgrp session tty tpgid flags minflt cminflt majflt cmajflt utime stime cutime cstime ...
    tail = f"S {ppid} {pid} {pid} 0 -1 4194304 10 0 0 0 {utime} {stime} {cutime} {cstime} 20 0 1 0 12345 0 0"
    return f"{pid} ({comm}) {tail}\n"


def _proc(tmp: Path, lines: dict[int, str]) -> Path:
    for pid, line in lines.items():
        (tmp / str(pid)).mkdir()
        (tmp / str(pid) / "stat").write_text(line)
    (tmp / "self").mkdir()  # not a pid: skipped
    return tmp


def test_parse_stat_survives_odd_command_names() -> None:
    s = parse_stat(_stat_line(42, "tansu) (broker", 7, utime=250, stime=50, cutime=100, cstime=0), 100.0)
    assert s == ProcStat(42, 7, own_s=3.0, children_s=1.0)


def test_tree_sums_live_descendants_and_reaped_children(tmp_path: Path) -> None:
    proc = _proc(
        tmp_path,
        {
            10: _stat_line(10, "milvus-lite", 1, 100, 100, cutime=50),  # 2 s + 0.5 s reaped
            11: _stat_line(11, "milvus", 10, 300, 100),  # its server child: 4 s
            12: _stat_line(12, "helper", 11, 100, 0),  # grandchild: 1 s
            20: _stat_line(20, "moto", 1, 700, 0),  # another tree: 7 s
        },
    )
    stats = all_stats(proc, ticks_per_s=100.0)
    assert set(stats) == {10, 11, 12, 20}
    assert tree_cpu_s(10, stats) == pytest.approx(7.5)
    assert tree_cpu_s(11, stats) == pytest.approx(5.0)
    assert tree_cpu_s(99, stats) == 0.0  # gone: nothing
    assert read_stat(99, proc, 100.0) is None


def test_groups() -> None:
    groups = cpu_by_group({"me": [os.getpid()], "nobody": []})
    assert groups["nobody"] == 0.0 and groups["me"] > 0


def test_this_process_cpu_grows_with_work() -> None:
    start, proc_start = self_cpu_s(), cpu_by_group({"me": [os.getpid()]})["me"]
    deadline = time.monotonic() + 0.3
    while time.monotonic() < deadline:  # burn CPU: both readers must see it (tick resolution 10 ms)
        sum(i * i for i in range(10_000))
    assert self_cpu_s() - start > 0.05
    assert cpu_by_group({"me": [os.getpid()]})["me"] - proc_start > 0.05


def test_per_image_and_ratio_math() -> None:
    assert ms_per_image(3.0, 100) == 30.0
    assert ms_per_image(1.0, 0) is None
    assert overhead_ratio(34.5, 30.0) == 1.15
    assert (
        overhead_ratio(None, 30.0) is None and overhead_ratio(30.0, 0.0) is None and overhead_ratio(3.0, None) is None
    )
