"""``lookalike search``: one-line errors before any model load, the running API first (issue 25).

A folder, a missing file or a text file is refused from its bytes, in one line, without a model
load or an API call; a running API answers the search (about 0.1 s instead of a 5 s model load);
without one the model loads here, and an index that does not answer is said as "is the stack
running?", with the weights' problem too when there would be one.
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from infra import cli
from lookalike.errors import Unavailable
from tests.unit.search_cli_support import NoModel, answer, isolated, run, served  # noqa: F401  (isolated: autouse)


def jpeg() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (64, 48), (200, 30, 30)).save(out, "JPEG")
    return out.getvalue()


@pytest.mark.parametrize(
    ("make", "phrase"),
    [
        (lambda p: p.mkdir(), "is a folder: give one image file"),
        (lambda p: None, "no such file"),
        (lambda p: p.write_text("# README\nnot an image\n"), "is not a usable image: not an image"),
        (lambda p: p.write_bytes(b""), "is not a usable image: zero-byte"),
    ],
    ids=["folder", "missing", "text", "empty"],
)
def test_a_bad_query_file_gets_one_line_before_any_model_load(
    make: Any, phrase: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr("lookalike.search.Searcher", NoModel)
    path = tmp_path / "query.jpg"
    make(path)
    rc, out, err = run(capsys, str(path))
    assert rc == 1 and out == ""
    assert err.startswith(f"lookalike: {path}") and phrase in err, err
    assert err.count("\n") == 1 and "Traceback" not in err and "Errno" not in err


class FakeApi(BaseHTTPRequestHandler):
    status = 200
    seen: list[dict[str, str]] = []

    def do_POST(self) -> None:
        length = int(self.headers["Content-Length"])
        FakeApi.seen.append({"path": self.path, "auth": self.headers["Authorization"], "body": str(length)})
        self.rfile.read(length)
        result = {"key": "cats/1.jpg", "bucket": "images", "score": 0.97, "etag": "e", "size": 10}
        body = {"results": [{**result, "content_type": "image/jpeg", "uploaded_at": "2026-01-02T03:04:05.000Z"}]}
        doc = body if self.status == 200 else {"detail": "missing or wrong bearer token"}
        answer(self, self.status, {**doc, "took_ms": 12.5})

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture()
def api(monkeypatch: pytest.MonkeyPatch) -> Iterator[type[FakeApi]]:
    FakeApi.status, FakeApi.seen = 200, []
    with served(FakeApi, monkeypatch):
        yield FakeApi


def test_a_running_api_answers_and_no_model_loads(
    api: type[FakeApi], tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr("lookalike.search.Searcher", NoModel)
    query = tmp_path / "q.jpg"
    query.write_bytes(jpeg())
    rc, out, err = run(capsys, str(query), "-k", "3", "--verbose")
    assert rc == 0, err
    assert api.seen == [{"path": "/v1/search?k=3", "auth": "Bearer t0ken", "body": api.seen[0]["body"]}]
    assert "via the API at http://127.0.0.1:" in out and "s3://images/cats/1.jpg" in out
    assert "of which the API 12 ms" in err
    rc, out, _ = run(capsys, str(query), "--json")
    assert rc == 0 and json.loads(out)[0]["id"] == "images/cats/1.jpg"


def test_an_api_that_refuses_the_token_falls_back_to_the_model_here(
    api: type[FakeApi], tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    api.status = 401
    loaded: list[bool] = []

    class Down:
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            loaded.append(True)
            raise Unavailable("milvus", "code 2: Fail connecting")

    monkeypatch.setattr("lookalike.search.Searcher", Down)
    query = tmp_path / "q.jpg"
    query.write_bytes(jpeg())
    rc, _, err = run(capsys, str(query))
    assert rc == 1 and loaded == [True]
    assert "refused LOOKALIKE_API_TOKEN; loading the model here instead" in err


def test_no_stack_and_no_weights_say_both_at_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    class Down:
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            raise Unavailable("milvus", "code 2: Fail connecting")

    monkeypatch.setattr("lookalike.search.Searcher", Down)
    monkeypatch.setattr("lookalike.weights.missing_weights", lambda model: f"no weights for {model}: LOOKALIKE_WEIGHTS")
    query = tmp_path / "q.jpg"
    query.write_bytes(jpeg())
    rc, out, err = run(capsys, str(query), "--local")
    lines = err.strip().splitlines()
    assert rc == 1 and out == ""
    assert "is the stack running?" in lines[0] and "stack up`" in lines[0]
    assert lines[1] == "lookalike: no weights for mobilenetv2_100: LOOKALIKE_WEIGHTS"


def test_the_help_says_which_way_a_search_goes() -> None:
    text = " ".join(cli.build_parser().parse_args(["search", "x"]).func.__module__.split())
    assert text == "infra.commands.search"
    help_text = "".join(
        " ".join(a.choices["search"].format_help().split())
        for a in cli.build_parser()._actions
        if hasattr(a, "choices") and a.choices and "search" in a.choices
    )
    assert "asks the API" in help_text and "loads the collection's model here" in help_text
