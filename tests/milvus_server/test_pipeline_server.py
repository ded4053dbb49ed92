"""The live-path scenarios of ``tests/integration/test_pipeline.py``, run against the real Milvus server.

The test functions are imported, not copied: the same assertions must hold on Milvus Lite and on a
standalone server. Here ``servers`` (see this folder's conftest) points ``milvus_uri`` at Milvus 2.3.5.
"""

from __future__ import annotations

import pytest

from tests.integration.test_pipeline import (
    test_delete_disappears_and_overwrite_reembeds,
    test_every_uploaded_image_is_searchable_and_finds_itself,
    test_odd_keys_survive_encoding,
    test_other_model_is_refused,
    test_same_image_twice_leaves_one_vector,
)
from tests.milvus_server.conftest import FLAG, tier_enabled

pytestmark = [
    pytest.mark.milvus_server,
    pytest.mark.skipif(not tier_enabled(), reason=f"needs {FLAG}=1 inside `unshare -n` (infra/test.sh)"),
]

__all__ = [
    "test_delete_disappears_and_overwrite_reembeds",
    "test_every_uploaded_image_is_searchable_and_finds_itself",
    "test_odd_keys_survive_encoding",
    "test_other_model_is_refused",
    "test_same_image_twice_leaves_one_vector",
]
