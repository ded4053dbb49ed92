"""``lookalike search --text "..."`` (issue 24): through a running API or the model here, with the
same -k, --prefix, --since, --until, --json and --verbose as an image search.

Refusals are the user's to fix, so they exit 2 with one line: text the model cannot read (the API's
422 or ``BadText`` here), an index whose model embeds images only (409 or ``NoTextTower``), a date
range that holds nothing, empty text (refused before any API call or model load).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any, ClassVar

import pytest

from infra import cli
from lookalike.search import Searcher
from lookalike.text_search import images_only
from lookalike.window import Window
from tests.unit.search_cli_support import NoModel, answer, isolated, run, served  # noqa: F401  (isolated: autouse)
from tests.unit.text_fakes import CONTEXT, SearchIndex, WordsEmbedder, colour_rows

RESULT = {"key": "cats/1.jpg", "bucket": "images", "score": 0.31, "etag": "e", "size": 10, "content_type": "image/png"}


class TextApi(BaseHTTPRequestHandler):
    """The API's two search routes as far as the command sees them; answers ``status`` with ``doc``."""

    status = 200
    doc: ClassVar[dict[str, Any]] = {}
    seen: ClassVar[list[dict[str, Any]]] = []

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        is_json = self.headers["Content-Type"] == "application/json"
        TextApi.seen.append({"path": self.path, "body": json.loads(body) if is_json else len(body)})
        answer(self, self.status, self.doc)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture()
def api(monkeypatch: pytest.MonkeyPatch) -> Iterator[type[TextApi]]:
    TextApi.status, TextApi.doc, TextApi.seen = 200, {"results": [RESULT], "took_ms": 3.0}, []
    monkeypatch.setattr("lookalike.search.Searcher", NoModel)
    with served(TextApi, monkeypatch):
        yield TextApi


def test_text_goes_to_the_api_as_json_with_every_filter(api: type[TextApi], capsys: Any) -> None:
    argv = ["--text", "a red car", "-k", "3", "--prefix", "cats/", "--since", "2026-01-01", "--until", "2026-01-31"]
    rc, out, err = run(capsys, *argv, "--verbose")
    assert rc == 0, err
    body = api.seen[0]["body"]
    assert api.seen[0]["path"] == "/v1/search/text"
    assert body == {
        "text": "a red car",
        "k": 3,
        "prefix": "cats/",
        "since": "2026-01-01T00:00:00+00:00",
        "until": "2026-01-31T23:59:59.999000+00:00",  # a date is the whole UTC day, as on the dashboard
    }
    assert out.startswith('1 neighbours of "a red car" (via the API at http://127.0.0.1:')
    assert "0.3100  s3://images/cats/1.jpg" in out and "of which the API 3 ms" in err
    rc, out, _ = run(capsys, "--text", "a red car", "--json")
    assert rc == 0 and json.loads(out)[0]["key"] == "cats/1.jpg"
    assert api.seen[1]["body"] == {"text": "a red car", "k": 10, "prefix": "", "since": None, "until": None}


def test_image_filters_go_to_the_api_as_query_parameters(api: type[TextApi], tmp_path: Path, capsys: Any) -> None:
    from tests.unit.test_search_cli import jpeg

    query = tmp_path / "q.jpg"
    query.write_bytes(jpeg())
    rc, _, err = run(capsys, str(query), "--prefix", "a b/", "--since", "2026-01-02T03:04:05Z")
    assert rc == 0, err
    assert api.seen[0]["path"] == "/v1/search?k=10&prefix=a+b%2F&since=2026-01-02T03%3A04%3A05%2B00%3A00"


@pytest.mark.parametrize(
    ("status", "detail", "said"),
    [
        (422, "text: the text is 80 tokens, over the limit of 77", "the text is 80 tokens, over the limit of 77"),
        (409, images_only("mobilenetv2_100"), images_only("mobilenetv2_100")),
        (422, "prefix: String should have at most 1024 characters", "prefix: String should have at most 1024"),
    ],
    ids=["too-long", "no-text-tower", "bad-parameter"],
)
def test_an_api_refusal_exits_2_with_its_reason(
    api: type[TextApi], status: int, detail: str, said: str, capsys: Any
) -> None:
    api.status, api.doc = status, {"detail": detail}
    rc, out, err = run(capsys, "--text", "red")
    assert rc == 2 and out == ""
    assert err.startswith(f"lookalike: {said}") and err.count("\n") == 1, err


def test_refused_before_any_api_call_or_model_load(api: type[TextApi], capsys: Any) -> None:
    rc, _, err = run(capsys, "--text", "  \t ")
    assert rc == 2 and err == "lookalike: the text is empty: say in words what the images should show\n"
    rc, _, err = run(capsys, "--text", "red", "--since", "2026-02-01", "--until", "2026-01-01")
    assert rc == 2 and "The upload date range is empty" in err
    assert api.seen == []


@pytest.mark.parametrize(
    "argv",
    [[], ["q.jpg", "--text", "red"], ["--text", "red", "--since", "yesterday"]],
    ids=["neither", "both", "bad-date"],
)
def test_argument_mistakes_are_usage_errors(argv: list[str], capsys: Any) -> None:
    with pytest.raises(SystemExit) as info:
        cli.main(["search", *argv])
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert "one of the arguments image --text is required" in err or "not allowed with" in err or "ISO 8601" in err


def fake_searcher(monkeypatch: pytest.MonkeyPatch, text: bool) -> SearchIndex:
    """``lookalike search --local`` gets the real ``Searcher`` over the in-memory model and index."""
    embedder = WordsEmbedder(text)
    index = SearchIndex(embedder.tag, colour_rows())
    monkeypatch.setattr("lookalike.search.Searcher", lambda settings: Searcher(settings, embedder, index=index))  # type: ignore[arg-type]
    return index


def test_here_the_model_searches_with_the_window(monkeypatch: pytest.MonkeyPatch, capsys: Any) -> None:
    index = fake_searcher(monkeypatch, text=True)
    rc, out, err = run(capsys, "--text", "green", "-k", "2", "--prefix", "gr", "--local", "--verbose")
    assert rc == 0, err
    assert out.splitlines()[1:] == ["  1  1.0000  s3://images/green.png", "  2  0.7071  s3://images/green-blue.png"]
    assert index.filters == [Window("gr", bucket="images").expression()]
    assert err.startswith("time: model load") and "embed" in err


def test_here_a_refusal_exits_2(monkeypatch: pytest.MonkeyPatch, capsys: Any) -> None:
    fake_searcher(monkeypatch, text=False)
    rc, out, err = run(capsys, "--text", "green", "--local")
    assert (rc, out, err) == (2, "", f"lookalike: {images_only('mobilenetv2_100')}\n")
    fake_searcher(monkeypatch, text=True)
    rc, _, err = run(capsys, "--text", " ".join(["red"] * CONTEXT), "--local")
    assert rc == 2 and f"is {CONTEXT + 2} tokens;" in err and f"reads at most {CONTEXT - 2} " in err
