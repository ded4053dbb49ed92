"""A real Milvus standalone server (the PyPI package ``milvus==2.3.5``) for the second test tier and trials.

Why it exists: Milvus Lite is not what production runs. This package ships the real ``milvus run
standalone`` binary (embedded etcd, local storage, rocksmq), so our index code can be proved against the
server's query engine, consistency levels and return shapes without Docker.

Two hazards shape the code:

* The binary binds nine ports (proxy, etcd, coordinators, nodes) on *every* interface. Run it and its
  clients inside a private network namespace: ``unshare -n sh -c 'ip link set lo up; ...'``.
  ``start`` refuses to run anywhere else unless ``allow_shared_network`` is set.
* A SIGKILL of the Python launcher leaves the binary running. ``stop`` therefore also kills every
  process whose executable is *this base directory's* ``bin/milvus`` (found through ``/proc/<pid>/exe``),
  which catches leftovers of an earlier, killed run on the same directory and nothing else.

Manual use (inside a namespace)::

    unshare -n sh -c 'ip link set lo up && .venv/bin/python -m infra.local.milvus_server --dir /tmp/m --port 19531'
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import signal
import socket
import subprocess
import time
from pathlib import Path
from types import TracebackType

from lookalike.process import setup_logging, stop_on_signals
from lookalike.settings import Settings

log = logging.getLogger(__name__)

VERSION = "2.3.5"


class MilvusServerError(RuntimeError):
    """The standalone server could not be started or did not answer."""


def in_private_netns() -> bool:
    """True when this process sees no network interface but loopback (``unshare -n``)."""
    return {name for _, name in socket.if_nameindex()} <= {"lo"}


def leftovers(base_dir: Path) -> list[int]:
    """Pids of processes whose executable lies under ``base_dir``: the milvus binaries unpacked there.

    The package unpacks its binary into ``<base_dir>/bin``, so this names our servers (also ones whose
    launcher was killed) and never anybody else's.
    """
    root = Path(base_dir).resolve()
    pids: list[int] = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        with contextlib.suppress(OSError, ValueError):
            if Path(os.readlink(entry / "exe").removesuffix(" (deleted)")).is_relative_to(root):
                pids.append(int(entry.name))
    return pids


def kill_leftovers(base_dir: Path, grace: float = 10.0) -> list[int]:
    """SIGTERM, then SIGKILL, every milvus binary launched from ``base_dir``; returns the pids found."""
    pids = leftovers(base_dir)
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline and leftovers(base_dir):
        time.sleep(0.2)
    for pid in leftovers(base_dir):
        log.warning("milvus pid %d ignored SIGTERM; killing", pid)
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    return pids


class MilvusStandalone:
    """One standalone server on ``127.0.0.1:port`` with its data, config and logs under ``base_dir``."""

    def __init__(self, base_dir: Path, port: int, allow_shared_network: bool = False) -> None:
        self.base_dir = Path(base_dir).resolve()
        self.port = port
        self.allow_shared_network = allow_shared_network
        self._server: object | None = None

    @property
    def uri(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def log_dir(self) -> Path:
        return self.base_dir / "logs"

    def start(self, timeout: float = 120.0) -> None:
        """Unpack the binary (first time per directory), start it, and wait until a client can list collections."""
        if not self.allow_shared_network and not in_private_netns():
            raise MilvusServerError(
                "milvus 2.3.5 binds nine ports on every interface: run this inside `unshare -n` "
                "(or pass allow_shared_network=True on a machine of your own)"
            )
        from milvus import MilvusServer, MilvusServerConfig

        kill_leftovers(self.base_dir)
        self.base_dir.mkdir(parents=True, exist_ok=True)
        server = MilvusServer(MilvusServerConfig(), wait_for_started=False)
        server.set_base_dir(str(self.base_dir))
        server.listen_port = self.port
        self._server = server
        try:
            server.start()
            self._wait_ready(server, timeout)
        except BaseException:
            self.stop()
            raise
        log.info("milvus %s standalone answers at %s (data in %s)", VERSION, self.uri, self.base_dir)

    def _wait_ready(self, server: object, timeout: float) -> None:
        from pymilvus import MilvusClient

        from lookalike.index import GRPC_OPTIONS

        proc: subprocess.Popen[bytes] = server.server_proc  # type: ignore[attr-defined]
        deadline = time.monotonic() + timeout
        last = ""
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise MilvusServerError(f"milvus exited with {proc.returncode}; see {self.log_dir}\n{self.tail()}")
            try:
                client = MilvusClient(uri=self.uri, timeout=3, grpc_options=GRPC_OPTIONS)
                try:
                    client.list_collections()
                    return
                finally:
                    client.close()
            except Exception as exc:  # not up yet: connection refused, "not ready", deadline
                last = str(exc)
            time.sleep(0.5)
        raise MilvusServerError(f"milvus did not answer at {self.uri} in {timeout:.0f} s ({last}); see {self.log_dir}")

    def stop(self) -> None:
        """Stop the launched server, then anything else launched from this directory. Safe to call twice."""
        server, self._server = self._server, None
        if server is not None:
            try:
                server.stop()  # type: ignore[attr-defined]
            except Exception:  # the binary is killed below in any case
                log.warning("milvus stop() failed", exc_info=True)
        kill_leftovers(self.base_dir)

    def tail(self, lines: int = 20) -> str:
        out = []
        for path in sorted(self.log_dir.glob("*.log")):
            with contextlib.suppress(OSError):
                out.extend(path.read_text(errors="replace").splitlines()[-lines:])
        return "\n".join(out)

    def __enter__(self) -> MilvusStandalone:
        self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


def main(argv: list[str] | None = None) -> int:
    """Run a server in the foreground until SIGINT/SIGTERM (for trying things by hand)."""
    parser = argparse.ArgumentParser(prog="python -m infra.local.milvus_server", description=__doc__.splitlines()[0])
    parser.add_argument("--dir", type=Path, required=True, help="data, config and log directory")
    parser.add_argument("--port", type=int, default=19530)
    parser.add_argument("--allow-shared-network", action="store_true", help="run outside `unshare -n` anyway")
    parser.add_argument(
        "--kill-leftovers", action="store_true", help="only stop servers still running from binaries under --dir"
    )
    args = parser.parse_args(argv)
    setup_logging(Settings())
    if args.kill_leftovers:
        pids = kill_leftovers(args.dir)
        print(f"stopped {len(pids)} leftover milvus process(es) under {args.dir}" if pids else "no leftovers")
        return 0
    stop = stop_on_signals()
    server = MilvusStandalone(args.dir, args.port, allow_shared_network=args.allow_shared_network)
    try:
        server.start()
        print(f"milvus {VERSION} standalone at {server.uri}; Ctrl+C stops it", flush=True)
        stop.wait()
    finally:
        server.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
