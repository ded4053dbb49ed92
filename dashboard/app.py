"""The lookalike dashboard: drop a photo, see what looks like it; watch the index fill up.

Run with ``lookalike dashboard`` (or ``lookalike stack up``). This file is the page and the Search
tab's layout (its search-by-words box is ``dashboard.words_panel``); the other tabs' layouts are
``dashboard.live_panel`` and ``dashboard.duplicates_panel``.
The search logic is in ``dashboard.query``, the duplicate groups and badge in ``dashboard.duplicates``,
the login check in ``dashboard.access``, the live panel's numbers in ``dashboard.live`` (its lines
in ``dashboard.trends``), the stack check in ``dashboard.health``. The model, the Milvus client, the
S3 client and the Kafka clients are built once per process (``st.cache_resource``), keyed by the
settings they were built from.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import date

import streamlit as st

from dashboard import access, duplicates, health, query
from dashboard.duplicates_panel import duplicates_ui
from dashboard.live_panel import live_ui
from dashboard.query import QueryOutcome, QuerySource
from dashboard.resources import Ctx, bucket_keys, open_searcher, open_store
from dashboard.words_panel import words_ui
from lookalike.errors import LookalikeError, Unavailable
from lookalike.process import setup_logging
from lookalike.search import Searcher
from lookalike.settings import Settings
from lookalike.window import Window

log = logging.getLogger("dashboard")

GRID_COLUMNS = 4
# Result cards (and the Live index tab's latest objects): a key on one line, cut with an ellipsis
# (wrapped mid-name, keys made cards of uneven height); the duplicate badge wraps instead of cutting
# its original's key off.
CARD_CSS = """<style>
div[class*="st-key-result-"] [data-testid="stImageCaption"],
div[class*="st-key-result-"] [data-testid="stImageCaption"] * {
  white-space: nowrap; overflow: hidden; text-overflow: ellipsis; word-break: normal; overflow-wrap: normal;
}
div[class*="st-key-result-"] .stMarkdownBadge { white-space: normal; overflow-wrap: anywhere; text-align: left; }
.st-key-latest [data-testid="stCaptionContainer"],
.st-key-latest [data-testid="stCaptionContainer"] * { white-space: nowrap; overflow: hidden; text-overflow: ellipsis; }
</style>"""


# ---------------------------------------------------------------- page
def main() -> None:
    st.set_page_config(page_title="lookalike", layout="wide")
    try:
        settings = Settings()
    except Exception as exc:  # a bad LOOKALIKE_* value: say which, do not start half-configured
        st.error(f"The dashboard's settings are invalid: {exc}")
        st.stop()
    setup_logging(settings)
    st.title("lookalike")
    if not login_ui(settings):
        st.stop()
    ctx = Ctx(settings)
    st.caption(
        f"bucket `{settings.bucket}` · collection `{settings.collection}` · model `{settings.model}` · "
        f"Milvus `{settings.milvus_uri}` · Kafka `{settings.kafka_bootstrap}`"
    )
    st.html(CARD_CSS)
    parts = health.check_stack(settings)
    banner_ui(parts)
    search_tab, live_tab, duplicates_tab = st.tabs(["Search", "Live index", "Duplicates"])
    with search_tab:
        search_ui(ctx, health.down_parts(parts))
    with live_tab:
        live_ui(ctx)
    with duplicates_tab:
        duplicates_ui(ctx, health.down_parts(parts))


def login_ui(settings: Settings) -> bool:
    """True once this browser session gave ``LOOKALIKE_DASHBOARD_PASSWORD`` (always, when it is empty).

    Nothing else of the page (settings, images, keys) is sent before that."""
    if not access.login_required(settings.dashboard_password) or st.session_state.get("signed_in"):
        return True
    with st.form("login"):
        given = st.text_input("Password", type="password", key="password")
        submitted = st.form_submit_button("Sign in")
    if submitted:
        if access.password_matches(given, settings.dashboard_password):
            st.session_state["signed_in"] = True
            st.rerun()
        log.warning("dashboard: a sign-in with a wrong password")
        st.error("Wrong password.")
    return False


def banner_ui(parts: list[health.PartHealth]) -> None:
    down = [p for p in parts if not p.up]
    if not down:
        return
    impact = {
        "s3": "thumbnails, picking objects from the bucket and new uploads",
        "kafka": "consumer lag, dead letters and indexing of new uploads",
        "milvus": "search and the live index",
    }
    lines = [f"- **{p.label}** is unreachable at `{p.address}`: {impact[p.part]} will not work." for p in down]
    verb = "is" if len(down) == 1 else "are"
    st.error(
        f"**Part of the stack is down: {', '.join(p.label for p in down)} {verb} not answering.**\n\n"
        + "\n".join(lines),
        icon=":material/error:",
    )


# ---------------------------------------------------------------- search
def _choose_object(bucket: str, key: str) -> None:
    st.session_state["source"] = QuerySource.object(bucket, key)


def query_ui(ctx: Ctx, down: set[str]) -> QuerySource | None:
    """The query controls; returns what to search with now."""
    uploaded = st.file_uploader("Drop a query image", key="upload", help="JPEG, PNG, GIF, WebP, BMP or TIFF")
    if uploaded is not None and st.session_state.get("upload_id") != uploaded.file_id:
        st.session_state["upload_id"] = uploaded.file_id
        st.session_state["source"] = QuerySource.upload(uploaded.name, uploaded.file_id)
    source: QuerySource | None = st.session_state.get("source")
    if uploaded is None and source is not None and source.kind == "upload":
        st.session_state["source"] = None
        st.session_state.pop("upload_id", None)
    words_ui(ctx, down)  # submitting words makes them the query
    source = st.session_state.get("source")
    st.slider("Top k", min_value=1, max_value=50, value=12, key="k")
    window_ui()
    with st.expander("…or pick an object already in the bucket"):
        if "s3" in down:
            st.caption("The S3 object store is down: cannot list the bucket.")
        else:
            prefix = st.text_input("Key prefix", key="prefix")
            try:
                keys = bucket_keys(ctx.key, prefix, ctx.settings)
            except LookalikeError as exc:  # an outage, or S3 refusing the bucket (missing, access denied)
                keys = []
                st.caption(query.friendly_error(exc))
            choice = st.selectbox("Object", keys, key="pick", placeholder="no objects" if not keys else None)
            if st.button("Search with this object", key="pick_search", disabled=not choice) and choice:
                _choose_object(ctx.settings.bucket, choice)
                source = st.session_state["source"]
    return source


def window_ui() -> None:
    """Key prefix and upload dates; read back by ``current_window``."""
    with st.expander("Filter by key prefix or upload date"):
        st.text_input("Only keys starting with", key="f_prefix", placeholder="e.g. banana/")
        since, until = st.columns(2)
        since.date_input("Uploaded since (UTC)", value=None, key="f_since", format="YYYY-MM-DD")
        until.date_input("Uploaded until (UTC)", value=None, key="f_until", format="YYYY-MM-DD")


def current_window(bucket: str) -> Window:
    """A prefix names keys of the dashboard's bucket; without one, every bucket the workers index."""

    def day(name: str) -> date | None:
        value = st.session_state.get(name)
        return value if isinstance(value, date) else None

    prefix = str(st.session_state.get("f_prefix") or "")
    return Window.days(prefix, day("f_since"), day("f_until"), bucket=bucket if prefix else "")


