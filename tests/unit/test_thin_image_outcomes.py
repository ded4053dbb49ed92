"""A refused thin image gets each path's own outcome (issue 26): the worker's dead letter with the
reason, the API's 400, the dashboard's sentence and the command's one line on stderr.

The embedder here is the fake's mean colour behind the real bounded preparation
(``lookalike.preprocess``) built from the default model's data config: no model, no weights.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from typing import Any

import numpy as np
import pytest
from PIL import Image

from consumers.prepare import PrepareStage
from dashboard import query
from dashboard.api.app import classify
from lookalike.imaging import decode_image
from lookalike.preprocess import BoundedTransform, ImageTooThin
from lookalike.settings import Settings
from tests.unit.fakes import FakeEmbedder, FakeIndex, FakeStore, Topic
from tests.unit.test_bounded_preprocess import DEFAULT

B = "images"
REASON = "image is 20000x1: too thin to search with"


class BoundedEmbedder(FakeEmbedder):
    """The real bounded preparation; a 'model' that averages the prepared tensor's channels."""

    def __init__(self) -> None:
        self.transform = BoundedTransform.from_config(DEFAULT)

    def prepare(self, image: Image.Image) -> Any:
        return self.transform(image).mean(axis=(1, 2))

    def embed(self, images: Sequence[Image.Image]) -> np.ndarray:
        return self.embed_prepared([self.prepare(im) for im in images])


class OneImageSearcher:
    """``Searcher.search_bytes`` as far as the refusal: decode, then embed."""

    def __init__(self, *_: object) -> None:
        self.embedder = BoundedEmbedder()

    def search_bytes(self, data: bytes, k: int = 10, **_: object) -> Any:
        return self.embedder.embed([decode_image(data, min_side=512)])

    def close(self) -> None:
        pass


def thin_png(size: tuple[int, int] = (20000, 1)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", size, (200, 30, 30)).save(buf, "PNG")
    return buf.getvalue()


def test_the_worker_dead_letters_it_with_the_reason_and_indexes_the_rest() -> None:
    store, index = FakeStore(), FakeIndex()
    stage = PrepareStage(Settings(_env_file=None, bucket=B), store, index, BoundedEmbedder(), threads=2)  # type: ignore[call-arg]
    try:
        store.put(B, "thin.png", thin_png())
        store.put(B, "ok.png", thin_png((64, 48)))
        t = Topic()
        work = stage.prepare([t.event("created", B, "thin.png"), t.event("created", B, "ok.png")])
    finally:
        stage.close()
    assert [u.row.id for u in work.upserts] == [f"{B}/ok.png"]
    assert [d.key for d in work.dead] == [f"{B}/thin.png"]
    assert work.dead[0].reason.startswith(REASON), work.dead[0].reason


def test_the_api_answers_400_with_the_reason() -> None:
    with pytest.raises(ImageTooThin) as info:
        BoundedEmbedder().embed([decode_image(thin_png())])
    status, detail = classify(info.value)
    assert status == 400 and detail.startswith(f"image: {REASON}")


def test_the_dashboard_says_why_and_does_not_call_it_transient() -> None:
    out = query.run_query(OneImageSearcher, query.QuerySource.upload("thin.png", "u1"), thin_png, 5, 10**6)
    assert out.error is not None and not out.transient
    assert out.error.startswith(f"That image cannot be used as a query: {REASON}")


def test_the_command_prints_one_line(monkeypatch: pytest.MonkeyPatch, tmp_path: Any, capsys: Any) -> None:
    from infra import cli

    monkeypatch.setattr("lookalike.search.Searcher", OneImageSearcher)
    path = tmp_path / "thin.png"
    path.write_bytes(thin_png())
    assert cli.main(["search", str(path)]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"lookalike: {REASON}") and "\n" not in err
