"""The dashboard page, driven by Streamlit's AppTest against the real local stack and the real model."""

from __future__ import annotations

import pytest
from streamlit.testing.v1 import AppTest

from tests.conftest import make_settings
from tests.dashboard.sample import APP, JUNK_KEY, png_claiming, use_settings
from tests.helpers import dataset_images, free_port

TIMEOUT = 120


def _app() -> AppTest:
    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    at.run()
    assert not at.exception, at.exception
    return at


def _upload(at: AppTest, name: str, data: bytes, mime: str = "image/jpeg") -> AppTest:
    at.file_uploader(key="upload").set_value((name, data, mime))
    at.run()
    assert not at.exception, at.exception
    return at


def _search_tab(at: AppTest):  # type: ignore[no-untyped-def]
    return at.tabs[0]


def _neighbour_captions(at: AppTest) -> list[str]:
    """Captions of the result grid's thumbnails (the first image of the tab is the query)."""
    images = _search_tab(at).get("image")
    return [c for img in images[1:] for c in img.captions]


def _scores(at: AppTest) -> list[float]:
    return [float(m.value.split("score ", 1)[1].rstrip("*")) for m in _search_tab(at).markdown if "· score " in m.value]


# ---------------------------------------------------------------- nothing running
def test_unreachable_stack_gets_a_banner_naming_every_part_and_search_says_why(monkeypatch: pytest.MonkeyPatch) -> None:
    dead = {
        "s3_endpoint": f"http://127.0.0.1:{free_port()}",
        "kafka_bootstrap": f"127.0.0.1:{free_port()}",
        "milvus_uri": f"http://127.0.0.1:{free_port()}",
    }
    use_settings(monkeypatch, make_settings(dead))
    at = _app()
    banner = at.error[0].value
    for part in ("S3 object store", "Kafka event bus", "Milvus vector index"):
        assert part in banner
    assert dead["milvus_uri"] in banner

    _upload(at, "query.jpg", dataset_images(1)[0].read_bytes())
    warnings = [w.value for w in _search_tab(at).warning]
    assert any("Milvus vector index is not reachable" in w for w in warnings), warnings
    # the query is still shown, so the user sees what they asked with
    assert _search_tab(at).get("image")[0].captions == ["query.jpg"]


