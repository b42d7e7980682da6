"""Overview: store size, date range, top events and every saved segment."""

from __future__ import annotations

import datetime as dt
from typing import Any

import polars as pl
import streamlit as st

from dashboard import cached, charts, state
from dashboard.widgets import clicked_row, fmt_int, guard
from segcore.errors import SegcoreError
from segcore.query import DateRange, MembersResult, Target, TrendQuery


def _why(err: Exception) -> str:
    return str(err) if isinstance(err, SegcoreError) else f"something went wrong ({err})"


st.title("Overview")
store = state.store()
as_of = state.as_of()
info = cached.info()

c1, c2, c3, c4 = st.columns(4)
c1.metric("Users", fmt_int(info["users"]))
c2.metric("Events", fmt_int(info["events"]))
c3.metric("First event", (info["first_event"] or "-")[:10])
c4.metric("Last event", (info["last_event"] or "-")[:10])

left, right = st.columns([2, 3])
with left, guard("top events"):
    st.subheader("Top events")
    top = pl.DataFrame(info["event_names"] or [], schema={"event": pl.String, "count": pl.Int64})
    if top.height:
        total = max(int(top["count"].sum()), 1)
        top = top.head(12).with_columns((pl.col("count") / total).alias("share"))
        import altair as alt

        st.altair_chart(
            charts.hbar(
                top,
                "event",
                "count",
                value_title="Events",
                extra_tooltip=[alt.Tooltip("share:Q", format=".1%", title="Share")],
            ),
            width="stretch",
        )
    else:
        st.info("No events yet: import some on the Data page.")

with right, guard("segments"):
    st.subheader("Saved segments")
    segs = store.catalog.list()
    if not segs:
        st.info("No saved segments yet.")
        if st.button("Add example segments", key="ov_examples"):
            from segcore.sample.examples import seed_examples

            seed_examples(store)
            st.rerun()
    else:
        end = state.as_of_day()
        start = end - dt.timedelta(days=29)
        # the list at once; the sizes, then each segment's last 30 days, fill it in as they
        # come (on a large store each is a query over the events: the page is usable first)
        rows: list[dict] = [{"Segment": seg.name, "Kind": seg.kind, "Members": None,
                             "Share": None, "Last 30 days": None,
                             "Description": seg.description} for seg in segs]
        failed: list[str] = []
        table = st.empty()

        def draw(**select: Any) -> None:
            table.dataframe(
                rows,
                hide_index=True,
                width="stretch",
                height=min(35 * (len(rows) + 1) + 3, 640),
                column_config={
                    "Members": st.column_config.NumberColumn(format="localized"),
                    "Share": st.column_config.NumberColumn(
                        format="percent", help="Share of all users as of the sidebar date"),
                    "Last 30 days": st.column_config.LineChartColumn(
                        "Last 30 days", help="Members at the end of each day"
                    ),
                },
                **select,
            )

        draw()
        sized: list[bool] = []
        for row in rows:  # ok-loop: one size per saved segment
            try:
                size: MembersResult = cached.size(Target(segment=row["Segment"]), as_of)
            except Exception as err:  # noqa: BLE001 - one broken segment hides no other
                failed.append(f"{row['Segment']}: {_why(err)}")
                sized.append(False)
                continue
            sized.append(True)
            row["Members"] = size.members
            row["Share"] = size.share_of_all if size.all_users else None
            draw()
        for row, ok in zip(rows, sized, strict=True):  # ok-loop: one trend per segment
            if not ok:
                continue
            try:
                tr = cached.run(TrendQuery(Target(segment=row["Segment"]),
                                           DateRange(start, end), "day")).points
                row["Last 30 days"] = tr["members"].to_list()
            except Exception as err:  # noqa: BLE001
                failed.append(f"{row['Segment']} (size over time): {_why(err)}")
            draw()
        draw(key="ov_segments", on_select="rerun", selection_mode="single-row")
        for msg in failed:
            st.warning(msg)
        st.caption("Click a row to open its segment; compare sizes over time on "
                   "the Compare segments page.")
        picked = clicked_row("ov_segments")
        if picked is not None:
            st.session_state.pop("ov_segments", None)
            state.go("segment", segment=rows[picked]["Segment"])
