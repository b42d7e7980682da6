"""Charts and cached drill-downs of the Retention page (``app_pages/retention.py``)."""

from __future__ import annotations

from typing import Any

import altair as alt
import polars as pl
import streamlit as st

from dashboard import state
from segcore.query import (
    LifecycleQuery,
    RetentionQuery,
    StickinessQuery,
    lifecycle_actors,
    retention_actors,
    stickiness_actors,
)

STATUS_COLORS = {"new": "#2a9d5c", "returning": "#1f6fb4", "resurrecting": "#f2a541",
                 "dormant": "#d0533f"}


def _key() -> tuple[str, str]:
    s = state.store()
    return str(s.home), s.version()


@st.cache_data(show_spinner=False, max_entries=256)
def _retention_users(home: str, version: str, q: RetentionQuery, cohort: str, k: int | None,
                     segment: str | None) -> pl.DataFrame:
    return retention_actors(state.store(), q, cohort, k, segment)


def retention_users(q: RetentionQuery, cohort: str, k: int | None,
                    segment: str | None) -> pl.DataFrame:
    """The users of a retention cell (cached per store version)."""
    return _retention_users(*_key(), q, cohort, k, segment)


@st.cache_data(show_spinner=False, max_entries=256)
def _lifecycle_users(home: str, version: str, q: LifecycleQuery, period: str,
                     status: str) -> pl.DataFrame:
    return lifecycle_actors(state.store(), q, period, status)


def lifecycle_users(q: LifecycleQuery, period: str, status: str) -> pl.DataFrame:
    """The users of a lifecycle bar (cached per store version)."""
    return _lifecycle_users(*_key(), q, period, status)


@st.cache_data(show_spinner=False, max_entries=256)
def _stickiness_users(home: str, version: str, q: StickinessQuery, period: str,
                      days: int) -> pl.DataFrame:
    return stickiness_actors(state.store(), q, period, days)


def stickiness_users(q: StickinessQuery, period: str, days: int) -> pl.DataFrame:
    """The users of a stickiness bar (cached per store version)."""
    return _stickiness_users(*_key(), q, period, days)


def cohort_frame(cohorts: list[dict[str, Any]]) -> pl.DataFrame:
    """``cohort, size, k, retained, share`` rows of a result's cohorts."""
    rows = [{"cohort": c["period"], "size": c["size"], "k": k, "retained": r,
             "share": c["shares"][k]}
            for c in cohorts for k, r in enumerate(c["retained"])]  # ok-loop: shown cells
    return pl.DataFrame(rows, schema={"cohort": pl.String, "size": pl.Int64, "k": pl.Int64,
                                      "retained": pl.Int64, "share": pl.Float64})


def heatmap(cohorts: list[dict[str, Any]]) -> alt.LayerChart:
    """The cohort table as a heat map of shares, with the share written in each cell; cells
    of periods still to come (after the range's last period) are left out."""
    frame = cohort_frame(cohorts)
    n = len(cohorts)  # one cohort per period of the range: cohort i's last begun k is n-1-i
    rank = frame["cohort"].rank("dense").cast(pl.Int64) - 1
    data = frame.filter(pl.col("k") <= n - 1 - rank).to_pandas()
    base = alt.Chart(data).encode(
        x=alt.X("k:O", title="Period after the cohort's"),
        y=alt.Y("cohort:O", title=None, sort=None),
    )
    tips = [alt.Tooltip("cohort:O"), alt.Tooltip("k:O", title="period"),
            alt.Tooltip("size:Q", format=","), alt.Tooltip("retained:Q", format=","),
            alt.Tooltip("share:Q", format=".1%")]
    cells = base.mark_rect().encode(
        color=alt.Color("share:Q", scale=alt.Scale(scheme="blues", domain=[0, 1]),
                        legend=None), tooltip=tips)
    text = base.mark_text(fontSize=11).encode(
        text=alt.Text("share:Q", format=".0%"),
        color=alt.condition("datum.share > 0.5", alt.value("white"), alt.value("black")))
    return (cells + text).properties(height=alt.Step(24))


def curve(parts: dict[str, list[dict[str, Any]]]) -> alt.Chart:
    """The average retention curve of each part (``name -> average rows``)."""
    rows = [{"series": name, "k": a["k"], "share": a["share"]}
            for name, avg in parts.items() for a in avg if a["share"] is not None]  # ok-loop
    data = pl.DataFrame(rows, schema={"series": pl.String, "k": pl.Int64, "share": pl.Float64})
    return alt.Chart(data.to_pandas()).mark_line(point=True).encode(
        x=alt.X("k:O", title="Period after the cohort's"),
        y=alt.Y("share:Q", title="Retained", axis=alt.Axis(format="%")),
        color=alt.Color("series:N", title=None),
        tooltip=[alt.Tooltip("series:N"), alt.Tooltip("k:O"),
                 alt.Tooltip("share:Q", format=".1%")],
    ).properties(height=260)


def lifecycle_bars(table: pl.DataFrame) -> alt.Chart:
    """Stacked bars per period: new, returning, resurrecting up, dormant down."""
    long = table.unpivot(index="period", variable_name="status", value_name="users")
    return alt.Chart(long.to_pandas()).mark_bar().encode(
        x=alt.X("period:T", title=None),
        y=alt.Y("users:Q", title="Users"),
        color=alt.Color("status:N", title=None,
                        scale=alt.Scale(domain=list(STATUS_COLORS),
                                        range=list(STATUS_COLORS.values()))),
        tooltip=[alt.Tooltip("period:T"), alt.Tooltip("status:N"),
                 alt.Tooltip("users:Q", format=",")],
    ).properties(height=280)


def stickiness_bars(table: pl.DataFrame) -> alt.Chart:
    """Users per number of active days, a bar group per period."""
    data = table.with_columns(pl.col("period").cast(pl.String))
    return alt.Chart(data.to_pandas()).mark_bar().encode(
        x=alt.X("days:O", title="Active days in the period"),
        y=alt.Y("users:Q", title="Users"),
        color=alt.Color("period:N", title=None),
        xOffset="period:N",
        tooltip=[alt.Tooltip("period:N"), alt.Tooltip("days:O"),
                 alt.Tooltip("users:Q", format=",")],
    ).properties(height=260)
