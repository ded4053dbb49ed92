"""dashboard.query: query checks, friendly messages, thumbnails, and a search on the real stack."""

from __future__ import annotations

import io

import pytest
from PIL import Image

from dashboard import query
from dashboard.query import QuerySource
from lookalike.errors import ModelMismatch, NotIndexed, Unavailable
from lookalike.imaging import BadImage, thumbnail_bytes
from lookalike.search import Searcher
from tests.dashboard.sample import png_claiming
from tests.helpers import dataset_images


def _jpeg(size: tuple[int, int]) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, (200, 30, 30)).save(out, format="JPEG")
    return out.getvalue()


def _never() -> Searcher:
    raise AssertionError("a refused query must not reach the index")


@pytest.mark.parametrize(
    ("data", "phrase"),
    [
        (b"", "empty"),
        (b"%PDF-1.7 not an image", "not an image the dashboard can read"),
        (_jpeg((300, 200))[:200], "corrupt or truncated"),
        (png_claiming(30_000, 30_000), "too large"),
    ],
)
def test_bad_files_are_refused_with_a_sentence_before_the_search(data: bytes, phrase: str) -> None:
    out = query.run_query(_never, QuerySource.upload("q", "id"), lambda: data, k=5, max_bytes=10**6)
    assert not out.ok and out.result is None
    assert out.error is not None and phrase in out.error
    assert not out.transient


def test_pixel_limit_of_the_settings_applies() -> None:
    data = _jpeg((400, 300))
    out = query.run_query(_never, QuerySource.upload("q", "id"), lambda: data, 5, 10**6, max_pixels=100_000)
    assert out.error is not None and "400x300" in out.error and "too large" in out.error


def test_files_over_the_byte_limit_are_refused_unread() -> None:
    data = _jpeg((64, 64))
    out = query.run_query(_never, QuerySource.upload("q", "id"), lambda: data, 5, max_bytes=len(data) - 1)
    assert out.error is not None and "queries are limited to" in out.error
    assert out.preview is None


