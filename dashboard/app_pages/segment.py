"""Segment page: size, size over time, reachability, profile, overlap, members, rule."""

from __future__ import annotations

import datetime as dt
from functools import partial

import polars as pl
import streamlit as st

from dashboard import cached, charts, state
from dashboard.widgets import (
    csv_bytes,
    fmt_int,
    fmt_pct,
    guard,
    parquet_bytes,
    segment_names,
)
from segcore.query import (
    DateRange,
    EngagementQuery,
    MembersQuery,
    OverlapQuery,
    ProfileQuery,
    ReachQuery,
    SqlQuery,
    Target,
    TrendQuery,
)
from segcore.sql.dialects import DIALECTS

store = state.store()
as_of = state.as_of()
ss = st.session_state

names = segment_names()
st.title("Segment")
if not names:
    st.info("No saved segments yet: create one in the Segment builder.")
    st.stop()
if st.query_params.get("segment") in names and "sp_name" not in ss:
    ss["segment"] = st.query_params["segment"]
current = ss.get("segment") if ss.get("segment") in names else names[0]
if ss.get("sp_name") not in names:
    ss["sp_name"] = current
elif ss.get("segment") in names and ss.get("sp_last_nav") != ss.get("segment"):
    ss["sp_name"] = ss["segment"]
ss["sp_last_nav"] = ss.get("segment")
name = st.selectbox("Segment", names, key="sp_name")
ss["segment"] = name
seg = store.catalog.get(name)
st.caption(
    f"{seg.kind.capitalize()} segment · version {seg.version} · last edit "
    f"{seg.updated_at[:16].replace('T', ' ')}"
    + (f" · {seg.description}" if seg.description else "")
)

target = Target(segment=name)
size = cached.size(target, as_of)
c = st.columns([1, 1, 1, 3])
c[0].metric("Members now", fmt_int(size.members))
c[1].metric("Share of all users", fmt_pct(size.share_of_all if size.all_users else None))
c[2].metric("All users", fmt_int(size.all_users))
with guard("engagement"):
    eng = cached.run(EngagementQuery(target, as_of))
    st.caption(
        f"Active in the last 7 days: {fmt_pct(eng['active_7d']['share'])} · "
        f"last 30 days: {fmt_pct(eng['active_30d']['share'])} of the members"
    )
with c[3]:
    b = st.columns(2)
    if b[0].button("Edit", key="sp_edit", icon=":material/edit:"):
        ss["b_reset"] = True
        state.go("builder", edit_segment=name)
    if b[1].button("Funnel for this segment", key="sp_funnel", icon=":material/filter_alt:"):
        state.go("funnels", fn_segment_default=name)

t_size, t_reach, t_profile, t_overlap, t_members, t_rule = st.tabs(
    ["Size over time", "Reachability", "Profile", "Overlap", "Members", "Rule & SQL"]
)

with t_size, guard("size over time"):
    end_default = dt.date.fromisoformat(as_of)
    c = st.columns([3, 2])
    rng = c[0].date_input(
        "Range", value=(end_default - dt.timedelta(days=29), end_default), key="sp_range"
    )
    every = c[1].radio("Step", ["day", "week"], horizontal=True, key="sp_every")
    if isinstance(rng, tuple | list) and len(rng) == 2:
        trend_q = TrendQuery(target, DateRange(rng[0], rng[1]), every)
        tr = cached.run(trend_q).points
        st.altair_chart(charts.size_over_time(tr), width="stretch")
        if tr.height:
            last = tr.row(-1, named=True)
            st.caption(
                f"Over the range: {fmt_int(tr['entered'].sum())} entries, "
                f"{fmt_int(tr['exited'].sum())} exits; {fmt_int(last['members'])} "
                f"members on {last['date']}."
            )
            c = st.columns([2, 2, 2], vertical_alignment="bottom")
            day = c[0].selectbox(
                "Who changed on", tr["date"].to_list()[::-1], key="sp_change_day"
            )
            which = c[1].radio(
                "List", ["entered", "exited"], horizontal=True, key="sp_change_which"
            )
            who = cached.trend_actors_of(trend_q, day.isoformat(), which)
            c[2].download_button(
                f"{fmt_int(who.height)} users who {which} (CSV)",
                partial(csv_bytes, who),
                file_name=f"{name}-{which}-{day}.csv",
                mime="text/csv",
                key="sp_change_dl",
                icon=":material/download:",
            )
    else:
        st.info("Pick a start and an end date.")

