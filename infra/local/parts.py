"""One background process of the local stack: start it, probe it, wait for it, stop it.

A ``Part`` is a command, the address it answers on, and (once started) its pid, log file and start
time; ``extra`` may give the directory it runs in (``cwd``), a shorter stop grace (``grace``) and
files it leaves behind when killed (``leaves``), all recorded with it. Everything that runs servers
or workers of its own (``stack up``, ``eval``, ``bench``, the tests) goes through these functions,
so a process is started, awaited and stopped one way only.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import signal
import socket
import subprocess
import time
import urllib.request
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from lookalike.errors import LookalikeError
from lookalike.net import connects
from lookalike.settings import Settings

log = logging.getLogger(__name__)


class StackError(LookalikeError):
    """A part of the local stack did not start or answer."""


@dataclass
class Part:
    name: str
    cmd: list[str]
    address: str
    pid: int = 0
    log: str = ""
    started_at: float = 0.0
    extra: dict[str, Any] = field(default_factory=dict)


# ---------------------------------------------------------------- state file
def state_path(settings: Settings) -> Path:
    return Path(settings.state_dir) / "stack.json"


def load_state(settings: Settings) -> dict[str, Part]:
    path = state_path(settings)
    if not path.exists():
        return {}
    doc = json.loads(path.read_text())
    return {name: Part(**p) for name, p in doc.get("parts", {}).items()}


def save_state(settings: Settings, parts: Mapping[str, Part]) -> None:
    """Written atomically: a crash mid-write leaves the previous record, never half of one."""
    path = state_path(settings)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps({"parts": {n: asdict(p) for n, p in parts.items()}}, indent=2))
    tmp.replace(path)


# ---------------------------------------------------------------- liveness
def _start_ticks(pid: int) -> int | None:
    """The process's start time in clock ticks: with the pid, it names one process for good."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat.rsplit(")", 1)[-1].split()
    if fields[0] == "Z":
        return None
    return int(fields[19])


def alive(part: Part) -> bool:
    """The recorded pid is still the process we started (pids get reused)."""
    if part.pid <= 0:
        return False
    ticks = _start_ticks(part.pid)
    return ticks is not None and ticks == part.extra.get("start_ticks", ticks)


def log_tail(path: str, lines: int = 15) -> str:
    """The end of a part's log, for error messages that say why it died."""
    try:
        return "\n".join(Path(path).read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


def check_alive(parts: list[Part]) -> None:
    """Raise ``StackError`` naming the first part that exited, with the end of its log."""
    for part in parts:
        if not alive(part):
            raise StackError(f"{part.name} exited; see {part.log}:\n{log_tail(part.log)}")


# ---------------------------------------------------------------- readiness probes
def http_ok(url: str, timeout: float = 1.0, contains: str | None = None) -> bool:
    """The URL answers below 400 (and its body holds ``contains``, when given)."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as r:
            body = r.read().decode(errors="replace")
            return r.status < 400 and (contains is None or contains in body)
    except OSError:
        return False


def free_port() -> int:
    """A TCP port nothing listens on right now (for private stacks and tests)."""
    with contextlib.closing(socket.socket()) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def milvus_answers(uri: str, timeout: float = 3.0) -> bool:
    """A Milvus server at ``uri`` lists its collections (an open port alone is not enough)."""
    from lookalike.index import VectorIndex

    try:
        index = VectorIndex(Settings(_env_file=None, milvus_uri=uri), timeout=timeout)
    except Exception:
        return False
    try:
        index.exists()
        return True
    except Exception:
        return False
    finally:
        index.close()


def kafka_answers(bootstrap: str) -> bool:
    """A Kafka-protocol broker at ``bootstrap`` lists its topics."""
    from kafka import KafkaAdminClient

    try:
        admin = KafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=3000)
        admin.list_topics()
        admin.close()
        return True
    except Exception:
        return False


def probe(settings: Settings, part: Part) -> bool:
    """Whether ``part`` answers as it does when ready (workers: after their group join)."""
    name = part.name
    if name == "s3":
        from infra.local.seaweed import seaweed_answers

        return seaweed_answers(settings.s3_endpoint)
    if name == "kafka":
        return connects(*settings.kafka_host, timeout=0.5) and kafka_answers(settings.kafka_bootstrap)
    if name == "milvus":
        return connects(*settings.milvus_host, timeout=0.5) and milvus_answers(settings.milvus_uri)
    if name == "bridge":
        return http_ok(f"http://{settings.bridge_host}:{settings.bridge_port}/healthz")
    if name.startswith("worker"):
        return http_ok(part.address, contains="lookalike_worker_ready 1.0")
    if name == "dashboard":
        return http_ok(part.address + "/_stcore/health")
    if name == "api":
        return http_ok(part.address + "/healthz")  # 200 once the model is loaded and S3 and Milvus answer
    return False


# ---------------------------------------------------------------- start / wait / stop
def start_part(settings: Settings, part: Part, env: Mapping[str, str]) -> None:
    """Spawn ``part`` in its own session with ``settings`` in its environment; log to the state dir."""
    logs = Path(settings.state_dir, "logs")
    logs.mkdir(parents=True, exist_ok=True)
    if part.name == "s3":  # SeaweedFS: its configuration (with the S3 secret) is written now, not recorded
        from infra.local.seaweed import write_config

        write_config(settings)
    part.log = str((logs / f"{part.name}.log").resolve())
    child_env = {**env, **settings.as_env(), "PYTHONUNBUFFERED": "1"}
    with open(part.log, "ab") as out:
        proc = subprocess.Popen(
            part.cmd,
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=child_env,
            cwd=part.extra.get("cwd"),
            start_new_session=True,
        )
    part.pid = proc.pid
    part.started_at = time.time()
    part.extra["start_ticks"] = _start_ticks(proc.pid)
    log.info("started %s (pid %d): %s", part.name, proc.pid, part.address)


def wait_ready(settings: Settings, part: Part, timeout: float) -> None:
    """Return once ``part`` answers its probe; raise ``StackError`` if it dies or the time runs out."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if probe(settings, part):
            return
        if part.pid and not alive(part):
            raise StackError(f"{part.name} exited during start-up; see {part.log}:\n{log_tail(part.log)}")
        time.sleep(0.2)
    raise StackError(
        f"{part.name} did not answer at {part.address} within {timeout:.0f} s; see {part.log}:\n{log_tail(part.log)}"
    )


def stop_part(part: Part, grace: float = 15.0) -> None:
    """SIGTERM the part's process group, SIGKILL it after ``grace`` seconds (or the part's own, when
    shorter); then remove the files it leaves behind. A no-op for the process if it is gone."""
    if not alive(part):
        _remove_leftovers(part)
        return
    grace = min(grace, float(part.extra.get("grace", grace)))
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(part.pid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline and alive(part):
        time.sleep(0.1)
    if alive(part):  # expected for a part with a grace of its own (see infra.local.seaweed)
        log.log(logging.INFO if "grace" in part.extra else logging.WARNING, "%s still runs; killing", part.name)
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(part.pid, signal.SIGKILL)
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and alive(part):
            time.sleep(0.05)
    with contextlib.suppress(ChildProcessError, OSError):
        os.waitpid(part.pid, os.WNOHANG)
    _remove_leftovers(part)


def _remove_leftovers(part: Part) -> None:
    """Delete what the part's ``leaves`` names, once its process is gone (never while it runs)."""
    if alive(part):
        return
    for path in part.extra.get("leaves", []):
        with contextlib.suppress(OSError):
            Path(path).unlink()