def test_an_outage_while_the_searcher_is_built_is_reported_with_the_query_preview() -> None:
    def down() -> Searcher:
        raise Unavailable("milvus", "connection refused")

    out = query.run_query(down, QuerySource.upload("q", "id"), lambda: _jpeg((500, 250)), 5, 10**6)
    assert out.error == (
        "Search is unavailable right now: the Milvus vector index is not reachable. Try again once it is back."
    )
    assert out.transient and out.preview is not None
    assert Image.open(io.BytesIO(out.preview)).size == (query.PREVIEW_PX, query.PREVIEW_PX // 2)


def test_friendly_errors_name_the_case() -> None:
    assert "nothing has been indexed yet" in query.friendly_error(NotIndexed("collection 'c' does not exist yet"))
    assert "cannot be searched with this model" in query.friendly_error(ModelMismatch("holds vectors of model x"))
    assert "S3 object store" in query.friendly_error(Unavailable("s3", "refused"))
    assert query.friendly_error(BadImage("zero-byte object")).startswith("That file is empty")
    unexpected = query.friendly_error(KeyError("boom"))
    assert "KeyError" in unexpected and "Traceback" not in unexpected


def test_object_sources_exclude_themselves_uploads_do_not() -> None:
    assert QuerySource.object("b", "a/x.jpg").exclude_id == "b/a/x.jpg"
    assert QuerySource.object("b", "a/x.jpg").name == "s3://b/a/x.jpg"
    assert QuerySource.upload("x.jpg", "f1").exclude_id is None
    assert QuerySource.upload("x.jpg", "f1") != QuerySource.upload("x.jpg", "f2")


def test_thumbnails_are_small_jpegs_square_for_the_grid() -> None:
    data = dataset_images(1)[0].read_bytes()
    fitted = Image.open(io.BytesIO(thumbnail_bytes(data, 128)))
    square = Image.open(io.BytesIO(thumbnail_bytes(data, 128, square=True)))
    assert fitted.format == square.format == "JPEG"
    assert max(fitted.size) == 128 and min(fitted.size) < 128
    assert square.size == (128, 128)


def test_formatting() -> None:
    assert query.format_size(512) == "512 B"
    assert query.format_size(164_800) == "160.9 KB"
    assert query.format_size(3 * 1024 * 1024) == "3.0 MB"
    assert query.format_time(0) == "—"
    assert query.format_time(1_700_000_000_000) == "2023-11-14 22:13:20 UTC"
    assert query.format_age(1_000, 31_000) == "30 s ago"
    assert query.format_age(1_000, 1_000 + 5 * 60_000) == "5 min ago"


# ---------------------------------------------------------------- on the real stack
@pytest.mark.integration
def test_search_from_a_bucket_object_and_thumbnails_from_s3(indexed) -> None:  # type: ignore[no-untyped-def]
    pipeline, sample = indexed
    s = pipeline.settings
    store = pipeline.store
    key = next(k for k in sample.keys if k.startswith("basketball/"))
    searcher = Searcher(s, embedder=pipeline.embedder)
    try:
        source = QuerySource.object(s.bucket, key)
        out = query.run_query(lambda: searcher, source, lambda: query.read_object(store, s.bucket, key), 4, 10**8)
        assert out.ok and out.result is not None
        keys = [n.key for n in out.result.neighbours]
        assert len(keys) == 4 and key not in keys
        assert out.total_ms >= out.result.embed_ms

        gone = QuerySource.object(s.bucket, "no/such.jpg")
        missing = query.run_query(
            lambda: searcher, gone, lambda: query.read_object(store, s.bucket, "no/such.jpg"), 4, 10**8
        )
        assert missing.error == f"s3://{s.bucket}/no/such.jpg is no longer in the bucket."
    finally:
        searcher.close()

    thumb = query.fetch_thumbnail(store, s.bucket, key, px=96)
    assert thumb is not None and Image.open(io.BytesIO(thumb)).size == (96, 96)
    assert query.fetch_thumbnail(store, s.bucket, "no/such.jpg") is None
    assert query.list_keys(store, s.bucket, prefix="basketball/") == sorted(
        k for k in sample.keys if k.startswith("basketball/")
    )
    assert len(query.list_keys(store, s.bucket, limit=3)) == 3


# ---------------------------------------------------------------- the search window (prefix, upload dates)
def test_window_filter_is_a_key_range_and_whole_utc_days() -> None:
    from datetime import date, datetime, timezone

    from lookalike.window import Window

    assert Window.days().expression() == "" and not Window.days().active
    w = Window.days("a/", date(2026, 3, 1), date(2026, 3, 2), bucket="images")
    start = int(datetime(2026, 3, 1, tzinfo=timezone.utc).timestamp() * 1000)
    end = int(datetime(2026, 3, 3, tzinfo=timezone.utc).timestamp() * 1000) - 1
    assert w.expression() == (
        f'(id >= "images/a/" && id < "images/a0") && (event_time >= {start} && event_time <= {end})'
    )
    assert Window.days(until=date(2026, 3, 2)).expression() == f"(event_time <= {end})"
    assert Window(bucket="b").expression() == '(id >= "b/" && id < "b0")' and not Window(bucket="b").active
    assert w.expression("images/a/x") == w.expression() + ' && (id != "images/a/x")'
    assert w.active and w.problem() is None
    assert w.describe() == "Only keys under `a/` · uploaded 2026-03-01 to 2026-03-02 (UTC)"
    backwards = Window.days(since=date(2026, 3, 2), until=date(2026, 3, 1))
    assert backwards.problem() == "The upload date range is empty: 2026-03-02 is after 2026-03-01."


@pytest.mark.integration
def test_window_is_applied_in_milvus_and_still_returns_k(indexed) -> None:  # type: ignore[no-untyped-def]
    from datetime import datetime, timedelta, timezone

    from lookalike.window import Window

    pipeline, sample = indexed
    s = pipeline.settings
    key = next(k for k in sample.keys if k.startswith("banana/"))
    data = sample.path(key).read_bytes()
    searcher = Searcher(s, embedder=pipeline.embedder)
    try:

        def search(window: Window, k: int = 4) -> list[str]:
            out = query.run_query(
                lambda: searcher,
                QuerySource.upload("q", "id"),
                lambda: data,
                k,
                10**8,
                window=window,
            )
            assert out.ok, out.error
            return [n.key for n in out.result.neighbours]  # type: ignore[union-attr]

        everything = searcher.search_bytes(data, k=50).neighbours
        ambulances = search(Window.days("ambulance/", bucket=s.bucket))
        assert len(ambulances) == 4 and all(k.startswith("ambulance/") for k in ambulances)
        assert search(Window.days("ambulance/", bucket=s.bucket), k=50) == [
            n.key for n in everything if n.key.startswith("ambulance/")
        ]
        assert search(Window.days("no-such-prefix/", bucket=s.bucket), k=5) == []
        # upload days of the sample (UTC), from the rows themselves: no dependence on the clock
        days = sorted({datetime.fromtimestamp(n.event_time / 1000, tz=timezone.utc).date() for n in everything})
        first, last = days[0], days[-1]
        assert search(Window.days(since=first, until=last), k=50) == [n.key for n in everything]
        assert search(Window.days(since=last + timedelta(days=1))) == []
        assert search(Window.days(until=first - timedelta(days=1))) == []
        bananas = search(Window.days("banana/", since=first, bucket=s.bucket), k=50)
        assert bananas[0] == key and bananas == [n.key for n in everything if n.key.startswith("banana/")]
    finally:
        searcher.close()
