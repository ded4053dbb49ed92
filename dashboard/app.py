"""The lookalike dashboard: drop a photo, see what looks like it; watch the index fill up.

Run with ``lookalike dashboard`` (or ``lookalike stack up``). This file is only layout: the search
logic is in ``dashboard.query``, the duplicate groups and badge in ``dashboard.duplicates``, the
login check in ``dashboard.access``, the live panel's numbers in ``dashboard.live``, the stack check
in ``dashboard.health``. The model, the Milvus client, the S3 client and the Kafka clients are built once
per process (``st.cache_resource``), keyed by the settings they were built from.
"""

from __future__ import annotations

import logging
import time
from datetime import date, datetime

import streamlit as st

from dashboard import access, duplicates, health, live, query
from dashboard.query import QueryOutcome, QuerySource, SearchWindow
from dashboard.resources import (
    Ctx,
    bucket_keys,
    live_snapshot,
    open_duplicate_index,
    open_searcher,
    open_store,
)
from lookalike.errors import LookalikeError, Unavailable
from lookalike.process import setup_logging
from lookalike.search import Searcher
from lookalike.settings import Settings

log = logging.getLogger("dashboard")

LIVE_REFRESH_S = live.REFRESH_S
GRID_COLUMNS = 4
GROUP_COLUMNS = 6
LATEST_SHOWN = 8


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
        st.session_state["source"] = source = None
        st.session_state.pop("upload_id", None)
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


def current_window() -> SearchWindow:
    def day(name: str) -> date | None:
        value = st.session_state.get(name)
        return value if isinstance(value, date) else None

    return SearchWindow(str(st.session_state.get("f_prefix") or ""), day("f_since"), day("f_until"))


def run_search(ctx: Ctx, source: QuerySource, k: int, window: SearchWindow, down: set[str]) -> QueryOutcome:
    """Runs a query once per (query, k, filter); later reruns (other widgets, a click) reuse its outcome."""
    memo_key = (source, k, window)
    memo = st.session_state.get("outcome")
    if memo is not None and memo[0] == memo_key:
        return memo[1]

    def searcher() -> Searcher:
        if "milvus" in down:
            raise Unavailable("milvus", "unreachable")
        return open_searcher(ctx.key, ctx.settings)

    def load() -> bytes:
        if source.kind == "upload":
            uploaded = st.session_state.get("upload")
            return uploaded.getvalue() if uploaded is not None else b""
        if "s3" in down:
            raise Unavailable("s3", "unreachable")
        return query.read_object(open_store(ctx.key, ctx.settings), source.bucket, source.key)

    with st.spinner("Searching…"):
        outcome = query.run_query(
            searcher,
            source,
            load,
            k,
            ctx.settings.max_object_bytes,
            ctx.settings.max_image_pixels,
            filter=window.expression(ctx.settings.bucket),
        )
    # an outage is not remembered: the same query is tried again on the next rerun
    st.session_state["outcome"] = (memo_key, outcome) if not outcome.transient else None
    return outcome


def search_ui(ctx: Ctx, down: set[str]) -> None:
    left, right = st.columns([1, 3], gap="large")
    with left:
        source = query_ui(ctx, down)
        window = current_window()
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
    with st.container(key="query"):
        st.subheader("Query")
        if outcome.preview is not None:
            st.image(outcome.preview, caption=outcome.source.name, width="stretch")
        result = outcome.result
        if result is not None:
            st.markdown(
                f"**Query time: {outcome.total_ms:.0f} ms** (embed {result.embed_ms:.0f} ms, "
                f"search {result.search_ms:.0f} ms)"
            )


def results_ui(ctx: Ctx, outcome: QueryOutcome, window: SearchWindow) -> None:
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


# ---------------------------------------------------------------- duplicates
def duplicates_ui(ctx: Ctx, down: set[str]) -> None:
    """Groups of near-duplicates, a page at a time, each a row of thumbnails."""
    s = ctx.settings
    low = min(s.duplicate_threshold, 0.99)
    a, b, c = st.columns([2, 2, 1])
    threshold = a.slider(
        "Similarity threshold",
        min_value=low,
        max_value=1.0,
        value=low,
        step=0.005,
        format="%.3f",
        key="dup_threshold",
        help=f"Cosine similarity. Workers mark pairs at {s.duplicate_threshold} and above "
        "(LOOKALIKE_DUPLICATE_THRESHOLD), so a lower value finds nothing more.",
    )
    prefix = b.text_input("Key prefix", key="dup_prefix", placeholder="e.g. holidays/")
    limit = int(c.selectbox("Groups per page", duplicates.PAGE_SIZES, index=2, key="dup_limit"))
    if "milvus" in down:
        st.warning(duplicates.friendly_error(Unavailable("milvus", "unreachable")), icon=":material/warning:")
        return
    pages = duplicates.pages_for(st.session_state, threshold, prefix, limit)
    page = duplicates.load_page(
        lambda: open_duplicate_index(ctx.key, s), s.bucket, threshold, prefix, limit, pages.cursor
    )
    if page.error is not None:
        st.warning(page.error, icon=":material/warning:")
        return
    if not page.groups:
        st.info("No near-duplicates at this threshold." if pages.number == 1 else "No more groups.")
    first = (pages.number - 1) * limit + 1
    for number, group in enumerate(page.groups, first):
        group_ui(ctx, number, group)
    back, page_no, forward = st.columns([1, 2, 1])
    back.button("Previous", key="dup_prev", disabled=pages.number == 1, on_click=pages.back)
    page_no.caption(f"Page {pages.number}")
    if page.next_cursor is not None:
        forward.button("Next", key="dup_next", on_click=pages.forward, args=(page.next_cursor,))


