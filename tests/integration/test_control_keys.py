"""Every key S3 allows, on the real local stack (Milvus Lite): through every index call, and through two
live workers with boto3 uploads of each control character between normal ones.

The case that used to stop every worker: a key with U+0018 made the planner's batch look-up build a
literal Milvus Lite refuses, an error that was neither an outage nor one object's, so it ended the
process and every later upload of the partition waited behind it. Now each such key is indexed (the
literals are written so both servers parse them) or, if Milvus truly refused it, dead-lettered with
its reason; both workers live on, and index == bucket. SeaweedFS takes every such key (a newline too),
stores a backslash as a slash, and refuses a path segment over 255 bytes at the PUT.
"""

from __future__ import annotations

import pytest
from botocore.exceptions import ClientError

from tests.conftest import make_settings, open_pipeline
from tests.integration.test_robustness import _boto3, _dead_letters, _jpeg, _settled
from tests.odd_keys import LONG, check_on_a_fresh_collection, odd_keys

pytestmark = pytest.mark.integration


def test_every_odd_key_works_in_every_index_call(servers: dict[str, str]) -> None:
    check_on_a_fresh_collection(make_settings(servers))


def test_control_character_keys_between_normal_uploads_leave_two_workers_alive(servers, embedder, tmp_path) -> None:  # type: ignore[no-untyped-def]
    with open_pipeline(servers, embedder, tmp_path, batch_size=8) as p:
        s = p.settings
        p.start_worker()
        p.start_worker()
        s3 = _boto3(p)
        # SeaweedFS refuses a path segment over 255 bytes (S3 takes 1,024): LONG is left to the index test
        keys = [k for k in odd_keys() if k != LONG]
        with pytest.raises(ClientError, match="KeyTooLong"):
            s3.put_object(Bucket=s.bucket, Key=LONG, Body=_jpeg(1))
        for i, key in enumerate(keys):
            s3.put_object(Bucket=s.bucket, Key=f"normal/{i:02d}.jpg", Body=_jpeg(10_000 + i))
            s3.put_object(Bucket=s.bucket, Key=key, Body=_jpeg(20_000 + i))
        _settled(p, workers=2, timeout=180)
        indexed = p.indexed()
        dead = {d["key"]: d["reason"] for d in _dead_letters(p)}
        for key in keys:
            oid = f"{s.bucket}/{key.replace(chr(92), '/')}"  # SeaweedFS stores a backslash as a slash
            assert oid in indexed or dead.get(oid), f"{key!r} neither indexed nor dead-lettered with a reason"
        assert not dead, f"Milvus should hold every key S3 allows: {dead}"
