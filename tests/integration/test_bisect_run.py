"""Bisection on the real local stack: a model that refuses one image inside a batch.

The model call covers the whole batch, so a failure there used to be the batch's failure. Here the
worker's model raises an error no classification names whenever its batch holds one particular
image; the worker must split the batch down to that image, dead-letter it with the error, index the
other uploads of the same batches, commit, and stay alive.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pytest
from PIL import Image

from tests.conftest import open_pipeline
from tests.helpers import wait_committed, wait_for
from tests.integration.test_robustness import _dead_letters, _jpeg

pytestmark = pytest.mark.integration

POISON_SIZE = (77, 53)  # the one image the model refuses is recognised by its size at prepare time


class RefusesOneImage:
    """The session's model, except that a batch holding the poisoned image raises ``RuntimeError``."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.poisoned: set[int] = set()
        self.calls = 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def prepare(self, image: Image.Image) -> Any:
        tensor = self.inner.prepare(image)
        if image.size == POISON_SIZE:
            self.poisoned.add(id(tensor))
        return tensor

    def embed_prepared(self, batch: Sequence[Any]) -> np.ndarray:
        self.calls += 1
        if any(id(t) in self.poisoned for t in batch):
            raise RuntimeError("the model refused this batch (injected)")
        return self.inner.embed_prepared(batch)


def _poison() -> bytes:
    import io

    out = io.BytesIO()
    Image.new("RGB", POISON_SIZE, (10, 200, 90)).save(out, "PNG")
    return out.getvalue()


def test_a_model_failure_of_one_image_is_bisected_out_of_its_batch(servers, embedder, tmp_path) -> None:  # type: ignore[no-untyped-def]
    with open_pipeline(servers, embedder, tmp_path, batch_size=16) as p:
        s = p.settings
        model = RefusesOneImage(embedder)
        p.embedder = model
        store = p.store
        for i in range(12):  # the backlog lands first, with no worker running
            store.put_bytes(s.bucket, f"before/{i:02d}.jpg", _jpeg(40_000 + i), "image/jpeg")  # type: ignore[attr-defined]
        store.put_bytes(s.bucket, "poison.png", _poison(), "image/png")  # type: ignore[attr-defined]
        for i in range(12):
            store.put_bytes(s.bucket, f"after/{i:02d}.jpg", _jpeg(50_000 + i), "image/jpeg")  # type: ignore[attr-defined]
        from consumers.backfill import backfill

        report = backfill(s, model, progress=False)  # type: ignore[arg-type]
        assert report.failed == 1 and report.added == 24, report
        p.start_worker()  # its backlog's events find those indexed (and the poisoned one refused again)
        poison_id = f"{s.bucket}/poison.png"
        dead = wait_for(lambda: [d for d in _dead_letters(p) if d["key"] == poison_id], 60, what="its dead letter")
        assert "injected" in dead[0]["reason"], dead
        want = {k: e for k, e in p.bucket_state().items() if k != poison_id}
        wait_for(lambda: p.indexed() == want, 60, what="every other image indexed")
        # the live path: the poisoned image again, between normal uploads, through the topic
        store.put_bytes(s.bucket, "again/poison.png", _poison(), "image/png")  # type: ignore[attr-defined]
        store.put_bytes(s.bucket, "again/ok.jpg", _jpeg(60_000), "image/jpeg")  # type: ignore[attr-defined]
        again = f"{s.bucket}/again/poison.png"
        wait_for(lambda: [d for d in _dead_letters(p) if d["key"] == again], 90, what="the live dead letter")
        wait_for(lambda: f"{s.bucket}/again/ok.jpg" in p.indexed(), 60, what="its neighbour indexed")
        assert all(t.is_alive() for t in p.threads) and not p.errors, p.errors
        wait_committed(s.kafka_bootstrap, s.group, s.topic, 60)  # type: ignore[attr-defined]