def group_ui(ctx: Ctx, number: int, group: duplicates.GroupView) -> None:
    with st.container(border=True, key=f"dup-group-{number}"):
        st.markdown(f"**Group {number}** · {group.caption()}")
        for start in range(0, len(group.members), GROUP_COLUMNS):
            row = group.members[start : start + GROUP_COLUMNS]
            for col, member in zip(st.columns(GROUP_COLUMNS), row, strict=False):
                with col:
                    thumb = ctx.thumb(ctx.settings.bucket, member.key, member.etag) if member.etag else None
                    if thumb is not None:
                        st.image(thumb, caption=member.key, width="stretch")
                    else:
                        st.caption(f"{member.key} (no preview)")
                    if member.duplicate_of:
                        st.caption(f"copy of {member.duplicate_of}")


# ---------------------------------------------------------------- live index
@st.fragment(run_every=LIVE_REFRESH_S)
def live_ui(ctx: Ctx) -> None:
    """Reruns on its own every few seconds; a search elsewhere on the page is not held up by it."""
    snap = live_snapshot(ctx.key, LATEST_SHOWN, ctx.settings)
    for part, detail in snap.errors.items():
        st.warning(f"{health.LABELS[part]}: {detail}")
    if snap.collection:
        st.caption(f"Index `{ctx.settings.collection}` → `{snap.collection}` (model {snap.model or '?'})")
    if snap.migration:
        m = snap.migration
        st.info(
            f"Reindexing into `{m.get('target')}` with {m.get('model')}: "
            f"{m.get('done')} / {m.get('total')} objects, lag {m.get('lag')}"
        )
    a, b, c, d = st.columns(4)
    a.metric("Vectors indexed", "—" if snap.vectors is None else f"{snap.vectors:,}")
    b.metric("Ingest rate (last minute)", "—" if snap.rate_per_s is None else f"{snap.rate_per_s:.2f} /s")
    c.metric("Consumer lag", "—" if snap.total_lag is None else f"{snap.total_lag:,}")
    d.metric("Dead letters (recent)", "—" if snap.dead_letters is None else str(len(snap.dead_letters)))
    latest_ui(ctx, snap)
    lag_col, dead_col = st.columns([1, 2])
    with lag_col:
        st.markdown(f"**Consumer lag** of group `{ctx.settings.group}` on `{ctx.settings.topic}`")
        if snap.lag:
            st.table(
                [{"partition": p.partition, "committed": p.committed, "end": p.end, "lag": p.lag} for p in snap.lag],
                hide_index=True,
            )
        elif snap.lag is not None:
            st.caption("The topic does not exist yet.")
    with dead_col:
        st.markdown(f"**Recent dead letters** on `{ctx.settings.dead_letter_topic}`")
        if snap.dead_letters:
            st.table(
                [
                    {
                        "time": datetime.fromtimestamp(dl.time).strftime("%H:%M:%S") if dl.time else "—",
                        "key": dl.key,
                        "reason": dl.reason,
                        "from": f"{dl.topic}[{dl.partition}]@{dl.offset}" if dl.topic else "",
                    }
                    for dl in snap.dead_letters
                ],
                hide_index=True,
            )
        elif snap.dead_letters is not None:
            st.caption("None: every event so far was indexable.")
    st.caption(f"Refreshed {time.strftime('%H:%M:%S')}, every {LIVE_REFRESH_S} s.")


def latest_ui(ctx: Ctx, snap: live.LiveSnapshot) -> None:
    st.markdown("**Latest indexed objects**")
    if not snap.latest:
        st.caption("Nothing indexed yet." if "milvus" not in snap.errors else "Unavailable.")
        return
    columns = st.columns(LATEST_SHOWN)
    for col, obj in zip(columns, snap.latest, strict=False):
        with col:
            thumb = ctx.thumb(obj.bucket, obj.key, obj.etag)
            if thumb is not None:
                st.image(thumb, width="stretch")
            st.caption(f"{obj.key}  \n{query.format_age(obj.indexed_at, snap.taken_ms)}")


if __name__ == "__main__":
    main()
