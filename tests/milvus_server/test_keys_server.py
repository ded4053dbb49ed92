"""Every key S3 allows through every index call, against the real Milvus 2.3.5 standalone server."""

from __future__ import annotations

import pytest

from tests.conftest import make_settings
from tests.milvus_server.conftest import FLAG, tier_enabled
from tests.odd_keys import check_on_a_fresh_collection

pytestmark = [
    pytest.mark.milvus_server,
    pytest.mark.skipif(not tier_enabled(), reason=f"needs {FLAG}=1 inside `unshare -n` (infra/test.sh)"),
]


def test_every_odd_key_works_in_every_index_call(servers: dict[str, str]) -> None:
    check_on_a_fresh_collection(make_settings(servers))
