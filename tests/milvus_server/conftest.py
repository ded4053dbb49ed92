"""The real-Milvus tier: the integration scenarios again, against a Milvus 2.3.5 standalone server.

The ``servers`` fixture of ``tests/conftest.py`` is overridden here: SeaweedFS and Tansu start as in
the local stack, but ``milvus_uri`` points at the real standalone server (``infra.local.milvus_server``)
instead of Milvus Lite. Everything that builds on ``servers`` (``embedder``, ``pipeline``) follows.

The server binds every interface, so this tier runs only inside a private network namespace, and only
when asked: ``infra/test.sh`` runs ``pytest tests/milvus_server`` with ``LOOKALIKE_TEST_MILVUS_SERVER=1``
under ``unshare -n sh -c 'ip link set lo up && ...'``. A plain ``pytest`` run skips it.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from tests.helpers import child, free_port

FLAG = "LOOKALIKE_TEST_MILVUS_SERVER"


def tier_enabled() -> bool:
    return os.environ.get(FLAG) == "1"


@pytest.fixture(scope="session")
def servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """SeaweedFS and Tansu on free ports plus a real Milvus standalone server; all stopped however the tier ends."""
    from infra.local import stack
    from infra.local.milvus_server import MilvusStandalone, in_private_netns
    from lookalike.settings import Settings

    if not tier_enabled():
        pytest.skip(f"the real-Milvus tier runs only with {FLAG}=1 inside `unshare -n` (infra/test.sh does it)")
    if not in_private_netns():
        pytest.fail(f"{FLAG}=1 but this is not a private network namespace: milvus would bind every interface")

    root = tmp_path_factory.mktemp("stack")
    milvus = MilvusStandalone(root / "milvus", free_port())
    addresses = {
        "s3_endpoint": f"http://127.0.0.1:{free_port()}",
        "kafka_bootstrap": f"127.0.0.1:{free_port()}",
        "milvus_uri": milvus.uri,
        "state_dir": str(root),
    }
    settings = Settings(_env_file=None, **addresses)  # type: ignore[arg-type]
    parts = {p.name: p for p in stack.plan(settings, workers=0, dashboard=False, bridge=False)}
    try:
        with child(parts["kafka"].cmd, {}, root / "logs" / "kafka.log"):
            stack.wait_ready(settings, parts["kafka"], 30)
            stack.ensure_topics(settings)  # SeaweedFS needs Kafka, and the topic, from its start
            stack.start_part(settings, parts["s3"], {})
            try:
                milvus.start()
                stack.wait_ready(settings, parts["s3"], 30)
                yield addresses
            finally:
                stack.stop_part(parts["s3"])
    finally:
        milvus.stop()
