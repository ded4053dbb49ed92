"""``lookalike search IMAGE`` (or ``--text "..."``): the query checked first, then the running API,
else the model here.

Loading the model takes about five seconds on a CPU, while the stack's query API, which holds it
loaded, answers the same search in about 0.1 s. So the command asks the API when one answers at
``LOOKALIKE_API_HOST:PORT`` (with ``LOOKALIKE_API_TOKEN``), and loads the model in-process only
when none does (``--local`` forces that). Before either, the file is read and decoded here: a
folder, a missing file or a text file gets one line at once, never a traceback or a model load.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
import urllib.error
import urllib.request
import uuid
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

from lookalike.errors import BadText, LookalikeError, NoTextTower, NotIndexed, Unavailable
from lookalike.net import connects
from lookalike.process import HelpFormatter, command_name
from lookalike.settings import Settings
from lookalike.window import Window

if TYPE_CHECKING:  # the command's import stays light: the model's modules load only when it runs
    from lookalike.search import Neighbour, Searcher

log = logging.getLogger(__name__)

CHECK_SIDE = 256  # the query is decoded this small to check it (JPEG draft mode): milliseconds
API_TIMEOUT_S = 60.0  # the API's first search after a reindex may load the new model


class QueryError(LookalikeError):
    """The query file cannot be searched with; one line says why."""


class Refused(LookalikeError):
    """The query as asked can never be answered (a filter that holds nothing, a parameter the API
    refuses): the user's to change, so exit code 2, as for a text the model refuses."""


USAGE_ERRORS = (BadText, NoTextTower, Refused)  # exit code 2: the command line must change


@dataclass(frozen=True)
class Query:
    """One search: an image's bytes or a text, and which indexed objects may come back."""

    name: str  # the image's path, or the text quoted: for the summary line
    window: Window
    data: bytes = b""
    text: str | None = None


@dataclass(frozen=True)
class Answer:
    neighbours: list[Neighbour]
    via: str  # "the API at URL" or "the model here"
    timing: str  # for --verbose
    summary: str  # the parenthesis after "N neighbours of IMAGE"


def read_query(name: str, settings: Settings) -> bytes:
    """The query's bytes once they decode as an image; ``QueryError`` naming the file otherwise."""
    from lookalike.imaging import BadImage, decode_image

    path = Path(name)
    if not path.exists():
        raise QueryError(f"{name}: no such file")
    if path.is_dir():
        raise QueryError(f"{name} is a folder: give one image file (to index a folder: `{command_name()} upload`)")
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise QueryError(f"{name}: cannot read it ({exc.strerror or exc})") from None
    if len(data) > settings.max_object_bytes:
        raise QueryError(f"{name} is {len(data)} bytes, over LOOKALIKE_MAX_OBJECT_BYTES={settings.max_object_bytes}")
    try:
        decode_image(data, max_pixels=settings.max_image_pixels, min_side=CHECK_SIDE)
    except BadImage as exc:
        raise QueryError(f"{name} is not a usable image: {exc}") from None
    return data


# ---------------------------------------------------------------- through the API
def _multipart(field: str, filename: str, data: bytes) -> tuple[bytes, str]:
    boundary = uuid.uuid4().hex
    safe = filename.replace('"', "_").replace("\r", "_").replace("\n", "_")
    head = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="{field}"; filename="{safe}"\r\n'
        "Content-Type: application/octet-stream\r\n\r\n"
    ).encode()
    return head + data + f"\r\n--{boundary}--\r\n".encode(), f"multipart/form-data; boundary={boundary}"


def _detail(err: urllib.error.HTTPError) -> str:
    try:
        return str(json.loads(err.read() or b"{}").get("detail") or err.reason)
    except ValueError:
        return str(err.reason)


def from_result(doc: dict[str, Any]) -> Neighbour:
    """A neighbour from the API's ``Result`` (it carries no ``indexed_at`` or duplicate marks)."""
    from lookalike.search import Neighbour

    uploaded = doc.get("uploaded_at")
    when = int(datetime.fromisoformat(uploaded.replace("Z", "+00:00")).timestamp() * 1000) if uploaded else 0
    bucket, key = str(doc["bucket"]), str(doc["key"])
    return Neighbour(
        id=f"{bucket}/{key}",
        bucket=bucket,
        key=key,
        score=float(doc["score"]),
        etag=str(doc.get("etag", "")),
        size=int(doc.get("size", 0)),
        content_type=str(doc.get("content_type", "")),
        event_time=when,
        indexed_at=0,
    )


