"""CPU accounting from ``/proc``: what each process (and its children) burned between two readings.

On a shared 2-core machine wall-clock rates move with everybody else's load; CPU seconds per image
do not (much), so the bench reports both. ``psutil`` is not a dependency: the fields needed are
utime, stime, cutime and cstime of ``/proc/<pid>/stat`` (in clock ticks), and the parent pid to
find a process's live descendants (Milvus Lite, for one, runs its server in a child process).
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

PROC = Path("/proc")


@dataclass(frozen=True)
class ProcStat:
    """The few ``/proc/<pid>/stat`` fields the bench needs; times in seconds."""

    pid: int
    ppid: int
    own_s: float  # utime + stime
    children_s: float  # cutime + cstime: children that exited and were waited for


def parse_stat(text: str, ticks_per_s: float) -> ProcStat:
    """One ``/proc/<pid>/stat`` line; the command name (field 2) may hold spaces and ")", so split at the last ")"."""
    head, _, rest = text.rpartition(")")
    pid = int(head.split("(", 1)[0])
    fields = rest.split()  # fields[0] is field 3 (state)
    ppid = int(fields[1])
    utime, stime, cutime, cstime = (int(f) for f in fields[11:15])  # fields 14-17
    return ProcStat(pid, ppid, (utime + stime) / ticks_per_s, (cutime + cstime) / ticks_per_s)


def ticks_per_second() -> float:
    return float(os.sysconf("SC_CLK_TCK"))


def read_stat(pid: int, proc: Path = PROC, ticks_per_s: float | None = None) -> ProcStat | None:
    """A process's times, or None when it is gone (or not ours to read)."""
    try:
        text = (proc / str(pid) / "stat").read_text()
    except OSError:
        return None
    return parse_stat(text, ticks_per_s or ticks_per_second())


def all_stats(proc: Path = PROC, ticks_per_s: float | None = None) -> dict[int, ProcStat]:
    """Every readable process's times by pid (a process vanishing mid-listing is skipped)."""
    tps = ticks_per_s or ticks_per_second()
    out: dict[int, ProcStat] = {}
    for entry in proc.iterdir():
        if entry.name.isdigit() and (stat := read_stat(int(entry.name), proc, tps)) is not None:
            out[stat.pid] = stat
    return out


def tree_cpu_s(root: int, stats: Mapping[int, ProcStat]) -> float:
    """CPU seconds of ``root`` and all its live descendants, plus the children they reaped.

    Processes that exited unwaited between two readings are lost; for long-lived servers and workers
    that is nothing.
    """
    children: dict[int, list[int]] = {}
    for s in stats.values():
        children.setdefault(s.ppid, []).append(s.pid)
    total, todo, seen = 0.0, [root], set()
    while todo:
        pid = todo.pop()
        if pid in seen or pid not in stats:
            continue
        seen.add(pid)
        total += stats[pid].own_s + stats[pid].children_s
        todo.extend(children.get(pid, ()))
    return total


def cpu_by_group(groups: Mapping[str, Iterable[int]], proc: Path = PROC) -> dict[str, float]:
    """CPU seconds so far of each named group of process trees (e.g. ``{"s3": [pid], "workers": [...]}``)."""
    stats = all_stats(proc)
    return {name: sum(tree_cpu_s(pid, stats) for pid in pids) for name, pids in groups.items()}


def ms_per_image(cpu_s: float, images: int) -> float | None:
    """CPU milliseconds per image; None for no images."""
    return round(cpu_s * 1000 / images, 2) if images > 0 else None


def overhead_ratio(worker_ms: float | None, floor_ms: float | None) -> float | None:
    """Worker CPU per image over the floor's: 1.0 means the worker spends nothing beyond the model path."""
    if worker_ms is None or not floor_ms:
        return None
    return round(worker_ms / floor_ms, 3)


def self_cpu_s() -> float:
    """This process's CPU seconds (all threads), for the in-process floor."""
    t = os.times()
    return t.user + t.system