with t_reach, guard("reachability"):
    reach_q = ReachQuery(target, as_of)
    r = cached.run(reach_q).to_dict()
    ch = pl.DataFrame(
        [
            {"channel": k, "count": v["count"], "share": v["share"]}
            for k, v in r["channels"].items()
        ],
        schema={"channel": pl.String, "count": pl.Int64, "share": pl.Float64},
    )
    c = st.columns(3)
    share = fmt_pct(r["any_share"]) if r["members"] else "-"
    c[0].metric("Reachable by any channel", fmt_int(r["any"]), help=f"{share} of the members")
    c[1].metric("Not reachable", fmt_int(r["none"]))
    c[2].metric("Members", fmt_int(r["members"]))
    import altair as alt

    left, right = st.columns(2)
    with left:
        st.markdown("**Per channel**")
        if ch.height:
            st.altair_chart(
                charts.hbar(
                    ch,
                    "channel",
                    "count",
                    value_title="Members",
                    extra_tooltip=[alt.Tooltip("share:Q", format=".1%")],
                ),
                width="stretch",
            )
    with right:
        st.markdown("**Channel overlap** (members reachable by exactly these channels)")
        combos = pl.DataFrame(
            [
                {"channels": " + ".join(x["channels"]) or "(none)", "count": x["count"]}
                for x in r.get("combinations", [])
            ],
            schema={"channels": pl.String, "count": pl.Int64},
        )
        if combos.height:
            st.altair_chart(
                charts.hbar(
                    combos.sort("count", descending=True).head(16),
                    "channels",
                    "count",
                    value_title="Members",
                ),
                width="stretch",
            )
    st.markdown("**Export for a campaign**")
    c = st.columns([2, 2, 4], vertical_alignment="bottom")
    channel = c[0].selectbox("Channel", list(r["channels"]), key="sp_channel")
    if channel:
        reach_df = cached.reach_actors_of(reach_q, channel)
        if isinstance(reach_df, pl.DataFrame):
            c[1].download_button(
                f"Download {fmt_int(reach_df.height)} ids (CSV)",
                partial(csv_bytes, reach_df),
                file_name=f"{name}-{channel}.csv",
                mime="text/csv",
                key="sp_reach_dl",
            )

with t_profile, guard("profile"):
    prof = cached.run(ProfileQuery(target, as_of)).report
    from dashboard.profile_view import show_profile

    show_profile(prof)

with t_overlap, guard("overlap"):
    others = [n for n in names if n != name]
    if not others:
        st.info("Save another segment to compare.")
    else:
        chosen = st.multiselect(
            "Compare with (up to 4)",
            others,
            default=others[:3],
            max_selections=4,
            key="sp_overlap_with",
        )
        if chosen:
            ov = cached.run(OverlapQuery((name, *chosen), as_of)).report
            from dashboard.profile_view import show_overlap

            show_overlap(ov, name)
        else:
            st.info("Choose at least one segment to compare with.")

with t_members, guard("members"):
    df = cached.members(MembersQuery(target, as_of), attributes=True)
    per_page = 50
    pages = max(1, -(-df.height // per_page))
    c = st.columns([1, 1, 1, 3], vertical_alignment="bottom")
    page = c[0].number_input(
        f"Page (of {pages:,})", min_value=1, max_value=pages, value=1, key="sp_page"
    )
    c[1].download_button(
        "CSV",
        partial(csv_bytes, df),
        file_name=f"{name}.csv",
        mime="text/csv",
        key="sp_dl_csv",
        icon=":material/download:",
    )
    c[2].download_button(
        "Parquet",
        partial(parquet_bytes, df),
        file_name=f"{name}.parquet",
        mime="application/octet-stream",
        key="sp_dl_parquet",
        icon=":material/download:",
    )
    lo = (int(page) - 1) * per_page
    st.dataframe(
        df.slice(lo, per_page),
        hide_index=True,
        key="sp_members",
        column_config={"total_spent": st.column_config.NumberColumn(format="%.2f")},
    )
    st.caption(
        f"Members {fmt_int(lo + 1 if df.height else 0)}-"
        f"{fmt_int(min(lo + per_page, df.height))} of {fmt_int(df.height)}"
    )

with t_rule, guard("rule"):
    if seg.kind == "static":
        st.write(f"Static segment with {fmt_int(seg.member_count)} stored ids.")
    else:
        st.markdown("**Rule**")
        st.code(seg.rule_text or "", language="sql")
    dialect = st.selectbox("SQL dialect", list(DIALECTS), key="sp_dialect")
    st.code(cached.run(SqlQuery(target, as_of, dialect)).sql, language="sql")