@pytest.mark.integration
def test_banner_names_only_the_part_that_is_down(servers: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> None:
    settings = make_settings(servers, milvus_uri=f"http://127.0.0.1:{free_port()}")
    use_settings(monkeypatch, settings)
    at = _app()
    assert len(at.error) == 1
    banner = at.error[0].value
    assert "Milvus vector index" in banner and settings.milvus_uri in banner
    assert "S3 object store" not in banner and "Kafka event bus" not in banner
    live = [w.value for w in at.tabs[1].warning]
    assert live == ["Milvus vector index: unreachable"]


# ---------------------------------------------------------------- search
@pytest.mark.integration
def test_search_by_upload_shows_query_time_and_the_true_neighbours(indexed, monkeypatch):  # type: ignore[no-untyped-def]
    from lookalike.search import Searcher

    pipeline, sample = indexed
    use_settings(monkeypatch, pipeline.settings)
    key = next(k for k in sample.keys if k.startswith("banana/"))
    data = sample.path(key).read_bytes()

    at = _app()
    assert not at.error
    at.slider(key="k").set_value(6)
    _upload(at, "my banana.jpg", data)

    searcher = Searcher(pipeline.settings, embedder=pipeline.embedder)
    try:
        want = searcher.search_bytes(data, k=6).neighbours
    finally:
        searcher.close()
    assert _search_tab(at).get("image")[0].captions == ["my banana.jpg"]
    assert _neighbour_captions(at) == [n.key for n in want]
    assert _scores(at) == pytest.approx([n.score for n in want], abs=1e-4)
    assert _neighbour_captions(at)[0] == key and _scores(at)[0] == pytest.approx(1.0, abs=1e-3)
    assert any(m.value.startswith("**Query time: ") for m in _search_tab(at).markdown)
    # the sample has five bananas: the nearest ones are bananas
    assert [c.split("/")[0] for c in _neighbour_captions(at)[:4]].count("banana") >= 3


@pytest.mark.integration
def test_bad_queries_get_a_friendly_message_never_a_trace(indexed, monkeypatch):  # type: ignore[no-untyped-def]
    pipeline, sample = indexed
    use_settings(monkeypatch, pipeline.settings)
    jpeg = next(iter(sample.keys.values())).read_bytes()
    cases = [
        ("notes.txt", b"just some text", "text/plain", "not an image the dashboard can read"),
        ("empty.jpg", b"", "image/jpeg", "empty"),
        ("cut.jpg", jpeg[: len(jpeg) // 3], "image/jpeg", "corrupt or truncated"),
        ("huge.png", png_claiming(30_000, 30_000), "image/png", "too large"),
    ]
    at = _app()
    for name, data, mime, phrase in cases:
        _upload(at, name, data, mime)
        warnings = [w.value for w in _search_tab(at).warning]
        assert len(warnings) == 1 and phrase in warnings[0], (name, warnings)
        assert "Traceback" not in warnings[0]
        assert not at.exception
        assert not _scores(at)

    # and a file over the byte limit is refused before it is decoded
    monkeypatch.setenv("LOOKALIKE_MAX_OBJECT_BYTES", str(len(jpeg) - 1))
    at = _app()
    _upload(at, "big.jpg", jpeg)
    assert "queries are limited to" in _search_tab(at).warning[0].value


@pytest.mark.integration
def test_more_like_this_and_the_bucket_picker_search_from_an_object(indexed, monkeypatch):  # type: ignore[no-untyped-def]
    pipeline, sample = indexed
    use_settings(monkeypatch, pipeline.settings)
    bucket = pipeline.settings.bucket
    key = next(k for k in sample.keys if k.startswith("ambulance/"))
    at = _app()
    _upload(at, "query.jpg", sample.path(key).read_bytes())
    second = _neighbour_captions(at)[1]

    at.button(key=f"more:{bucket}/{second}").click()
    at.run()
    assert not at.exception
    assert _search_tab(at).get("image")[0].captions == [f"s3://{bucket}/{second}"]
    shown = _neighbour_captions(at)
    assert shown and second not in shown  # the object itself is left out of "more like this"

    at.selectbox(key="pick").set_value(key)
    at.button(key="pick_search").click()
    at.run()
    assert _search_tab(at).get("image")[0].captions == [f"s3://{bucket}/{key}"]
    assert key not in _neighbour_captions(at)
    assert _neighbour_captions(at)[0].startswith("ambulance/")


# ---------------------------------------------------------------- live index
@pytest.mark.integration
def test_live_panel_shows_vectors_lag_latest_and_dead_letters(indexed, monkeypatch):  # type: ignore[no-untyped-def]
    pipeline, sample = indexed
    use_settings(monkeypatch, pipeline.settings)
    at = _app()
    live = at.tabs[1]
    assert not live.warning
    metrics = {m.label: m.value for m in live.metric}
    assert metrics["Vectors indexed"] == str(len(sample.keys))
    assert metrics["Consumer lag"] == "0"  # the worker has committed everything it read
    assert float(metrics["Ingest rate (last minute)"].split()[0]) >= 0
    lag, dead = live.table[0].value, live.table[1].value
    assert list(lag["partition"]) == list(range(pipeline.settings.partitions))
    assert list(lag["lag"]) == [0] * pipeline.settings.partitions
    junk = dead[dead["key"].str.endswith(JUNK_KEY)]
    assert len(junk) == 1 and "not an image" in junk.iloc[0]["reason"]
    latest = [c.split("\n")[0].strip() for c in (cap.value for cap in live.caption) if "ago" in c]
    assert len(latest) == 8 and set(latest) <= set(sample.keys)
    assert len(live.get("image")) == 8


# ---------------------------------------------------------------- filters, duplicates, badge
@pytest.mark.integration
def test_search_filters_by_key_prefix_and_upload_date(indexed, monkeypatch):  # type: ignore[no-untyped-def]
    from datetime import date, timedelta

    pipeline, sample = indexed
    use_settings(monkeypatch, pipeline.settings)
    key = next(k for k in sample.keys if k.startswith("banana/"))
    at = _app()
    at.text_input(key="f_prefix").input("ambulance/")
    at.run()
    _upload(at, "my banana.jpg", sample.path(key).read_bytes())
    shown = _neighbour_captions(at)
    assert len(shown) == 5 and all(c.startswith("ambulance/") for c in shown), shown  # all five, nothing else
    assert any("Only keys under `ambulance/`" in c.value for c in _search_tab(at).caption)

    at.text_input(key="f_prefix").input("")
    at.date_input(key="f_since").set_value(date.today() + timedelta(days=2))
    at.run()
    assert not _neighbour_captions(at)
    assert any("Nothing indexed matches the filter" in i.value for i in _search_tab(at).info)

    at.date_input(key="f_until").set_value(date.today() - timedelta(days=2))
    at.run()
    assert "The upload date range is empty" in _search_tab(at).warning[0].value


def _groups(at: AppTest) -> list[list[str]]:
    """Keys shown in each group of the Duplicates tab, in order."""
    tab = at.tabs[2]
    images = [c for img in tab.get("image") for c in img.captions]
    sizes = [
        int(md.value.split("· ", 1)[1].split(" images", 1)[0]) for md in tab.markdown if md.value.startswith("**Group ")
    ]
    out: list[list[str]] = []
    start = 0
    for n in sizes:
        out.append(images[start : start + n])
        start += n
    assert start == len(images), (sizes, images)
    return out


@pytest.mark.integration
def test_duplicates_tab_shows_groups_threshold_prefix_and_pages(duplicated, monkeypatch):  # type: ignore[no-untyped-def]
    pipeline, sample = duplicated
    use_settings(monkeypatch, pipeline.settings)
    at = _app()
    tab = at.tabs[2]
    assert at.slider(key="dup_threshold").value == pytest.approx(pipeline.settings.duplicate_threshold)
    assert _groups(at) == sample.groups()
    captions = [c.value for c in tab.caption]
    for original in sample.copies.values():
        assert f"copy of {original}" in captions
    assert "Page 1" in captions

    at.text_input(key="dup_prefix").input("brain_coral/")
    at.run()
    assert _groups(at) == [g for g in sample.groups() if g[0].startswith("brain_coral/")]

    at.text_input(key="dup_prefix").input("")
    at.selectbox(key="dup_limit").set_value(1)
    at.run()
    assert _groups(at) == sample.groups()[:1]
    at.button(key="dup_next").click()
    at.run()
    assert _groups(at) == sample.groups()[1:2] and "Page 2" in [c.value for c in at.tabs[2].caption]
    assert not [b for b in at.tabs[2].button if b.key == "dup_next"], "the last page has no Next"
    at.button(key="dup_prev").click()
    at.run()
    assert _groups(at) == sample.groups()[:1]

    at.slider(key="dup_threshold").set_value(1.0)
    at.run()
    assert _groups(at) == []
    assert any("No near-duplicates at this threshold" in i.value for i in at.tabs[2].info)


@pytest.mark.integration
def test_a_search_result_that_is_a_known_duplicate_has_a_badge(duplicated, monkeypatch):  # type: ignore[no-untyped-def]
    pipeline, sample = duplicated
    use_settings(monkeypatch, pipeline.settings)
    copy, original = next(iter(sample.copies.items()))
    at = _app()
    _upload(at, "original.jpg", sample.keys[original])
    shown = _neighbour_captions(at)
    assert shown[:2] == [original, copy], shown
    badges = [m.value for m in _search_tab(at).markdown if "duplicate of" in m.value]
    # one badge per marked copy among the results, in result order, naming its original; none elsewhere
    want = [f"duplicate of {sample.copies[k]}]" for k in shown if k in sample.copies]
    assert len(want) == len(sample.copies) and [b.split(": ", 1)[1] for b in badges] == want, badges
