"""The Duplicates tab's layout: groups of near-duplicates a page at a time, each a row of thumbnails.

Only layout: the groups, the pager and the error sentences come from ``dashboard.duplicates``.
On an index whose model family has no calibrated threshold (and none configured) the tab is one
line saying so (``lookalike.families.uncalibrated_message``): there is no default to start from.
"""

from __future__ import annotations

import streamlit as st

from dashboard import duplicates
from dashboard.resources import Ctx, open_duplicate_index
from lookalike.errors import Unavailable
from lookalike.families import uncalibrated_message

GROUP_COLUMNS = 6


def duplicates_ui(ctx: Ctx, down: set[str]) -> None:
    """Groups of near-duplicates, a page at a time, each a row of thumbnails."""
    s = ctx.settings
    if "milvus" in down:
        st.warning(duplicates.friendly_error(Unavailable("milvus", "unreachable")), icon=":material/warning:")
        return
    in_force, model = duplicates.threshold_in_force(s, lambda: open_duplicate_index(ctx.key, s))
    if in_force is None:
        st.info(uncalibrated_message(model), icon=":material/info:")
        return
    low = min(in_force, 0.99)
    a, b, c = st.columns([2, 2, 1])
    threshold = a.slider(
        "Similarity threshold",
        min_value=low,
        max_value=1.0,
        value=low,
        step=0.005,
        format="%.3f",
        key="dup_threshold",
        help=f"Cosine similarity. Workers mark pairs at {in_force} and above (LOOKALIKE_DUPLICATE_THRESHOLD, "
        f"else the one calibrated for {model}'s family), so a lower value finds nothing more.",
    )
    prefix = b.text_input("Key prefix", key="dup_prefix", placeholder="e.g. holidays/")
    limit = int(c.selectbox("Groups per page", duplicates.PAGE_SIZES, index=2, key="dup_limit"))
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