def _api_request(url: str, token: str, query: Query, k: int) -> urllib.request.Request:
    """``POST /v1/search/text`` (JSON) for a text, ``POST /v1/search`` (multipart) for an image."""
    w = query.window
    since, until = (m.isoformat() if m is not None else None for m in (w.since, w.until))
    headers = {"Authorization": f"Bearer {token}"}
    if query.text is not None:
        doc = {"text": query.text, "k": k, "prefix": w.prefix, "since": since, "until": until}
        headers["Content-Type"] = "application/json"
        return urllib.request.Request(f"{url}/v1/search/text", json.dumps(doc).encode(), headers, method="POST")
    params = {"k": k, "prefix": w.prefix, "since": since, "until": until}
    body, headers["Content-Type"] = _multipart("image", Path(query.name).name, query.data)
    path = f"/v1/search?{urlencode({n: v for n, v in params.items() if v})}"
    return urllib.request.Request(f"{url}{path}", data=body, headers=headers, method="POST")


def _refusal(query: Query, code: int, detail: str) -> LookalikeError | None:
    """What an API refusal means here: the same error a search here would raise, or None (search here)."""
    if query.text is not None and code == 422:
        return BadText(detail.removeprefix("text: "))  # the field's name is the API's, not the user's
    if query.text is not None and code == 409:
        return NoTextTower(detail)
    if query.text is None and code in (400, 413):
        return QueryError(f"{query.name}: {detail.removeprefix('image: ')}")
    if code == 422:
        return Refused(detail)
    return None


def api_search(settings: Settings, query: Query, k: int) -> Answer | None:
    """The running API's answer; None when no API answers or it cannot serve (then search here).
    A query the API refuses (an unusable image, text its model cannot read) raises: searching
    here would refuse it too."""
    host = "127.0.0.1" if settings.api_host in ("", "0.0.0.0") else settings.api_host
    url = f"http://{host}:{settings.api_port}"
    if not connects(host, settings.api_port, timeout=0.5):
        return None
    request = _api_request(url, settings.api_token.get_secret_value(), query, k)
    start = time.perf_counter()
    try:
        with urllib.request.urlopen(request, timeout=API_TIMEOUT_S) as response:
            doc = json.load(response)
    except urllib.error.HTTPError as err:
        detail = _detail(err)
        refused = _refusal(query, err.code, detail)
        if refused is not None:
            raise refused from None
        why = "refused LOOKALIKE_API_TOKEN" if err.code == 401 else f"answered {err.code} ({detail})"
        print(f"lookalike: the API at {url} {why}; loading the model here instead", file=sys.stderr)
        return None
    except (OSError, ValueError) as exc:
        print(f"lookalike: the API at {url} did not answer ({exc}); loading the model here", file=sys.stderr)
        return None
    took = (time.perf_counter() - start) * 1000
    server = float(doc.get("took_ms", 0.0))
    return Answer(
        [from_result(r) for r in doc.get("results", [])],
        via=f"the API at {url}",
        timing=f"time: round trip {took:.0f} ms, of which the API {server:.0f} ms (via the API at {url})",
        summary=f"via the API at {url}, {took:.0f} ms",
    )


# ---------------------------------------------------------------- with the model here
def open_searcher(settings: Settings) -> Searcher:
    """The collection's searcher, its model loaded; outages said as what to do."""
    from lookalike.search import Searcher

    la = command_name()
    try:
        return Searcher(settings)
    except Unavailable as exc:
        lines = [f"{exc}: is the stack running? (`{la} stack status`; start it with `{la} stack up`)"]
        if settings.weights is None and settings.pretrained:
            from lookalike.weights import missing_weights

            missing = missing_weights(settings.model)
            lines += [missing] if missing else []
        raise QueryError("\nlookalike: ".join(lines)) from None
    except NotIndexed:
        raise QueryError(f"nothing is indexed yet: upload images with `{la} upload DIR`") from None


def local_search(settings: Settings, query: Query, k: int) -> Answer:
    """Load the collection's model in this process and search."""
    searcher = open_searcher(settings)
    try:
        if query.text is not None:
            result = searcher.search_text(query.text, k=k, window=query.window)
        else:
            result = searcher.search_bytes(query.data, k=k, window=query.window)
    finally:
        searcher.close()
    return Answer(
        result.neighbours,
        via="the model here",
        timing=searcher.describe_timings(result),
        summary=f"embed {result.embed_ms:.0f} ms, search {result.search_ms:.0f} ms",
    )


