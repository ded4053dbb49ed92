"""``infra.local.milvus_server``: a killed launcher must not leave the milvus binary running for good."""

from __future__ import annotations

import os
import shlex
import signal
from pathlib import Path

import pytest

from infra.local.milvus_server import kill_leftovers, leftovers
from tests.helpers import PYTHON, child, free_port, wait_for
from tests.milvus_server.conftest import FLAG, tier_enabled

pytestmark = [
    pytest.mark.milvus_server,
    pytest.mark.skipif(not tier_enabled(), reason=f"needs {FLAG}=1 inside `unshare -n` (infra/test.sh)"),
]


def test_leftover_of_a_killed_launcher_is_found_and_stopped(tmp_path: Path) -> None:
    base = tmp_path / "m"
    log = tmp_path / "launcher.log"
    # a namespace of its own: a second server beside the session's would fight over its fixed ports
    launch = (
        f"exec {shlex.quote(PYTHON)} -m infra.local.milvus_server --dir {shlex.quote(str(base))} --port {free_port()}"
    )
    cmd = ["unshare", "-n", "sh", "-c", f"ip link set lo up && {launch}"]
    try:
        with child(cmd, {}, log) as launcher:
            wait_for(lambda: "standalone at" in log.read_text(errors="replace"), 120, what="milvus launcher ready")
            os.kill(launcher.pid, signal.SIGKILL)  # the launcher only: its milvus binary lives on
            launcher.wait(10)
            assert leftovers(base), "the milvus binary should outlive a SIGKILLed launcher"
            assert kill_leftovers(base)
            assert leftovers(base) == []
    finally:
        kill_leftovers(base)
