"""Helpers shared by the test tiers: ports, paths, waiting, child processes that always die."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TypeVar

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"
DATASET = SHARED / "datasets" / "reverse_image_search"
WEIGHTS = SHARED / "models" / "mobilenetv2_100.imagenet.pth"

T = TypeVar("T")


def free_port() -> int:
    with contextlib.closing(socket.socket()) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def wait_for(fn: Callable[[], T | None], timeout: float = 60.0, interval: float = 0.2, what: str = "condition") -> T:
    """Poll until ``fn`` returns something truthy; fail the test with ``what`` after ``timeout``."""
    deadline = time.monotonic() + timeout
    last: T | None = None
    while time.monotonic() < deadline:
        last = fn()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what} (last: {last!r})")


def dataset_images(n: int, split: str = "train") -> list[Path]:
    """``n`` images spread over the classes (round-robin), deterministic."""
    classes = sorted(p for p in (DATASET / split).iterdir() if p.is_dir())
    per_class = [sorted(c.iterdir()) for c in classes]
    out: list[Path] = []
    i = 0
    while len(out) < n:
        for files in per_class:
            if i < len(files) and len(out) < n:
                out.append(files[i])
        i += 1
    return out


@contextlib.contextmanager
def child(cmd: list[str], env: dict[str, str], log: Path, cwd: Path | None = None) -> Iterator[subprocess.Popen[bytes]]:
    """A background process in its own group, killed (with its children) however the test ends."""
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "ab") as out:
        proc = subprocess.Popen(
            cmd,
            env={**os.environ, **env, "PYTHONUNBUFFERED": "1"},
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
            cwd=cwd,
        )
    try:
        yield proc
    finally:
        stop_group(proc)


def stop_group(proc: subprocess.Popen[bytes], grace: float = 10.0) -> None:
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(grace)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(5)
    else:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)


PYTHON = sys.executable
