"""Events: trend of chosen events, filtered by a segment or broken down."""

from __future__ import annotations

import datetime as dt

import polars as pl
import streamlit as st

from dashboard import cached, charts, state
from dashboard.widgets import fmt_int, guard, partial_periods, segment_names
from segcore.query import DateRange, EventQuery

store = state.store()
as_of = state.as_of()
ss = st.session_state
st.title("Events")

events = store.event_names()
info = cached.info()
if not events:
    st.info("No events yet: import some on the Data page.")
    st.stop()

names = segment_names()
props = [k for k in store.events_schema() if k not in ("user_id", "event", "ts", "event_id")]
with st.container(border=True):
    c = st.columns([3, 2, 1])
    chosen = c[0].multiselect("Events", events, default=events[:1], key="ev_events")
    last = state.as_of_day()
    first_day = dt.date.fromisoformat(info["first_event"][:10]) if info["first_event"] else last
    rng = c[1].date_input(
        "Range", value=(max(first_day, last - dt.timedelta(days=29)), last), key="ev_range"
    )
    every = c[2].radio("Step", ["day", "week"], key="ev_every")
    c = st.columns([2, 2, 2, 1])
    mode = c[0].radio(
        "Show",
        ["All users", "Members of a segment", "Segments side by side", "By a property"],
        key="ev_mode",
    )
    segment = segments = by = None
    top = 5
    if mode == "Members of a segment":
        segment = c[1].selectbox("Segment", names, key="ev_segment")
    elif mode == "Segments side by side":
        segments = c[1].multiselect("Segments", names, default=names[:2], key="ev_segments")
    elif mode == "By a property":
        by = c[1].selectbox("Property", props, key="ev_by")
        top = int(c[2].number_input("Top values", min_value=1, max_value=20, value=5, key="ev_top"))
    measure = c[3].radio("Measure", ["events", "users"], key="ev_measure")

if not chosen:
    st.info("Pick at least one event.")
    st.stop()
if not (isinstance(rng, tuple | list) and len(rng) == 2):
    st.info("Pick a start and an end date.")
    st.stop()

with guard("event report"):
    query = EventQuery(tuple(chosen), DateRange(rng[0], rng[1]), every, segment=segment,
                       compare=tuple(segments or ()), by=by or None, top=top if by else 10)
    df = cached.run(query).rows
    if df.schema["period"] != pl.Date:
        df = df.with_columns(pl.col("period").cast(pl.Date))
    split = next((col for col in ("segment", "value") if col in df.columns), None)
    if split:
        df = df.with_columns(
            (pl.col("event") + " · " + pl.col(split).cast(pl.String).fill_null("(none)")).alias(
                "series"
            )
        )
    else:
        df = df.with_columns(pl.col("event").alias("series"))
    df = partial_periods(df, "period", rng[0], rng[1], every)
    cut = df.filter(pl.col("partial"))["period"].unique().sort().to_list()
    if cut:
        st.caption("Weeks start on Mondays; the range cuts the week(s) of "
                   + ", ".join(str(d) for d in cut)
                   + ": only their days in the range count (hollow points, marked "
                   "partial in the table).")
    c = st.columns(3)
    c[0].metric("Events", fmt_int(df["events"].sum()))
    c[1].metric("Periods", fmt_int(df["period"].n_unique()))
    c[2].metric("Series", fmt_int(df["series"].n_unique()))
    st.altair_chart(
        charts.lines(
            df,
            "period",
            measure,
            "series",
            y_title="Events" if measure == "events" else "Users",
        ),
        width="stretch",
    )
    st.dataframe(
        df.drop("series").with_columns(pl.col("period").cast(pl.Date)),
        hide_index=True,
        key="ev_table",
        column_config={
            "period": st.column_config.DateColumn(format="YYYY-MM-DD"),
            "events": st.column_config.NumberColumn(format="localized"),
            "users": st.column_config.NumberColumn(format="localized"),
        },
    )