def run_search(ctx: Ctx, source: QuerySource, k: int, window: Window, down: set[str]) -> QueryOutcome:
    """Runs a query once per (query, k, filter); later reruns (other widgets, a click) reuse its outcome."""
    memo_key = (source, k, window)
    memo = st.session_state.get("outcome")
    if memo is not None and memo[0] == memo_key:
        return memo[1]

    def searcher() -> Searcher:
        if "milvus" in down:
            raise Unavailable("milvus", "unreachable")
        return open_searcher(ctx.key, ctx.settings)

    with st.spinner("Searching…"):
        if source.kind == "text":
            outcome = query.run_text_query(searcher, source, k, window)
        else:
            outcome = _run_image_query(ctx, source, k, window, down, searcher)
    # an outage is not remembered: the same query is tried again on the next rerun
    st.session_state["outcome"] = (memo_key, outcome) if not outcome.transient else None
    return outcome


def _run_image_query(
    ctx: Ctx, source: QuerySource, k: int, window: Window, down: set[str], searcher: Callable[[], Searcher]
) -> QueryOutcome:
    def load() -> bytes:
        if source.kind == "upload":
            uploaded = st.session_state.get("upload")
            return uploaded.getvalue() if uploaded is not None else b""
        if "s3" in down:
            raise Unavailable("s3", "unreachable")
        return query.read_object(open_store(ctx.key, ctx.settings), source.bucket, source.key)

    return query.run_query(
        searcher,
        source,
        load,
        k,
        ctx.settings.max_object_bytes,
        ctx.settings.max_image_pixels,
        window=window,
    )


