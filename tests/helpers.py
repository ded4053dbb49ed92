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
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import TypeVar

from infra.local.stack import free_port, milvus_answers

REPO = Path(__file__).resolve().parents[1]
PYTHON = sys.executable
# The ``lookalike`` command as the tests run it: the composition root, in this interpreter.
CLI = [PYTHON, "-m", "infra.cli"]
SHARED = REPO.parent / "shared"
DATASET = SHARED / "datasets" / "reverse_image_search"
WEIGHTS = SHARED / "models" / "mobilenetv2_100.imagenet.pth"

T = TypeVar("T")


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


class PrivateMilvus:
    """A Milvus Lite server of one test's own, so the test can take it away and bring it back."""

    def __init__(self, tmp: Path) -> None:
        self.port = free_port()
        self.uri = f"http://127.0.0.1:{self.port}"
        self.data = tmp / "milvus-private"
        self.log = tmp / "milvus-private.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        exe = str(Path(sys.executable).parent / "milvus-lite")
        cmd = [exe, "server", "--data-dir", str(self.data), "--host", "127.0.0.1", "--port", str(self.port)]
        with open(self.log, "ab") as out:
            self.proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)

        wait_for(lambda: milvus_answers(self.uri, 2), 60, what="private milvus")

    def stop(self) -> None:
        if self.proc is not None:
            stop_group(self.proc)
            self.proc = None

    def __enter__(self) -> PrivateMilvus:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def topic_messages(bootstrap: str, topic: str, timeout_s: float = 5.0) -> list[tuple[str | None, bytes]]:
    """Every message of a topic from the start (key, value)."""
    from kafka import KafkaConsumer, TopicPartition

    consumer = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False, consumer_timeout_ms=1500)
    try:
        parts = [TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic) or ())]
        consumer.assign(parts)
        consumer.seek_to_beginning(*parts)
        end = consumer.end_offsets(parts)
        out: list[tuple[str | None, bytes]] = []
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline and any(consumer.position(tp) < end[tp] for tp in parts):
            for records in consumer.poll(timeout_ms=500).values():
                out.extend((r.key.decode() if r.key else None, r.value) for r in records)
        return out
    finally:
        consumer.close()


def true_end_offsets(bootstrap: str, topic: str) -> dict[int, int]:
    """Last offset + 1 per partition, found by reading the topic.

    Tansu answers ListOffsets(latest) with the base offset of the last record batch + 1, which
    understates the end whenever a producer batched several records; reading is exact.
    """
    from kafka import KafkaConsumer, TopicPartition

    consumer = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    try:
        parts = [TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic) or ())]
        consumer.assign(parts)
        consumer.seek_to_beginning(*parts)
        floor = consumer.end_offsets(parts)  # a lower bound on Tansu, exact on Kafka
        ends = {tp.partition: 0 for tp in parts}
        idle = 0
        deadline = time.monotonic() + 60
        while idle < 3 and time.monotonic() < deadline:
            polled = consumer.poll(timeout_ms=300)
            for tp, records in polled.items():
                ends[tp.partition] = max(ends[tp.partition], records[-1].offset + 1)
            reached = all(ends[tp.partition] >= floor[tp] for tp in parts)
            idle = idle + 1 if reached and not polled else 0
        return ends
    finally:
        consumer.close()


def group_lag(bootstrap: str, group: str, topic: str) -> dict[int, int | None]:
    """Per partition: ``Offsets.lag`` against the true end offset (None: nothing committed yet).

    The end is read from the topic (``true_end_offsets``), not trusted from Tansu; the rest, and the
    begin offset a partition never committed counts from, is ``lookalike.bus.Offsets``.
    """
    from lookalike.bus import Offsets, group_offsets
    from lookalike.settings import Settings

    settings = Settings(_env_file=None, kafka_bootstrap=bootstrap)  # type: ignore[call-arg]
    offsets = group_offsets(settings, group=group, topic=topic)
    ends = true_end_offsets(bootstrap, topic)
    lags = {p: Offsets(o.committed, o.begin, ends[p]).lag for p, o in offsets.items()}
    # a partition with nothing retained has nothing to commit: lag 0; otherwise None until a commit
    return {p: None if offsets[p].committed is None and lags[p] else lags[p] for p in offsets}


