"""Altair charts of the dashboard (all with tooltips)."""

from __future__ import annotations

from typing import Any

import altair as alt
import polars as pl

HEIGHT = 280
# counts: whole numbers on the axis (no 0.000000 ticks when nothing changed)
COUNT_AXIS = alt.Axis(format=",d", tickMinStep=1)


def _pd(df: pl.DataFrame | list[dict[str, Any]]):
    frame = df if isinstance(df, pl.DataFrame) else pl.DataFrame(df)
    return frame.to_pandas()


def hbar(
    df: pl.DataFrame,
    label: str,
    value: str,
    *,
    value_title: str = "Count",
    extra_tooltip: list[alt.Tooltip] | None = None,
    height: int | None = None,
) -> alt.Chart:
    """Horizontal bars, largest first."""
    tips = [alt.Tooltip(f"{label}:N"), alt.Tooltip(f"{value}:Q", format=",", title=value_title)]
    tips += extra_tooltip or []
    return (
        alt.Chart(_pd(df))
        .mark_bar()
        .encode(
            y=alt.Y(
                f"{label}:N",
                sort="-x",
                title=None,
                axis=alt.Axis(labelLimit=220, labelOverlap=False),
            ),
            x=alt.X(f"{value}:Q", title=value_title),
            tooltip=tips,
        )
        .properties(height=height or alt.Step(26))
    )


def size_over_time(df: pl.DataFrame) -> alt.LayerChart:
    """Members as a line, entries and exits as bars (``date, members, entered, exited``)."""
    data = df.with_columns(pl.col("exited").neg().alias("exits_neg"))
    base = alt.Chart(_pd(data)).encode(x=alt.X("date:T", title=None, axis=alt.Axis(format="%b %d")))
    tips = [
        alt.Tooltip("date:T", title="Date"),
        alt.Tooltip("members:Q", format=",", title="Members"),
        alt.Tooltip("entered:Q", format=",", title="Entered"),
        alt.Tooltip("exited:Q", format=",", title="Exited"),
    ]
    line = base.mark_line(point=True, color="#4c78a8").encode(
        y=alt.Y("members:Q", title="Members", axis=COUNT_AXIS), tooltip=tips
    )
    flows = (
        alt.Chart(_pd(data))
        .transform_fold(["entered", "exits_neg"], as_=["flow", "users"])
        .mark_bar(opacity=0.7)
        .encode(
            x=alt.X("date:T", title=None, axis=alt.Axis(format="%b %d")),
            y=alt.Y("users:Q", title="Entered (+) / exited (-)", axis=COUNT_AXIS),
            color=alt.Color(
                "flow:N",
                scale=alt.Scale(domain=["entered", "exits_neg"], range=["#54a24b", "#e45756"]),
                legend=alt.Legend(
                    title=None, labelExpr="datum.label == 'exits_neg' ? 'exited' : datum.label"
                ),
            ),
            tooltip=tips,
        )
        .properties(height=160)
    )
    return alt.vconcat(line.properties(height=HEIGHT), flows).resolve_scale(x="shared")


def funnel_bars(rows: list[dict[str, Any]], color: str | None = None,
                measure: str = "users") -> alt.Chart:
    """Users per step (``step, users, conversion`` and optionally a ``color`` column);
    ``measure="conversion"``: the share of the first step's users instead."""
    y = (alt.Y("users:Q", title="Users", axis=COUNT_AXIS) if measure == "users"
         else alt.Y("conversion:Q", title="% of step 1", axis=alt.Axis(format="%"),
                    scale=alt.Scale(domain=[0, 1])))
    enc: dict[str, Any] = {
        "x": alt.X("step:N", sort=None, title=None, axis=alt.Axis(labelAngle=0)),
        "y": y,
        "tooltip": [
            alt.Tooltip("step:N", title="Step"),
            alt.Tooltip("users:Q", format=",", title="Users"),
            alt.Tooltip("conversion:Q", format=".1%", title="Conversion from first"),
            alt.Tooltip("from_previous:Q", format=".1%", title="From previous step"),
        ],
    }
    if color:
        enc["xOffset"] = alt.XOffset(f"{color}:N")
        enc["color"] = alt.Color(f"{color}:N", title=color.capitalize())
        enc["tooltip"].insert(0, alt.Tooltip(f"{color}:N"))
    base = alt.Chart(_pd(rows)).encode(**enc)
    bars = base.mark_bar()
    if color:
        return bars.properties(height=HEIGHT)
    labels = base.mark_text(dy=-8, fontSize=13).encode(text=alt.Text("conversion:Q", format=".1%"))
    return (bars + labels).properties(height=HEIGHT)


