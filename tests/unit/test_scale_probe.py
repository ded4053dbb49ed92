"""The scale bench's server probes: the process behind a listening port, and its CPU time."""

from __future__ import annotations

import os
import socket

from infra.bench.server_probe import cpu_seconds, server_memory_mb, server_pid
from lookalike.settings import Settings


def test_server_pid_names_the_process_listening_on_the_milvus_port() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        port = sock.getsockname()[1]
        assert server_pid(Settings(milvus_uri=f"http://127.0.0.1:{port}")) == os.getpid()
        mem = server_memory_mb(os.getpid())
        assert mem["rss"] is not None and mem["hwm"] is not None and 0 < mem["rss"] <= mem["hwm"]
    assert server_pid(Settings(milvus_uri=f"http://127.0.0.1:{port}")) is None  # closed: nobody listens
    assert server_pid(Settings(milvus_uri="http://milvus.example:19530")) is None  # not this machine
    assert server_memory_mb(None) == {"rss": None, "hwm": None}


def test_cpu_seconds_grows_with_work() -> None:
    before = cpu_seconds(os.getpid())
    sum(i * i for i in range(2_000_000))
    assert cpu_seconds(os.getpid()) > before


def test_wait_idle_tells_a_quiet_process_from_a_busy_one() -> None:
    import subprocess
    import sys
    import time

    from infra.bench.server_probe import wait_idle

    quiet = subprocess.Popen(["sleep", "30"])
    busy = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        time.sleep(0.5)  # the interpreter's start-up is over
        assert wait_idle(quiet.pid, time.monotonic() + 5, window_s=0.5, cores=0.05)
        assert not wait_idle(busy.pid, time.monotonic() + 1.2, window_s=0.5, cores=0.05)  # 5%: busy even on a loaded CI
    finally:
        for p in (quiet, busy):
            p.kill()
            p.wait()