# ---------------------------------------------------------------- the command
def moment(value: str) -> datetime | date:
    """``--since``/``--until``: an ISO 8601 date (a whole UTC day) or date-time (no zone: UTC)."""
    try:
        return date.fromisoformat(value) if len(value) == 10 else datetime.fromisoformat(value)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{value!r} is not an ISO 8601 date or date-time (2026-12-01, 2026-12-01T09:30:00Z)"
        ) from None


def window_of(args: argparse.Namespace, bucket: str) -> Window:
    """The filter the options ask for; a date is a whole UTC day, as the dashboard's pickers take it.
    A prefix names keys of the configured bucket (the API's, and the one ``upload`` fills)."""
    days = Window.days(
        since=args.since if type(args.since) is date else None, until=args.until if type(args.until) is date else None
    )
    since = args.since if isinstance(args.since, datetime) else days.since
    until = args.until if isinstance(args.until, datetime) else days.until
    window = Window(args.prefix, since, until, bucket=bucket if args.prefix else "")
    problem = window.problem()
    if problem is not None:
        raise Refused(problem)
    return window


def make_query(args: argparse.Namespace, settings: Settings) -> Query:
    """The query the arguments name, checked before any model load or API call."""
    window = window_of(args, settings.bucket)
    if args.text is not None:
        from lookalike.text_search import refuse_blank

        refuse_blank(args.text)
        return Query(f'"{args.text}"', window, text=args.text)
    return Query(args.image, window, data=read_query(args.image, settings))


def cmd_search(args: argparse.Namespace, settings: Settings) -> int:
    try:
        query = make_query(args, settings)
        answer = None if args.local else api_search(settings, query, args.k)
        if answer is None:
            answer = local_search(settings, query, args.k)
    except USAGE_ERRORS as exc:
        print(f"lookalike: {exc}", file=sys.stderr)
        return 2
    if args.verbose:
        print(answer.timing, file=sys.stderr)
    if args.json:
        print(json.dumps([n.to_dict() for n in answer.neighbours]))
        return 0
    print(f"{len(answer.neighbours)} neighbours of {query.name} ({answer.summary})")
    for rank, n in enumerate(answer.neighbours, 1):
        print(f"{rank:>3}  {n.score:.4f}  s3://{n.bucket}/{n.key}")
    return 0


def register(sub: argparse._SubParsersAction[Any]) -> None:
    """Add ``search``."""
    p = sub.add_parser(
        "search",
        help="nearest neighbours of an image, or of words on a CLIP index (through the running API, else here)",
        description="Print IMAGE's nearest neighbours in the index, best first; with --text, the objects that "
        "best match a description in words (an index made by a CLIP model, docs/text-search.md). When the "
        "stack's query API answers (LOOKALIKE_API_HOST:LOOKALIKE_API_PORT, token LOOKALIKE_API_TOKEN) it asks the "
        "API, which holds the model loaded: about 0.1 s. Otherwise it loads the collection's model here: about "
        "5 s on a CPU. Through the API, --json leaves indexed_at and the duplicate marks empty (use --local). "
        "Exit code 2: a query that can never be answered as asked (text the model refuses, an index whose "
        "model embeds images only, a date range that holds nothing).",
        formatter_class=HelpFormatter,
    )
    what = p.add_mutually_exclusive_group(required=True)
    what.add_argument("image", nargs="?", help="path of the query image")
    what.add_argument(
        "--text",
        help="search by words instead of an image (a CLIP index: docs/text-search.md; default: search by IMAGE)",
    )
    p.add_argument("-k", type=int, default=10, help="how many neighbours")
    p.add_argument("--prefix", default="", help="only keys of the configured bucket that start with this")
    p.add_argument(
        "--since", type=moment, help="uploaded at or after: ISO 8601 date (UTC day) or date-time (default: no limit)"
    )
    p.add_argument(
        "--until", type=moment, help="uploaded at or before: ISO 8601 date (UTC day) or date-time (default: no limit)"
    )
    p.add_argument("--json", action="store_true", help="print [{key, score, ...}] best first")
    p.add_argument("--local", action="store_true", help="load the model here even when the API answers")
    p.add_argument(
        "-v", "--verbose", action="store_true", help="say on stderr where the time went (load, decode, embed, search)"
    )
    p.set_defaults(func=cmd_search)
