"""Bounded work per image on the real local stack: tiny files of extreme shape between normal uploads.

A 143-byte PNG of 20000 x 1 pixels used to cost 6 GB and 17 s to prepare (the short side was resized
to the model's size first), which an OOM-killer ends with no exception to contain, so the record came
back to the next worker. Now preparing one image is bounded by the model's input size (or the image
is refused with a reason); with two workers, every such upload leaves both alive, and the index
equals the bucket, less the objects dead-lettered with a reason.
"""

from __future__ import annotations

import io

import pytest
from PIL import Image

from tests.conftest import open_pipeline
from tests.helpers import wait_committed, wait_for
from tests.integration.test_robustness import _dead_letters, _jpeg

pytestmark = pytest.mark.integration

SHAPES = [(20_000, 1), (1, 20_000), (60_000, 2)]
FORMATS = ["PNG", "GIF", "WEBP", "TIFF", "JPEG"]


def _image(size: tuple[int, int], fmt: str) -> bytes:
    out = io.BytesIO()
    Image.new("RGB" if fmt != "GIF" else "P", size, 90).save(out, fmt)
    return out.getvalue()


def test_extreme_shapes_between_normal_uploads_leave_two_workers_alive(servers, embedder, tmp_path) -> None:  # type: ignore[no-untyped-def]
    with open_pipeline(servers, embedder, tmp_path, batch_size=8) as p:
        s = p.settings
        p.start_worker()
        p.start_worker()
        extreme = []
        for i, (size, fmt) in enumerate((size, fmt) for size in SHAPES for fmt in FORMATS):
            if fmt == "WEBP" and max(size) > 16_383:
                continue  # WebP cannot hold a side over 16,383 pixels
            if fmt == "JPEG" and max(size) > 65_500:
                continue
            p.store.put_bytes(s.bucket, f"normal/{i:02d}.jpg", _jpeg(30_000 + i), "image/jpeg")  # type: ignore[attr-defined]
            key = f"extreme/{size[0]}x{size[1]}.{fmt.lower()}"
            p.store.put_bytes(s.bucket, key, _image(size, fmt), "application/octet-stream")  # type: ignore[attr-defined]
            extreme.append(f"{s.bucket}/{key}")

        def settled() -> bool:
            dead = {d["key"] for d in _dead_letters(p) if d.get("reason")}
            want = {k: e for k, e in p.bucket_state().items() if k not in dead}
            return p.indexed() == want and all(k in want or k in dead for k in extreme)

        wait_for(settled, 180, what="index == bucket less the refused, each extreme image indexed or refused")
        assert all(t.is_alive() for t in p.threads) and len(p.threads) == 2, "a worker died"
        assert not p.errors, p.errors
        wait_committed(s.kafka_bootstrap, s.group, s.topic, 60)  # type: ignore[attr-defined]
