"""(f) Memory and load: the workers' peak resident memory, and how busy the machine was."""

from __future__ import annotations

import os
from pathlib import Path


def status_mb(pid: int, field: str) -> float | None:
    """A memory field of /proc/<pid>/status (``VmRSS``, ``VmHWM``) in MB (MiB); None if unreadable."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(f"{field}:"):
                return int(line.split()[1]) / 1024
    except (OSError, ValueError, IndexError):
        return None
    return None


def peak_rss_mb(pid: int) -> float | None:
    """VmHWM (peak resident set) of a live process in MB (MiB), from /proc; None if unreadable."""
    return status_mb(pid, "VmHWM")


def cpu_note() -> str:
    """The load average next to the core count, to flag a contended machine in the report."""
    try:
        one, five, _ = os.getloadavg()
    except OSError:
        return "load average unknown"
    return f"load average {one:.2f} (1 min), {five:.2f} (5 min) on {os.cpu_count()} cores"
