"""Retention: cohort table, average curve, lifecycle and stickiness, with the users of any
cell or bar (download, save as a static segment)."""

from __future__ import annotations

import datetime as dt

import polars as pl
import streamlit as st

from dashboard import cached, retention_view, state
from dashboard.widgets import csv_bytes, download, fmt_int, fmt_pct, guard, segment_names
from segcore.analytics.retention import STATUSES
from segcore.query import (
    DateRange,
    LifecycleQuery,
    RetentionQuery,
    StickinessQuery,
    save_actors,
)

store = state.store()
as_of = state.as_of()
st.title("Retention")

events = store.event_names()
info = cached.info()
if not events:
    st.info("No events yet: import some on the Data page.")
    st.stop()
names = segment_names()


def _index(name: str, fallback: int = 0) -> int:
    return events.index(name) if name in events else fallback


def users_panel(users: pl.DataFrame, label: str, key: str) -> None:
    """How many users, their ids, a CSV download and a form saving them as a segment."""
    c = st.columns([1, 3])
    c[0].metric("Users", fmt_int(users.height))
    c[1].dataframe(users, hide_index=True, height=160, key=f"{key}_users")
    download(st, "Download CSV", lambda: csv_bytes(users), file_name=f"{key}.csv",
             mime="text/csv", key=f"{key}_csv")
    with st.form(f"{key}_save_form"):
        cc = st.columns([3, 1], vertical_alignment="bottom")
        name = cc[0].text_input("Save as a static segment named", key=f"{key}_save_name",
                                value=label)
        go = cc[1].form_submit_button("Save")
    if go:
        with guard("save users"):
            out = save_actors(store, users, name, f"users of {label}")
            st.cache_data.clear()
            st.success(f"Saved static segment '{out['name']}' with {fmt_int(out['members'])} users.")


with st.container(border=True):
    c = st.columns([2, 2, 2, 2])
    by = c[0].radio("Cohorts by", ["A start event", "Entering a segment"], key="rt_by")
    if by == "A start event":
        start_event = c[1].selectbox("Start event", events, index=_index("signed_up"),
                                     key="rt_start")
        entered = None
    else:
        start_event = None
        entered = c[1].selectbox("Segment entered", names, key="rt_entered")
    return_event = c[2].selectbox("Return event", events, index=_index("app_launched"),
                                  key="rt_return")
    every = c[3].radio("Period", ["day", "week", "month"], index=1, key="rt_every",
                       horizontal=True)
    c = st.columns([3, 1, 2, 2])
    last = state.as_of_day()
    first_day = dt.date.fromisoformat(info["first_event"][:10]) if info["first_event"] else last
    rng = c[0].date_input("Cohort range", value=(max(first_day, last - dt.timedelta(days=55)), last),
                          key="rt_range")
    periods = int(c[1].number_input("Periods", min_value=1, max_value=60, value=6,
                                    key="rt_periods"))
    recurring = c[2].checkbox("Recurring (each time, not only the first)", key="rt_recurring")
    on_or_after = c[2].checkbox("Retained on or after period k", key="rt_after")
    population = c[3].selectbox("Only members of", ["All users", *names], key="rt_population")
    compare = st.multiselect("Break down by segments, side by side", names, key="rt_compare")

if not (isinstance(rng, tuple | list) and len(rng) == 2):
    st.info("Pick a start and an end date.")
    st.stop()
if by == "Entering a segment" and not entered:
    st.info("Save a segment first: cohorts are the periods users entered it.")
    st.stop()
segment = None if population == "All users" else population
span = DateRange(rng[0], rng[1])

tab_r, tab_l, tab_s = st.tabs(["Retention", "Lifecycle", "Stickiness"])

with tab_r, guard("retention"):
    query = RetentionQuery(start_event, return_event, span, every, periods, recurring,
                           on_or_after, entered, segment, tuple(compare))
    result = cached.run(query).to_dict()
    parts = result.get("segments") or [{"segment": None, **result}]
    st.altair_chart(retention_view.curve(
        {p["segment"] or "All cohorts": p["average"] for p in parts}), width="stretch")
    for part in parts:
        if part["segment"] is not None:
            st.subheader(part["segment"])
        cohorts = part["cohorts"]
        st.altair_chart(retention_view.heatmap(cohorts), width="stretch")
        rows = {"cohort": [c["period"] for c in cohorts], "size": [c["size"] for c in cohorts]}
        for k in range(periods + 1):
            rows[f"{k}"] = [fmt_pct(c["shares"][k]) for c in cohorts]
        st.dataframe(pl.DataFrame(rows), hide_index=True, key=f"rt_table_{part['segment']}")
    st.subheader("Users of a cell")
    c = st.columns(3)
    cell_segment = c[0].selectbox("Segment", compare, key="rt_cell_segment") if compare else None
    cohort_days = [co["period"] for co in parts[0]["cohorts"]]
    cohort = c[1].selectbox("Cohort", cohort_days, key="rt_cell_cohort")
    k_choice = c[2].selectbox("Period", ["whole cohort", *range(periods + 1)], key="rt_cell_k")
    k = None if k_choice == "whole cohort" else int(k_choice)
    users = retention_view.retention_users(query, cohort, k, cell_segment)
    label = f"Cohort {cohort}" + ("" if k is None else f" retained in period {k}")
    users_panel(users, label, "rt_cell")

with tab_l, guard("lifecycle"):
    event = st.selectbox("Active when doing", events, index=_index(return_event), key="rt_l_event")
    lq = LifecycleQuery(event, span, every, segment)
    table = cached.run(lq).table
    st.altair_chart(retention_view.lifecycle_bars(table), width="stretch")
    st.dataframe(table, hide_index=True, key="rt_l_table")
    c = st.columns(2)
    period = c[0].selectbox("Period", [str(p) for p in table["period"].to_list()],
                            key="rt_l_period")
    status = c[1].selectbox("Bar", list(STATUSES), key="rt_l_status")
    users_panel(retention_view.lifecycle_users(lq, period, status), f"{status} {period}", "rt_l")

with tab_s, guard("stickiness"):
    event = st.selectbox("Event", events, index=_index(return_event), key="rt_s_event")
    sq = StickinessQuery(event, span, every, segment)
    table = cached.run(sq).table
    st.altair_chart(retention_view.stickiness_bars(table), width="stretch")
    c = st.columns(2)
    period = c[0].selectbox("Period", [str(p) for p in table["period"].unique(maintain_order=True)],
                            key="rt_s_period")
    days = int(c[1].number_input("Active days", min_value=1, max_value=31, value=1,
                                 key="rt_s_days"))
    users_panel(retention_view.stickiness_users(sq, period, days),
                f"{days} active days {period}", "rt_s")
