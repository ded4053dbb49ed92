"""The query API against the real local stack (SeaweedFS, Tansu, Milvus Lite, worker), through httpx.

Every route, the token, k's limits, the prefix and upload-time filters (they must actually filter),
"similar" leaving the object out, the 404s, bad input as one-line 4xx, and the operations routes.
"""

from __future__ import annotations

import io
from datetime import datetime, timedelta, timezone
from typing import Any
from urllib.parse import quote

import pytest
from PIL import Image
from prometheus_client.parser import text_string_to_metric_families

from tests.api.conftest import ODD_KEY, TOKEN, Indexed
from tests.dashboard.sample import JUNK_KEY, png_claiming

pytestmark = pytest.mark.integration


def path_of(key: str, suffix: str = "") -> str:
    return f"/v1/objects/{quote(key, safe='/')}{suffix}"


def search(client: Any, data: bytes, name: str = "q.jpg", **params: Any) -> Any:
    return client.post("/v1/search", params=params, files={"image": (name, data, "image/jpeg")})


def keys_of(response: Any) -> list[str]:
    assert response.status_code == 200, response.text
    return [r["key"] for r in response.json()["results"]]


def one_line_problem(response: Any, status: int) -> str:
    assert response.status_code == status, (response.status_code, response.text)
    detail = response.json()["detail"]
    assert isinstance(detail, str) and detail and "\n" not in detail and "Traceback" not in detail
    return detail


def any_key(indexed: Indexed, cls: str = "banana") -> str:
    return sorted(k for k in indexed.keys if k.startswith(f"{cls}/"))[0]


# ---------------------------------------------------------------- search
def test_search_finds_the_image_first_best_first_with_every_field(client: Any, indexed: Indexed) -> None:
    from lookalike.search import Searcher

    key = any_key(indexed)
    data = indexed.sample.path(key).read_bytes()
    response = search(client, data, k=5)
    body = response.json()
    assert response.status_code == 200, response.text
    results = body["results"]
    assert results[0]["key"] == key and len(results) == 5
    assert results[0]["score"] == pytest.approx(1.0, abs=1e-3)
    assert [r["score"] for r in results] == sorted((r["score"] for r in results), reverse=True)
    assert body["took_ms"] > 0
    stored = indexed.pipeline.store.stat(indexed.settings.bucket, key)
    first = results[0]
    assert set(first) == {"key", "bucket", "score", "etag", "size", "content_type", "uploaded_at"}
    assert (first["bucket"], first["etag"], first["size"]) == (indexed.settings.bucket, stored.etag, stored.size)
    assert first["content_type"] == "image/jpeg"
    uploaded = datetime.fromisoformat(first["uploaded_at"].replace("Z", "+00:00"))
    assert abs((uploaded - datetime.now(timezone.utc)).total_seconds()) < 3600
    searcher = Searcher(indexed.settings, indexed.pipeline.embedder)  # what `lookalike search` answers
    try:
        expected = [n.key for n in searcher.search_bytes(data, k=5).neighbours]
    finally:
        searcher.close()
    assert [r["key"] for r in results] == expected


def test_k_defaults_to_10_and_is_limited_to_1_to_100(client: Any, indexed: Indexed) -> None:
    data = indexed.sample.path(any_key(indexed)).read_bytes()
    assert len(keys_of(search(client, data))) == 10
    assert len(keys_of(search(client, data, k=1))) == 1
    assert set(keys_of(search(client, data, k=100))) == indexed.keys  # fewer objects than k: all of them
    for bad in (0, -1, 101, "ten"):
        assert one_line_problem(search(client, data, k=bad), 422).startswith("k:")


def test_prefix_keeps_only_keys_under_it_wildcards_and_quotes_taken_literally(client: Any, indexed: Indexed) -> None:
    data = indexed.sample.path(any_key(indexed, "Afghan_hound")).read_bytes()
    for prefix in ("banana/", "Afghan_hound/", "Afghan_", "odd dir/sub folder/ünïcödé ☃ 100%_"):
        expected = {k for k in indexed.keys if k.startswith(prefix)}
        assert expected, prefix
        assert set(keys_of(search(client, data, k=100, prefix=prefix))) == expected, prefix
    for prefix in ("Afghan%", "Afghan_hound/%", "%", "_", 'q"', "back\\slash", "odd dir/sub folder/ünïcödé ☃ 100%_y"):
        assert keys_of(search(client, data, k=100, prefix=prefix)) == [], prefix


