"""The Live index tab's layout: the numbers, their lines over the last minutes, a load's progress.

Only layout: the numbers come from ``dashboard.live`` (one snapshot per process every few seconds),
the lines and "n of N" from ``dashboard.trends``. The tab reruns on its own (a fragment), so a
search on the other tab is never held up by it.
"""

from __future__ import annotations

import time
from datetime import datetime

import streamlit as st

from dashboard import health, live, query, trends
from dashboard.resources import Ctx, live_snapshot, trend_history

LIVE_REFRESH_S = live.REFRESH_S
LATEST_SHOWN = 8


@st.fragment(run_every=LIVE_REFRESH_S)
def live_ui(ctx: Ctx) -> None:
    """Reruns on its own every few seconds; a search elsewhere on the page is not held up by it."""
    snap = live_snapshot(ctx.key, LATEST_SHOWN, ctx.settings)
    history = trend_history(ctx.key)
    history.add(snap.taken_ms, snap.lag)
    for part, detail in snap.errors.items():
        st.warning(f"{health.LABELS[part]}: {detail}")
    if snap.collection:
        st.caption(f"Index `{ctx.settings.collection}` → `{snap.collection}` (model {snap.model or '?'})")
    progress_ui(snap, history)
    metrics_ui(snap, history)
    latest_ui(ctx, snap)
    tables_ui(ctx, snap)
    st.caption(f"Refreshed {time.strftime('%H:%M:%S')}, every {LIVE_REFRESH_S} s.")


def progress_ui(snap: live.LiveSnapshot, history: trends.History) -> None:
    """ "n of N objects indexed" for a running reindex (its own counts) and a bulk upload (offsets)."""
    m = snap.migration
    if m:
        done, total = m.get("done"), m.get("total")
        text = f"Reindexing into `{m.get('target')}` with {m.get('model')}: "
        if isinstance(done, int) and isinstance(total, int) and total > 0:
            st.progress(min(1.0, done / total), text=f"{text}{done:,} of {total:,} objects indexed, lag {m.get('lag')}")
        else:
            st.info(f"{text}{done} / {total} objects, lag {m.get('lag')}")
    load = history.progress()
    if load is not None:
        since = datetime.fromtimestamp(load.since_ms / 1000).strftime("%H:%M:%S")
        st.progress(
            load.fraction,
            text=f"Bulk load: {load.done:,} of {load.total:,} objects indexed (new since {since}; "
            "dead letters count as done)",
        )


def metrics_ui(snap: live.LiveSnapshot, history: trends.History) -> None:
    minutes = trends.SPAN_MS // 60_000
    lags = history.lag_series()
    a, b, c, d = st.columns(4)
    a.metric("Vectors indexed", "—" if snap.vectors is None else f"{snap.vectors:,}")
    b.metric(
        "Ingest rate (last minute)",
        "—" if snap.rate_per_s is None else f"{snap.rate_per_s:.2f} /s",
        chart_data=snap.rate_series or None,
        chart_type="area",
        help=f"Objects indexed per second. The line: each {trends.BIN_MS // 1000} s of the last {minutes} "
        "minutes, from the change feed.",
    )
    c.metric(
        "Consumer lag",
        "—" if snap.total_lag is None else f"{snap.total_lag:,}",
        chart_data=lags if len(lags) > 1 else None,
        chart_type="line",
        help=f"Events the workers have not handled yet. The line: each refresh of the last {minutes} minutes "
        "this dashboard was running.",
    )
    d.metric("Dead letters (recent)", "—" if snap.dead_letters is None else str(len(snap.dead_letters)))


def latest_ui(ctx: Ctx, snap: live.LiveSnapshot) -> None:
    st.markdown("**Latest indexed objects**")
    if not snap.latest:
        st.caption("Nothing indexed yet." if "milvus" not in snap.errors else "Unavailable.")
        return
    columns = st.container(key="latest").columns(LATEST_SHOWN)  # its captions: one line each (app.CARD_CSS)
    for col, obj in zip(columns, snap.latest, strict=False):
        with col:
            thumb = ctx.thumb(obj.bucket, obj.key, obj.etag)
            if thumb is not None:
                st.image(thumb, width="stretch")
            st.caption(f"{obj.key}  \n{query.format_age(obj.indexed_at, snap.taken_ms)}")


def tables_ui(ctx: Ctx, snap: live.LiveSnapshot) -> None:
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
