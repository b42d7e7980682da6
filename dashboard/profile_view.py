"""Rendering of the profile (segment vs all users) and segment-overlap results."""

from __future__ import annotations

from typing import Any

import altair as alt
import polars as pl
import streamlit as st

from dashboard import charts
from dashboard.widgets import fmt_int, pct_expr


def _rows(attr: dict[str, Any]) -> list[dict[str, Any]]:
    return attr.get("values") or attr.get("bins") or attr.get("months") or []


def standouts(prof: dict[str, Any], min_count: int = 5, top: int = 12) -> pl.DataFrame:
    """The attribute values most over-represented among the members (by lift)."""
    rows = [
        {
            "attribute": name,
            "value": str(r["value"]),
            "members": r["count"],
            "share": r["share"],
            "all users": r["all_share"],
            "lift": r.get("lift"),
        }
        for name, attr in prof.get("attributes", {}).items()
        for r in _rows(attr)
    ]
    if not rows:
        return pl.DataFrame()
    return (
        pl.DataFrame(rows)
        .filter(
            (pl.col("members") >= min_count)
            & (pl.col("share") >= 0.02)
            & pl.col("lift").is_not_null()
        )
        .sort("lift", descending=True)
        .head(top)
        .drop("members")
    )


def show_profile(prof: dict[str, Any]) -> None:
    """Profile of the members against all users: one attribute at a time, plus standouts."""
    attrs = prof.get("attributes", {})
    st.caption(f"{fmt_int(prof.get('members'))} members vs {fmt_int(prof.get('all'))} users")
    if not attrs:
        st.info("No attributes to profile.")
        return
    left, right = st.columns([3, 2])
    with left:
        name = st.selectbox("Attribute", list(attrs), key="sp_profile_attr")
        attr = attrs[name]
        if attr.get("kind") == "numeric":
            st.caption(
                f"Mean {attr.get('mean') or 0:,.1f} (all users "
                f"{attr.get('all_mean') or 0:,.1f}) · median {attr.get('median') or 0:,.1f}"
                f" (all users {attr.get('all_median') or 0:,.1f})"
            )
        rows = _rows(attr)
        if rows:
            data = pl.DataFrame(
                [
                    {
                        "value": str(r["value"]),
                        "group": "Members",
                        "share": r["share"],
                        "users": r["count"],
                    }
                    for r in rows
                ]
                + [
                    {
                        "value": str(r["value"]),
                        "group": "All users",
                        "share": r["all_share"],
                        "users": r["all_count"],
                    }
                    for r in rows
                ]
            )
            st.altair_chart(charts.profile_bars(data), width="stretch")
        else:
            st.info("No values.")
    with right:
        st.markdown("**What stands out** (highest lift)")
        top = standouts(prof)
        if top.height:
            st.dataframe(
                top.with_columns(
                    pct_expr("share"),
                    pct_expr("all users"),
                    pl.col("lift").round(2),
                ),
                hide_index=True,
            )


def show_overlap(ov: dict[str, Any], name: str) -> None:
    """Regions (exactly these segments) and pairwise Jaccard of an overlap result."""
    sizes = ov.get("sizes", {})
    st.caption(
        "Union of the chosen segments: "
        + fmt_int(ov.get("union"))
        + " users · "
        + " · ".join(f"{k}: {fmt_int(v)}" for k, v in sizes.items())
    )
    left, right = st.columns(2)
    with left:
        st.markdown("**Users in exactly these segments**")
        regions = pl.DataFrame(
            [
                {"segments": " + ".join(r["segments"]), "count": r["count"]}
                for r in ov.get("regions", [])
            ],
            schema={"segments": pl.String, "count": pl.Int64},
        )
        if regions.height:
            st.altair_chart(
                charts.hbar(regions, "segments", "count", value_title="Users"), width="stretch"
            )
    with right:
        st.markdown(f"**{name} and each other segment**")
        pairs = [p for p in ov.get("pairs", []) if name in (p["a"], p["b"])]
        rows = []
        for p in pairs:
            other = p["b"] if p["a"] == name else p["a"]
            both = p["intersection"]
            rows.append(
                {
                    "segment": other,
                    "in both": both,
                    f"share of {name}": both / sizes[name] if sizes.get(name) else None,
                    "share of other": both / sizes[other] if sizes.get(other) else None,
                    "jaccard": p["jaccard"],
                }
            )
        if rows:
            df = pl.DataFrame(rows)
            st.altair_chart(
                alt.Chart(df.to_pandas())
                .mark_bar()
                .encode(
                    y=alt.Y("segment:N", sort="-x", title=None),
                    x=alt.X(
                        f"share of {name}:Q",
                        axis=alt.Axis(format="%"),
                        title=f"Share of {name} also in...",
                    ),
                    tooltip=[
                        alt.Tooltip("segment:N"),
                        alt.Tooltip("in both:Q", format=","),
                        alt.Tooltip(f"share of {name}:Q", format=".1%"),
                        alt.Tooltip("share of other:Q", format=".1%"),
                        alt.Tooltip("jaccard:Q", format=".3f"),
                    ],
                )
                .properties(height=alt.Step(26)),
                width="stretch",
            )