def search_ui(ctx: Ctx, down: set[str]) -> None:
    left, right = st.columns([1, 3], gap="large")
    with left:
        source = query_ui(ctx, down)
        window = current_window(ctx.settings.bucket)
        problem = window.problem()
        ready = source is not None and problem is None
        outcome = run_search(ctx, source, int(st.session_state["k"]), window, down) if ready and source else None
        if outcome is not None:
            query_preview_ui(outcome)
    with right:
        if problem is not None:
            st.warning(problem, icon=":material/warning:")
        elif outcome is None:
            st.info("Drop an image on the left (or pick one from the bucket) to find what looks like it.")
        elif outcome.error is not None:
            st.warning(outcome.error, icon=":material/warning:")
        else:
            results_ui(ctx, outcome, window)


def query_preview_ui(outcome: QueryOutcome) -> None:
    """The query beside its results; nothing at all for a file that could not be read as an image
    (a heading over nothing stayed on the page after a bad upload)."""
    if outcome.preview is None and outcome.result is None:
        return
    with st.container(key="query"):
        st.subheader("Query")
        if outcome.preview is not None:
            st.image(outcome.preview, caption=outcome.source.name, width="stretch")
        elif outcome.source.kind == "text":
            st.text(outcome.source.name)  # plain text: the words are never read as markdown
        result = outcome.result
        if result is not None:
            st.markdown(
                f"**Query time: {outcome.total_ms:.0f} ms** (embed {result.embed_ms:.0f} ms, "
                f"search {result.search_ms:.0f} ms)"
            )


def results_ui(ctx: Ctx, outcome: QueryOutcome, window: Window) -> None:
    assert outcome.result is not None
    neighbours = outcome.result.neighbours
    st.subheader(f"{len(neighbours)} nearest neighbours")
    if window.active:
        st.caption(window.describe())
    if not neighbours:
        st.info(
            "Nothing indexed matches the filter." if window.active else "The index has no vectors to compare with yet."
        )
        return
    for start in range(0, len(neighbours), GRID_COLUMNS):
        columns = st.columns(GRID_COLUMNS)
        for col, (rank, n) in zip(
            columns, enumerate(neighbours[start : start + GRID_COLUMNS], start + 1), strict=False
        ):
            with col, st.container(border=True, key=f"result-{rank}"):
                thumb = ctx.thumb(n.bucket, n.key, n.etag)
                if thumb is not None:
                    st.image(thumb, caption=n.key, width="stretch")
                else:
                    st.caption(f"{n.key} (no preview)")
                st.markdown(f"**#{rank} · score {n.score:.4f}**")
                st.caption(f"{query.format_size(n.size)} · uploaded {query.format_time(n.event_time)}")
                copy_of = duplicates.badge(n)
                if copy_of is not None:
                    why = f"marked by the workers: cosine similarity {n.duplicate_score:.4f} to {n.duplicate_of}"
                    st.badge(copy_of, icon=":material/content_copy:", color="orange", help=why)
                st.button("More like this", key=f"more:{n.id}", on_click=_choose_object, args=(n.bucket, n.key))


if __name__ == "__main__":
    main()
