"""Runs in the ordinary test run: outside a private network namespace the server must refuse to start.

milvus 2.3.5 would bind nine ports on every interface of a shared machine; ``MilvusStandalone`` checks
first and starts nothing.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from infra.local.milvus_server import MilvusServerError, MilvusStandalone, in_private_netns, leftovers
from tests.helpers import free_port


def test_refuses_to_bind_every_interface_of_a_shared_network(tmp_path: Path) -> None:
    if in_private_netns():
        pytest.skip("this process is already inside a private network namespace")
    server = MilvusStandalone(tmp_path / "m", free_port())
    with pytest.raises(MilvusServerError, match="unshare -n"):
        server.start()
    assert leftovers(tmp_path / "m") == []
    assert not (tmp_path / "m" / "bin").exists(), "nothing should have been unpacked"
    server.stop()  # harmless when nothing started