class TcpProxy:
    """A TCP forwarder that a test can cut (connections refused) and restore: a real network outage."""

    def __init__(self, target_host: str, target_port: int) -> None:
        import threading

        self.target = (target_host, target_port)
        self.port = free_port()
        self._lock = threading.Lock()
        self._server: socket.socket | None = None
        self._conns: list[socket.socket] = []

    def up(self) -> None:
        import threading

        server = socket.socket()
        server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        server.bind(("127.0.0.1", self.port))
        server.listen(64)
        self._server = server
        threading.Thread(target=self._accept, args=(server,), daemon=True).start()

    def down(self) -> None:
        with self._lock:
            if self._server is not None:
                # shutdown first: a bare close() does not wake a thread blocked in accept(), which
                # would go on accepting connections
                with contextlib.suppress(OSError):
                    self._server.shutdown(socket.SHUT_RDWR)
                self._server.close()
                self._server = None
            for c in self._conns:
                with contextlib.suppress(OSError):
                    c.shutdown(socket.SHUT_RDWR)
                c.close()
            self._conns.clear()

    def _accept(self, server: socket.socket) -> None:
        import threading

        while True:
            try:
                client, _ = server.accept()
            except OSError:
                return
            try:
                upstream = socket.create_connection(self.target, timeout=5)
            except OSError:
                client.close()
                continue
            with self._lock:
                self._conns += [client, upstream]
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    @staticmethod
    def _pipe(src: socket.socket, dst: socket.socket) -> None:
        try:
            while data := src.recv(65536):
                dst.sendall(data)
        except OSError:
            pass
        finally:
            with contextlib.suppress(OSError):
                dst.shutdown(socket.SHUT_WR)


def wait_committed(bootstrap: str, group: str, topic: str, timeout: float = 60.0) -> None:
    """Wait until the group has committed every message of the topic; fail with the lag per partition."""
    lag: dict[int, int | None] = {}

    def done() -> bool:
        lag.update(group_lag(bootstrap, group, topic))
        return all(v == 0 for v in lag.values())

    try:
        wait_for(done, timeout, interval=0.5, what=f"group {group} to commit everything")
    except AssertionError as exc:
        raise AssertionError(f"{exc}; lag per partition {lag}") from None


def nothing_committed(bootstrap: str, group: str, topic: str, since: Mapping[int, int] | None = None) -> bool:
    """The group committed nothing beyond ``since`` (offsets per partition; none: nothing at all).

    A pipeline's own SeaweedFS publishes its bucket's creation before any test message
    (``Pipeline.settled_ends``); a worker may commit those, and that is not the test's progress."""
    from lookalike.bus import group_offsets
    from lookalike.settings import Settings

    settings = Settings(_env_file=None, kafka_bootstrap=bootstrap)  # type: ignore[call-arg]
    offsets = group_offsets(settings, group=group, topic=topic)
    return all(o.committed is None or o.committed <= (since or {}).get(p, 0) for p, o in offsets.items())


def stack_env(state_dir: Path, **extra: str) -> dict[str, str]:
    """``LOOKALIKE_*`` variables for a local stack of a test's own: free ports, its own state dir."""
    return {
        "LOOKALIKE_STATE_DIR": str(state_dir),
        "LOOKALIKE_S3_ENDPOINT": f"http://127.0.0.1:{free_port()}",
        "LOOKALIKE_KAFKA_BOOTSTRAP": f"127.0.0.1:{free_port()}",
        "LOOKALIKE_MILVUS_URI": f"http://127.0.0.1:{free_port()}",
        "LOOKALIKE_BRIDGE_PORT": str(free_port()),
        "LOOKALIKE_METRICS_PORT": str(free_port()),
        "LOOKALIKE_DASHBOARD_PORT": str(free_port()),
        "LOOKALIKE_API_PORT": str(free_port()),
        **extra,
    }


def run_cli(env: dict[str, str], *args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    """``lookalike ARGS`` (``python -m infra.cli``) as a user runs it, from the stack's state dir."""
    return subprocess.run(
        [*CLI, *args],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=env["LOOKALIKE_STATE_DIR"],
    )


def remove_object(store: object, bucket: str, key: str) -> None:
    """Delete an object as any S3 tool would (the app itself never deletes objects)."""
    store.client.remove_object(bucket, key)  # type: ignore[attr-defined]
