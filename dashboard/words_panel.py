"""The Search tab's "Search by words" box: shown when the index's model has a text tower.

Which model answers is the index's, not the configured one: after ``lookalike reindex --model
open_clip:...`` the ``.env`` may still name the old timm model, and the other way round. So the box
asks the collection's alias target (two cheap Milvus calls, no model load, cached a few seconds
since Streamlit reruns the page on every click). While nothing is indexed, or Milvus cannot say,
the configured model stands in: it is the one the first vectors will come from.

On an index that embeds images only, one line says so and how to move (``lookalike.text_search``).
"""

from __future__ import annotations

import streamlit as st

from dashboard.query import QuerySource
from dashboard.resources import Ctx, open_index
from lookalike.errors import LookalikeError
from lookalike.families import has_text_tower
from lookalike.settings import Settings
from lookalike.text_search import MAX_TEXT_CHARS, images_only
from lookalike.versions import Versions

MODEL_TTL_S = 10  # how long a reindex may go unnoticed by an open page


@st.cache_data(ttl=MODEL_TTL_S, show_spinner=False)
def index_model(key: str, _settings: Settings) -> str | None:
    """The model the collection's target records; None while nothing is indexed. A Milvus outage
    raises (and is not cached)."""
    target = Versions(open_index(key, _settings)).describe(_settings.collection)
    return target.tag.model if target is not None and target.tag is not None else None


def searched_model(ctx: Ctx, down: set[str]) -> str:
    """The model a query is embedded with: the index's, else the configured one (see the docstring)."""
    if "milvus" in down:
        return ctx.settings.model
    try:
        return index_model(ctx.key, ctx.settings) or ctx.settings.model
    except LookalikeError:
        return ctx.settings.model


def words_ui(ctx: Ctx, down: set[str]) -> None:
    """The box (submitting it makes the words the query), or the line saying why there is none."""
    model = searched_model(ctx, down)
    if not has_text_tower(model):
        st.caption(images_only(model))
        return
    with st.form("words", border=False, enter_to_submit=True):
        text = st.text_input(
            "Search by words",
            key="words",
            max_chars=MAX_TEXT_CHARS,
            placeholder="e.g. a red bicycle in the snow",
            help=f"{model} embeds words and images into one space: describe what the images should show",
        )
        if st.form_submit_button("Search", key="words_search"):
            st.session_state["source"] = QuerySource.words(text.strip()) if text.strip() else None
