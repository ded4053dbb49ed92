"""What ``GET /v1/duplicates``, ``lookalike duplicates`` and the dashboard's Duplicates tab do on an
index whose model family has no calibrated near-duplicate threshold (a CLIP model, issue 24).

With no threshold asked for and LOOKALIKE_DUPLICATE_THRESHOLD unset, each says so with
``uncalibrated_message`` naming the index's model (its alias target's, not the configured one):
the API with a 409, the command with exit code 2, the tab with one line instead of its slider.
An explicit threshold, a configured one, or a timm index (0.85) still list the groups.
No model, no Milvus: the index is ``MarkedIndex`` below.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from streamlit.testing.v1 import AppTest

from dashboard.api.app import create_app
from dashboard.api.service import QueryService
from infra import cli
from lookalike.errors import NotIndexed, Unavailable
from lookalike.families import uncalibrated_message
from lookalike.rows import ModelTag
from lookalike.settings import Settings
from tests.unit.fakes import FakeEmbedder, FakeStore

TOKEN = "t0ken"
CLIP = ModelTag("open_clip:ViT-S-32", "random", 3)
CNN = ModelTag("mobilenetv2_100", "random", 3)
ROWS = [  # a copy at 0.95 of its original, another at 0.87: two groups at 0.85, one at 0.9
    {"id": "images/a.jpg", "duplicate_of": "", "duplicate_score": 0.0},
    {"id": "images/a-copy.jpg", "duplicate_of": "images/a.jpg", "duplicate_score": 0.95},
    {"id": "images/b.jpg", "duplicate_of": "", "duplicate_score": 0.0},
    {"id": "images/b-copy.jpg", "duplicate_of": "images/b.jpg", "duplicate_score": 0.87},
]


class MarkedIndex:
    """The part of ``VectorIndex`` these readers use: the alias target's tag (None: nothing indexed
    yet), the marked rows, and a count of the reads of them."""

    def __init__(self, tag: ModelTag | None, down: bool = False) -> None:
        self.tag = tag
        self.down = down
        self.reads = 0

    def check(self) -> None:
        if self.down:
            raise Unavailable("milvus", "code 2: Fail connecting (fake)")

    def exists(self) -> bool:
        self.check()
        return self.tag is not None

    def follow(self) -> tuple[str, ModelTag]:
        self.check()
        if self.tag is None:
            raise NotIndexed("collection 'images' does not exist yet")
        return "images__v1", self.tag

    def check_duplicate_fields(self) -> bool:
        return True

    def duplicate_rows(self, prefix: str = "", min_score: float = 0.0) -> list[dict[str, Any]]:
        self.check()
        self.reads += 1
        return [r for r in ROWS if r["duplicate_of"] and r["duplicate_score"] >= min_score]

    def get(self, ids: list[str], with_vectors: bool = False) -> list[dict[str, Any]]:
        return [r for r in ROWS if r["id"] in ids]  # no etag: the tab shows keys, never asks S3

    def close(self) -> None:
        pass


class TaggedEmbedder(FakeEmbedder):
    def __init__(self, tag: ModelTag) -> None:
        self.tag = tag


# ---------------------------------------------------------------- the API
@pytest.fixture()
def api() -> Iterator[Any]:
    """``client(index, configured model, configured threshold)``: the real routes over a real
    ``QueryService`` whose Milvus is ``index`` (the lifespan, which would load a model, is not run)."""

    def client(index: MarkedIndex, model: str = CNN.model, threshold: float | None = None) -> TestClient:
        settings = Settings(_env_file=None, api_token=TOKEN, model=model, duplicate_threshold=threshold)
        embedder = TaggedEmbedder(index.tag or CNN)
        app = create_app(settings, embedder=embedder)  # type: ignore[arg-type]
        app.state.service = QueryService(settings, embedder, FakeStore(), open_index=lambda: index)  # type: ignore[arg-type,return-value]
        made = TestClient(app, raise_server_exceptions=False)
        made.headers["Authorization"] = f"Bearer {TOKEN}"
        return made

    yield client


def keys(response: Any) -> list[list[str]]:
    assert response.status_code == 200, response.text
    return [g["keys"] for g in response.json()["groups"]]


def test_a_clip_index_without_a_threshold_answers_409_naming_its_model(api: Any) -> None:
    index = MarkedIndex(CLIP)
    client = api(index, model=CNN.model)  # the configured model is stale: the index's counts
    response = client.get("/v1/duplicates")
    assert response.status_code == 409 and response.json() == {"detail": uncalibrated_message(CLIP.model)}
    assert index.reads == 0
    assert keys(client.get("/v1/duplicates", params={"threshold": 0.9})) == [["a-copy.jpg", "a.jpg"]]
    assert keys(api(index, threshold=0.85).get("/v1/duplicates")) == [["a-copy.jpg", "a.jpg"], ["b-copy.jpg", "b.jpg"]]


def test_a_timm_index_lists_at_its_familys_threshold_and_an_empty_one_follows_the_configured_model(api: Any) -> None:
    assert len(keys(api(MarkedIndex(CNN), model=CLIP.model).get("/v1/duplicates"))) == 2  # at 0.85
    nothing = api(MarkedIndex(None), model=CLIP.model).get("/v1/duplicates")
    assert nothing.status_code == 409 and nothing.json()["detail"] == uncalibrated_message(CLIP.model)
    assert keys(api(MarkedIndex(None), model=CNN.model).get("/v1/duplicates")) == []


def test_milvus_down_is_the_503_of_every_route_not_a_guess_at_the_family(api: Any) -> None:
    response = api(MarkedIndex(CLIP, down=True)).get("/v1/duplicates")
    assert response.status_code == 503 and response.json()["detail"].startswith("milvus unavailable")


def test_the_409_is_in_the_openapi_document(api: Any) -> None:
    doc = api(MarkedIndex(CNN)).get("/openapi.json").json()
    responses = doc["paths"]["/v1/duplicates"]["get"]["responses"]
    assert "409" in responses and "calibrate" in responses["409"]["description"]


# ---------------------------------------------------------------- lookalike duplicates
@pytest.fixture()
def run(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> Any:
    """``run(index, *argv)``: (exit code, stdout, stderr) of the command over ``index``, its settings
    from a clean environment (``env`` adds variables)."""
    monkeypatch.chdir(tmp_path)  # no .env of the checkout
    for name in ("LOOKALIKE_DUPLICATE_THRESHOLD", "LOOKALIKE_MODEL"):
        monkeypatch.delenv(name, raising=False)

    def go(index: MarkedIndex, *argv: str, **env: str) -> tuple[int, str, str]:
        for name, value in env.items():
            monkeypatch.setenv(f"LOOKALIKE_{name.upper()}", value)
        monkeypatch.setattr("dashboard.duplicates_cli.VectorIndex", lambda settings: index)
        rc = cli.main(["duplicates", *argv])
        out, err = capsys.readouterr()
        return rc, out, err

    return go


def test_the_command_says_so_and_exits_2_unless_a_threshold_is_given(run: Any) -> None:
    index = MarkedIndex(CLIP)
    rc, out, err = run(index)
    assert (rc, out) == (2, "") and index.reads == 0
    assert err == f"lookalike duplicates: {uncalibrated_message(CLIP.model)}, or pass --threshold\n"
    rc, out, err = run(index, "--threshold", "0.9", "--json")
    assert (rc, err) == (0, "") and json.loads(out) == {
        "groups": [{"keys": ["a-copy.jpg", "a.jpg"], "max_distance": 0.05}]
    }
    rc, out, err = run(index, duplicate_threshold="0.86")
    assert (rc, err) == (0, "") and out.endswith("2 group(s) at similarity >= 0.86\n")


def test_the_command_uses_the_familys_threshold_on_a_timm_index(run: Any) -> None:
    rc, out, err = run(MarkedIndex(CNN), model=CLIP.model)  # the index's model, not the configured one
    assert (rc, err) == (0, "") and out.endswith("2 group(s) at similarity >= 0.85\n")
    rc, out, err = run(MarkedIndex(None), model=CLIP.model)  # nothing indexed: the configured model's
    assert rc == 2 and uncalibrated_message(CLIP.model) in err


# ---------------------------------------------------------------- the dashboard's Duplicates tab
def duplicates_tab(model: str, threshold: float | None) -> None:
    """The tab alone, as ``dashboard.app`` draws it (AppTest runs this function's source as a script)."""
    from dashboard.duplicates_panel import duplicates_ui
    from dashboard.resources import Ctx
    from lookalike.settings import Settings

    duplicates_ui(Ctx(Settings(_env_file=None, model=model, duplicate_threshold=threshold)), set())


def tab(monkeypatch: pytest.MonkeyPatch, index: MarkedIndex, model: str, threshold: float | None = None) -> AppTest:
    monkeypatch.setattr("dashboard.duplicates_panel.open_duplicate_index", lambda key, settings: index)
    at = AppTest.from_function(duplicates_tab, args=(model, threshold), default_timeout=60)
    at.run()
    assert not at.exception, at.exception
    return at


def test_the_tab_is_one_line_on_an_uncalibrated_index(monkeypatch: pytest.MonkeyPatch) -> None:
    index = MarkedIndex(CLIP)
    at = tab(monkeypatch, index, CNN.model)
    assert [i.value for i in at.info] == [uncalibrated_message(CLIP.model)]
    assert not at.slider and index.reads == 0


def test_the_slider_starts_at_the_threshold_in_force(monkeypatch: pytest.MonkeyPatch) -> None:
    at = tab(monkeypatch, MarkedIndex(CNN), CLIP.model)
    assert at.slider(key="dup_threshold").value == pytest.approx(0.85)
    assert [m.value.split(" ·")[0] for m in at.markdown if m.value.startswith("**Group")] == [
        "**Group 1**",
        "**Group 2**",
    ]
    configured = tab(monkeypatch, MarkedIndex(CLIP), CNN.model, threshold=0.9)
    assert configured.slider(key="dup_threshold").value == pytest.approx(0.9) and not configured.info
