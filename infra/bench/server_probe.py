"""The Milvus server as a process on this machine: its pid (from its listening socket), memory and CPU.

The scale bench reads these to report the server's memory and to wait until its background index
builds are done; they work for Milvus Lite and a real Milvus standalone server alike, because the
process is found by the port it listens on, not by the stack's state file.
"""

from __future__ import annotations

import contextlib
import os
import time
from pathlib import Path
from urllib.parse import urlsplit

from infra.bench.memory import status_mb
from lookalike.settings import Settings


def server_pid(settings: Settings) -> int | None:
    """The pid of the local process listening on the configured Milvus port (None if not local).

    Found from the socket, not from the stack's state file, so it names Milvus Lite and a real
    Milvus standalone server alike (for the latter, the ``milvus`` binary itself)."""
    url = urlsplit(settings.milvus_uri if "://" in settings.milvus_uri else f"http://{settings.milvus_uri}")
    if url.hostname not in ("127.0.0.1", "localhost", "::1") or url.port is None:
        return None
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with contextlib.suppress(OSError):
            for line in Path(table).read_text().splitlines()[1:]:
                cols = line.split()
                if cols[3] == "0A" and int(cols[1].rsplit(":", 1)[1], 16) == url.port:  # 0A: LISTEN
                    inodes.add(f"socket:[{cols[9]}]")
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        with contextlib.suppress(OSError):
            for fd in (proc / "fd").iterdir():
                with contextlib.suppress(OSError):
                    if os.readlink(fd) in inodes:
                        return int(proc.name)
    return None


def server_memory_mb(pid: int | None) -> dict[str, float | None]:
    """VmRSS and VmHWM of the Milvus server process, in MB; None if unknown."""
    if pid is None:
        return {"rss": None, "hwm": None}
    mb = {name: status_mb(pid, field) for name, field in (("rss", "VmRSS"), ("hwm", "VmHWM"))}
    return {name: None if v is None else round(v, 1) for name, v in mb.items()}


def cpu_seconds(pid: int) -> float:
    """User plus system CPU time the process has used so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def wait_idle(pid: int, deadline: float, window_s: float = 3.0, cores: float = 0.25) -> bool:
    """True once the process used under ``cores`` of a core over ``window_s`` (or is gone); False at
    the deadline."""
    while time.monotonic() < deadline:
        try:
            before = cpu_seconds(pid)
            time.sleep(window_s)
            if cpu_seconds(pid) - before < cores * window_s:
                return True
        except OSError:
            return True  # the process is gone: nothing left to wait for
    return False