def test_since_and_until_filter_by_upload_time(client: Any, indexed: Indexed) -> None:
    index = indexed.pipeline.index()
    try:
        times = {r["id"].split("/", 1)[1]: int(r["event_time"]) for r in index.iter_rows(fields=("event_time",))}
    finally:
        index.close()
    distinct = sorted(set(times.values()))
    assert len(distinct) >= 2, "the sample's uploads should not all share one millisecond"
    cut_ms = distinct[len(distinct) // 2]  # some uploads before, some at or after
    cut = datetime.fromtimestamp(cut_ms / 1000, tz=timezone.utc)
    data = indexed.sample.path(any_key(indexed)).read_bytes()

    since = keys_of(search(client, data, k=100, since=cut.isoformat()))
    assert set(since) == {k for k, t in times.items() if t >= cut_ms}
    until = keys_of(search(client, data, k=100, until=cut.isoformat()))
    assert set(until) == {k for k, t in times.items() if t <= cut_ms}
    naive = cut.replace(tzinfo=None).isoformat()  # no zone: UTC
    assert set(keys_of(search(client, data, k=100, since=naive, until=naive))) == {
        k for k, t in times.items() if t == cut_ms
    }
    later = (cut + timedelta(days=1)).isoformat()
    assert keys_of(search(client, data, since=later)) == []
    assert one_line_problem(search(client, data, since=later, until=cut.isoformat()), 422).startswith("since")
    assert one_line_problem(search(client, data, since="yesterday"), 422).startswith("since")
    assert one_line_problem(search(client, data, until="2026-13-45T99:00:00"), 422).startswith("until")


# ---------------------------------------------------------------- similar
def test_similar_leaves_the_object_out_and_matches_a_search_by_its_bytes(client: Any, indexed: Indexed) -> None:
    for key in (any_key(indexed, "ambulance"), ODD_KEY):
        response = client.get(path_of(key, "/similar"), params={"k": 6})
        similar = keys_of(response)
        assert len(similar) == 6 and key not in similar
        by_bytes = keys_of(search(client, indexed.sample.path(key).read_bytes(), k=7))
        assert by_bytes[0] == key and similar == by_bytes[1:]


def test_similar_k_and_prefix_and_404(client: Any, indexed: Indexed) -> None:
    key = any_key(indexed, "banana")
    within = keys_of(client.get(path_of(key, "/similar"), params={"k": 100, "prefix": "banana/"}))
    assert set(within) == {k for k in indexed.keys if k.startswith("banana/")} - {key}
    assert set(keys_of(client.get(path_of(key, "/similar"), params={"k": 100}))) == indexed.keys - {key}
    assert one_line_problem(client.get(path_of(key, "/similar"), params={"k": 101}), 422).startswith("k:")
    for missing in ("banana/no-such.jpg", JUNK_KEY, ""):
        assert "not indexed" in one_line_problem(client.get(path_of(missing, "/similar")), 404)


# ---------------------------------------------------------------- objects
def test_object_row_with_duplicate_fields_and_404(client: Any, indexed: Indexed) -> None:
    bucket = indexed.settings.bucket
    for key in (any_key(indexed, "basketball"), ODD_KEY):
        response = client.get(path_of(key))
        assert response.status_code == 200, response.text
        row = response.json()
        stored = indexed.pipeline.store.stat(bucket, key)
        assert (row["key"], row["bucket"], row["etag"], row["size"]) == (key, bucket, stored.etag, stored.size)
        assert (row["model"], row["content_type"]) == ("mobilenetv2_100", stored.content_type)
        assert row["duplicate_of"] is None and row["duplicate_score"] is None
        for field in ("uploaded_at", "last_modified", "indexed_at"):
            assert datetime.fromisoformat(row[field].replace("Z", "+00:00")).tzinfo is not None, field
    for missing in ("basketball/no-such.jpg", JUNK_KEY, "basketball"):  # junk: in the bucket, never indexed
        assert "not indexed" in one_line_problem(client.get(path_of(missing)), 404)


def test_thumbnail_is_a_jpeg_within_size(client: Any, indexed: Indexed) -> None:
    for key, size in ((any_key(indexed, "ambulance"), None), (ODD_KEY, 64)):
        response = client.get(path_of(key, "/image"), params={"size": size} if size else {})
        assert response.status_code == 200, response.text
        assert response.headers["content-type"] == "image/jpeg"
        image = Image.open(io.BytesIO(response.content))
        assert image.format == "JPEG" and max(image.size) == (size or 256)
    assert "not in the bucket" in one_line_problem(client.get(path_of("ambulance/no-such.jpg", "/image")), 404)
    assert "cannot be shown" in one_line_problem(client.get(path_of(JUNK_KEY, "/image")), 422)
    for bad in (0, 15, 1025, "big"):
        key = any_key(indexed, "ambulance")
        assert one_line_problem(client.get(path_of(key, "/image"), params={"size": bad}), 422).startswith("size")


# ---------------------------------------------------------------- auth
def test_every_v1_route_needs_the_token(anonymous: Any, indexed: Indexed) -> None:
    key = any_key(indexed)
    data = indexed.sample.path(key).read_bytes()
    calls = [
        lambda h: anonymous.post("/v1/search", files={"image": ("q.jpg", data)}, headers=h),
        lambda h: anonymous.post("/v1/search", files={"image": ("q.txt", b"text")}, headers=h),
        lambda h: anonymous.get(path_of(key, "/similar"), headers=h),
        lambda h: anonymous.get(path_of(key), headers=h),
        lambda h: anonymous.get(path_of(key, "/image"), headers=h),
        lambda h: anonymous.get(path_of("no/such/key"), headers=h),
        lambda h: anonymous.get("/v1/duplicates", headers=h),
        lambda h: anonymous.get("/v1/no-such-route", headers=h),
    ]
    wrong = [
        {},
        {"Authorization": "Bearer wrong-token"},
        {"Authorization": f"Bearer {TOKEN}x"},
        {"Authorization": f"Basic {TOKEN}"},
        {"Authorization": TOKEN},
        {"Authorization": "Bearer "},
    ]
    for call in calls:
        for headers in wrong:
            response = call(headers)
            assert response.status_code == 401, (headers, response.text)
            assert response.headers["www-authenticate"] == "Bearer"
            assert response.json() == {"detail": "missing or wrong bearer token"}
        assert call({"Authorization": f"Bearer {TOKEN}"}).status_code != 401
        assert call({"Authorization": f"bearer  {TOKEN} "}).status_code != 401


# ---------------------------------------------------------------- bad input
def test_bad_uploads_get_one_line_4xx(client: Any, indexed: Indexed) -> None:
    assert one_line_problem(search(client, b"this is text, not a JPEG"), 400).startswith("image: not an image")
    assert one_line_problem(search(client, b""), 400) == "image: the file is empty"
    truncated = indexed.sample.path(any_key(indexed)).read_bytes()[:2000]
    assert "corrupt or truncated" in one_line_problem(search(client, truncated), 400)
    assert "pixel limit" in one_line_problem(search(client, png_claiming(9000, 9000), "big.png"), 413)
    assert "decompression bomb" in one_line_problem(search(client, png_claiming(20000, 20000), "bomb.png"), 413)
    no_file = client.post("/v1/search", files={"picture": ("q.jpg", b"x")})
    assert one_line_problem(no_file, 422) == "image: Field required"
    not_multipart = client.post("/v1/search", content=b"{}", headers={"Content-Type": "application/json"})
    assert one_line_problem(not_multipart, 422).startswith("image")


def test_uploads_over_the_byte_limit_get_413(indexed: Indexed, embedder: object) -> None:
    from fastapi.testclient import TestClient

    from dashboard.api.app import MULTIPART_SLACK, create_app

    limit = 20_000
    settings = indexed.settings.model_copy(update={"max_object_bytes": limit})
    with TestClient(create_app(settings, embedder=embedder)) as small:  # type: ignore[arg-type]
        small.headers["Authorization"] = f"Bearer {TOKEN}"
        just_over = search(small, b"\xff" * (limit + 1))  # read, then refused before decoding
        assert f"limit of {limit}" in one_line_problem(just_over, 413)
        huge = search(small, b"\xff" * (limit + MULTIPART_SLACK + 1))  # refused from Content-Length, unread
        assert "over the limit" in one_line_problem(huge, 413)
        assert search(small, b"\xff" * limit).status_code == 400  # at the limit: decoded (and not an image)


# ---------------------------------------------------------------- operations
def test_openapi_docs_healthz_and_metrics(client: Any, anonymous: Any, indexed: Indexed) -> None:
    doc = anonymous.get("/openapi.json").json()
    assert {"/v1/search", "/v1/objects/{key}/similar", "/v1/objects/{key}/image", "/v1/objects/{key}"} <= set(
        doc["paths"]
    )
    assert doc["components"]["securitySchemes"]["token"] == {
        "type": "http",
        "scheme": "bearer",
        "description": "LOOKALIKE_API_TOKEN",
    }
    docs = anonymous.get("/docs")
    assert docs.status_code == 200 and "swagger" in docs.text.lower()
    health = anonymous.get("/healthz")
    assert health.status_code == 200, health.text
    assert health.json() == {
        "status": "ok",
        "parts": {"s3": {"up": True, "detail": ""}, "milvus": {"up": True, "detail": ""}},
        "model": "mobilenetv2_100",
    }
    assert anonymous.get("/v1/objects/x").status_code == 401
    key = any_key(indexed)
    assert client.get(path_of(key)).status_code == 200
    text = anonymous.get("/metrics").text
    samples = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }
    route = ("route", "/v1/objects/{key:path}")
    for status in ("200", "401"):
        assert samples[("lookalike_api_requests_total", (("method", "GET"), route, ("status", status)))] >= 1
    assert samples[("lookalike_api_request_seconds_count", (("method", "GET"), ("route", "/healthz")))] >= 1
    assert key not in text  # templates, never raw keys
