"""The dashboard's heavy objects, built once per process and keyed by the settings they came from.

Streamlit reruns ``app.py`` on every interaction; these ``st.cache_resource``/``st.cache_data``
factories keep the model, the Milvus, S3 and Kafka clients and the thumbnails across reruns. A
factory that raises is not cached, so the next rerun tries again once the part is back.
"""

from __future__ import annotations

import streamlit as st

from dashboard import duplicates, health, live, query, trends
from lookalike.embedder import TimmEmbedder
from lookalike.errors import Unavailable
from lookalike.index import VectorIndex
from lookalike.migration import read_migration
from lookalike.search import Searcher
from lookalike.settings import Settings
from lookalike.store import ObjectStore


@st.cache_resource(show_spinner="Loading the model…")
def load_embedder(key: str, _settings: Settings) -> TimmEmbedder:
    embedder = TimmEmbedder(_settings)
    embedder.load()
    return embedder


@st.cache_resource(show_spinner=False)
def open_searcher(key: str, _settings: Settings) -> Searcher:
    """Not cached when it fails (no collection yet, Milvus down): the next query tries again."""
    return Searcher(_settings, embedder=load_embedder(key, _settings))


@st.cache_resource(show_spinner=False)
def open_index(key: str, _settings: Settings) -> VectorIndex:
    return VectorIndex(_settings)


@st.cache_resource(show_spinner=False)
def open_duplicate_index(key: str, _settings: Settings) -> VectorIndex:
    """Not cached when it fails (no collection yet, Milvus down): the next page view tries again."""
    return duplicates.open_index(_settings)


@st.cache_resource(show_spinner=False)
def open_store(key: str, _settings: Settings) -> ObjectStore:
    return ObjectStore(_settings)


@st.cache_resource(show_spinner=False)
def open_kafka(key: str, _settings: Settings) -> live.KafkaWatch:
    return live.KafkaWatch(_settings)


@st.cache_data(ttl=live.SHARED_FOR_S, max_entries=16, show_spinner=False)
def live_snapshot(key: str, latest_n: int, _settings: Settings) -> live.LiveSnapshot:
    """One snapshot per dashboard process every few seconds, whatever the number of open tabs.

    Every tab's live panel refreshes on its own timer; without this, ten tabs would ask Milvus and
    Kafka ten times as often. On Milvus Lite the row count walks every row (see docs/scale.md, "How far
    one machine goes"), so the sharing matters most there."""
    return live.snapshot(
        lambda: open_index(key, _settings),
        lambda: open_kafka(key, _settings),
        health.down_parts(health.check_stack(_settings)),
        latest_n=latest_n,
        migration=lambda: read_migration(_settings),
    )


@st.cache_resource(show_spinner=False)
def trend_history(key: str) -> trends.History:
    """The lag of every refresh in the last minutes, shared by every tab of this process: Kafka
    says only the lag now, so its line is drawn from what earlier refreshes saw."""
    return trends.History()


@st.cache_data(max_entries=4000, show_spinner=False)
def thumbnail(key: str, bucket: str, object_key: str, etag: str, _settings: Settings) -> bytes | None:
    """Keyed by etag, so an overwritten object gets a new thumbnail; an S3 outage is not cached."""
    store = open_store(key, _settings)
    return query.fetch_thumbnail(store, bucket, object_key, max_pixels=_settings.max_image_pixels)


@st.cache_data(ttl=30, show_spinner=False)
def bucket_keys(key: str, prefix: str, _settings: Settings) -> list[str]:
    return query.list_keys(open_store(key, _settings), _settings.bucket, prefix)


class Ctx:
    """The settings and their cache key, handed to every ``*_ui`` function."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.key = settings.model_dump_json()

    def thumb(self, bucket: str, object_key: str, etag: str) -> bytes | None:
        try:
            return thumbnail(self.key, bucket, object_key, etag, self.settings)
        except Unavailable:
            return None
