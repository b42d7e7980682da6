"""Compare segments: several saved segments' sizes (or shares of all users) on one range,
with who entered and exited at every point on hover, and a download."""

from __future__ import annotations

import datetime as dt
from functools import partial

import polars as pl
import streamlit as st

from dashboard import cached, charts, state
from dashboard.widgets import csv_bytes, download, guard, segment_names, week_note

as_of = state.as_of()
st.title("Compare segments")
names = segment_names()
if not names:
    st.info("No saved segments yet: create some in the Segment builder.")
    st.stop()

end_default = state.as_of_day()
with st.container(border=True):
    c = st.columns([4, 3, 1, 2])
    chosen = c[0].multiselect("Segments", names, default=names[:3], key="cmp_segments",
                              max_selections=8)
    rng = c[1].date_input(
        "Range", value=(end_default - dt.timedelta(days=29), end_default), key="cmp_range"
    )
    every = c[2].radio("Step", ["day", "week"], key="cmp_every")
    measure = c[3].radio("Show", ["members", "share"], key="cmp_measure",
                         format_func={"members": "Members", "share": "Share of all users"}.get)

if not chosen:
    st.info("Choose at least one segment.")
    st.stop()
if not (isinstance(rng, tuple | list) and len(rng) == 2):
    st.info("Pick a start and an end date.")
    st.stop()

with guard("comparison"):
    from segcore.query import CompareQuery, DateRange

    df = cached.run(CompareQuery(tuple(chosen), DateRange(rng[0], rng[1]), every)).rows
    note = week_note(rng[0], rng[1], every)
    if note:
        st.caption(note)
    st.altair_chart(charts.compare_lines(df, measure), width="stretch")
    last = (
        df.sort("date").group_by("segment", maintain_order=True).agg(
            pl.col("date").last().alias("Last point"),
            pl.col("members").first().alias("Members at start"),
            pl.col("members").last().alias("Members"),
            pl.col("share").last().alias("Share"),
            pl.col("entered").sum().alias("Entered"),
            pl.col("exited").sum().alias("Exited"),
        )
        .rename({"segment": "Segment"})
    )
    st.dataframe(
        last,
        hide_index=True,
        key="cmp_table",
        column_config={
            "Share": st.column_config.NumberColumn(format="percent"),
            "Members": st.column_config.NumberColumn(format="localized"),
            "Members at start": st.column_config.NumberColumn(format="localized"),
            "Entered": st.column_config.NumberColumn(
                format="localized", help="Entries summed over the points shown"),
            "Exited": st.column_config.NumberColumn(
                format="localized", help="Exits summed over the points shown"),
        },
    )
    download(
        st,
        "Download the points (CSV)",
        partial(csv_bytes, df),
        file_name=f"segments-{rng[0]}-{rng[1]}-{every}.csv",
        mime="text/csv",
        key="cmp_dl",
        icon=":material/download:",
    )