def time_to_convert(rows: list[dict[str, Any]], color: str | None = None) -> alt.Chart:
    """Histogram of the time from the first step (``label, users, order``); with ``color``
    (e.g. ``segment``), bars side by side per value, labelled."""
    extra: dict[str, Any] = {}
    if color:
        extra = {"xOffset": alt.XOffset(f"{color}:N"),
                 "color": alt.Color(f"{color}:N", title=color.capitalize())}
    return (
        alt.Chart(_pd(rows))
        .mark_bar()
        .encode(
            **extra,
            x=alt.X(
                "label:N",
                sort=alt.SortField("order"),
                title="Time from first step",
                axis=alt.Axis(labelAngle=0),
            ),
            y=alt.Y("users:Q", title="Users"),
            tooltip=[
                *([alt.Tooltip(f"{color}:N")] if color else []),
                alt.Tooltip("label:N", title="Time"),
                alt.Tooltip("users:Q", format=",", title="Users"),
            ],
        )
        .properties(height=220)
    )


def lines(
    df: pl.DataFrame,
    x: str,
    y: str,
    color: str | None = None,
    *,
    y_title: str = "",
    y_format: str = ",.0f",
    x_type: str = "T",
) -> alt.Chart:
    """A line per ``color`` value over time."""
    tips = [
        alt.Tooltip(f"{x}:{x_type}", title=x.capitalize()),
        alt.Tooltip(f"{y}:Q", format=y_format, title=y_title or y),
    ]
    enc: dict[str, Any] = {
        "x": alt.X(f"{x}:{x_type}", title=None),
        "y": alt.Y(f"{y}:Q", title=y_title or y, axis=alt.Axis(
            format=y_format, **({"tickMinStep": 1} if y_format == ",.0f" else {}))),
        "tooltip": tips,
    }
    if color:
        enc["color"] = alt.Color(f"{color}:N", title=None)
        tips.insert(0, alt.Tooltip(f"{color}:N"))
    if "partial" not in df.columns:
        return alt.Chart(_pd(df)).mark_line(point=True).encode(**enc).properties(height=HEIGHT)
    # a period the range cuts (a partial week) is a hollow point, not a drop
    tips.append(alt.Tooltip("partial:N", title="Partial period"))
    base = alt.Chart(_pd(df)).encode(**enc)
    fill = alt.Color(f"{color}:N", legend=None) if color else alt.value("#4c78a8")
    points = base.mark_point(size=50, filled=False).encode(
        fill=alt.condition("datum.partial", alt.value("white"), fill),
    )
    return (base.mark_line() + points).properties(height=HEIGHT)


def profile_bars(df: pl.DataFrame) -> alt.Chart:
    """Share of segment vs all users per value (``value, group, share, users``)."""
    return (
        alt.Chart(_pd(df))
        .mark_bar()
        .encode(
            y=alt.Y("value:N", title=None, sort=None),
            x=alt.X("share:Q", title="Share", axis=alt.Axis(format="%")),
            yOffset="group:N",
            color=alt.Color(
                "group:N",
                title=None,
                scale=alt.Scale(domain=["Members", "All users"], range=["#1f6fb4", "#c4c9d0"]),
            ),
            tooltip=[
                alt.Tooltip("group:N"),
                alt.Tooltip("value:N"),
                alt.Tooltip("share:Q", format=".1%"),
                alt.Tooltip("users:Q", format=","),
            ],
        )
        .properties(height=alt.Step(11))
    )


def compare_lines(df: pl.DataFrame, measure: str, partial_after: Any = None) -> alt.LayerChart:
    """One line per segment (``segment, date, members, share, entered, exited``) of
    ``measure`` (``members`` or ``share``); the hover names the point's entries and exits.
    Points after ``partial_after`` (an incomplete last period) are drawn hollow."""
    data = df.with_columns(
        (pl.col("date") > partial_after).alias("partial") if partial_after is not None
        else pl.lit(False).alias("partial")
    )
    tips = [
        alt.Tooltip("segment:N", title="Segment"),
        alt.Tooltip("date:T", title="Date", format="%Y-%m-%d"),
        alt.Tooltip("members:Q", format=",", title="Members"),
        alt.Tooltip("share:Q", format=".1%", title="Share of all users"),
        alt.Tooltip("entered:Q", format=",", title="Entered"),
        alt.Tooltip("exited:Q", format=",", title="Exited"),
    ]
    base = alt.Chart(_pd(data)).encode(
        x=alt.X("date:T", title=None, axis=alt.Axis(format="%b %d")),
        y=alt.Y(f"{measure}:Q", title="Share of all users" if measure == "share" else "Members",
                axis=alt.Axis(format="%") if measure == "share" else COUNT_AXIS),
        color=alt.Color("segment:N", title=None),
        tooltip=tips,
    )
    line = base.mark_line()
    points = base.mark_point(size=45).encode(
        fill=alt.condition("datum.partial", alt.value("white"), alt.Color("segment:N")),
    )
    return (line + points).properties(height=HEIGHT)
