"""Segment page: size, size over time, reachability, profile, overlap, members, rule,
history. Static segments: add and remove ids by hand (with undo); any segment: freeze its
members now into a new static segment; any version: restore it from the history."""

from __future__ import annotations

import datetime as dt
from functools import partial

import polars as pl
import streamlit as st

from dashboard import cached, charts, state
from dashboard.static_edit import pasted_ids, remember, show_last_change
from dashboard.widgets import (
    clicked_row,
    csv_bytes,
    download,
    fmt_int,
    fmt_pct,
    guard,
    parquet_bytes,
    segment_names,
    week_note,
)
from segcore.engine.sql.dialects import DIALECTS
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

store = state.store()
as_of = state.as_of()
ss = st.session_state

names = segment_names()
st.title("Segment")
if not names:
    st.info("No saved segments yet: create one in the Segment builder.")
    st.stop()
asked = st.query_params.get("segment")
if asked is not None and asked not in names:
    import difflib

    close = difflib.get_close_matches(asked, names, n=3, cutoff=0.5)
    st.error(f"There is no saved segment named '{asked}'"
             + (f"; did you mean {', '.join(repr(c) for c in close)}?" if close else "."))
    pick = st.selectbox("Open a segment", names, index=None, key="sp_pick_instead",
                        placeholder="Choose a segment...")
    if not pick:
        st.stop()
    st.query_params.clear()
    ss["segment"] = pick
    ss.pop("sp_pick_instead", None)
    st.rerun()
elif asked is not None and ss.get("sp_asked") != asked:
    ss["segment"] = asked
ss["sp_asked"] = asked
current = ss.get("segment") if ss.get("segment") in names else names[0]
if ss.get("sp_name") not in names:
    ss["sp_name"] = current
elif ss.get("segment") in names and ss.get("sp_last_nav") != ss.get("segment"):
    ss["sp_name"] = ss["segment"]
ss["sp_last_nav"] = ss.get("segment")
name = st.selectbox("Segment", names, key="sp_name")
ss["segment"] = name
seg = store.catalog.get(name)
# changes are made from the version the user saw (drawn by the previous run): a change
# someone else made meanwhile is a conflict, not overwritten
seen = ss["sp_seen"][1] if ss.get("sp_seen", ("", 0))[0] == name else seg.version
ss["sp_seen"] = (name, seg.version)
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
    b = st.columns([2, 3, 3])
    if b[0].button("Edit", key="sp_edit", icon=":material/edit:",
                   help="The list of ids" if seg.is_static else "The rule"):
        ss["b_reset"] = True
        state.go("builder", edit_segment=name)
    if b[1].button("Funnel", key="sp_funnel", icon=":material/filter_alt:",
                   help="Open the Funnels page for this segment's members"):
        state.go("funnels", fn_segment_default=name)
    if b[2].button("Freeze", key="sp_freeze", icon=":material/ac_unit:",
                   help="Save the members as of the sidebar date as a new static segment "
                        "(a fixed list, e.g. for a one-time campaign)"):
        ss["sp_freezing"] = name

if ss.get("sp_freezing") == name:
    with st.container(border=True), guard("freeze"):
        new_name = st.text_input(
            f"Name of the static copy of **{name}**'s {fmt_int(size.members)} members as of {as_of}",
            value=f"{name} {as_of}", key="sp_freeze_name",
        )
        fc = st.columns(6)
        if fc[0].button("Freeze", key="sp_freeze_go", type="primary"):
            frozen = store.freeze(name, new_name, as_of=as_of)
            ss.pop("sp_freezing", None)
            ss["sp_message"] = (
                f"Saved static segment '{frozen.name}' with {fmt_int(frozen.member_count)} "
                f"members of '{name}' as of {as_of}."
            )
            st.rerun()
        if fc[1].button("Cancel", key="sp_freeze_cancel"):
            ss.pop("sp_freezing", None)
            st.rerun()
if ss.get("sp_message"):
    st.success(ss.pop("sp_message"))
show_last_change("sp", as_of)

t_size, t_reach, t_profile, t_overlap, t_members, t_rule, t_history = st.tabs(
    ["Size over time", "Reachability", "Profile", "Overlap", "Members", "Rule & SQL", "History"]
)

with t_size, guard("size over time"):
    end_default = state.as_of_day()
    c = st.columns([3, 2])
    rng = c[0].date_input(
        "Range", value=(end_default - dt.timedelta(days=29), end_default), key="sp_range"
    )
    every = c[1].radio("Step", ["day", "week"], horizontal=True, key="sp_every")
    if isinstance(rng, tuple | list) and len(rng) == 2:
        trend_q = TrendQuery(target, DateRange(rng[0], rng[1]), every)
        tr = cached.run(trend_q).points
        note = week_note(rng[0], rng[1], every)
        if note:
            st.caption(note)
        st.altair_chart(charts.size_over_time(tr), width="stretch")
        if st.button("Compare with other segments", key="sp_compare",
                     icon=":material/stacked_line_chart:"):
            others = [n for n in names if n != name][:2]
            state.go("compare", cmp_segments=[name, *others], cmp_range=tuple(rng),
                     cmp_every=every)
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
            download(
                c[2],
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
    for ch_name, v in r["channels"].items():
        if v.get("error"):
            st.warning(f"Channel '{ch_name}' counts nobody: {v['error']} (fix it on the Data "
                       "page, Channels).")
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
        download(
            c[1],
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
    download(
        c[1],
        "CSV",
        partial(csv_bytes, df),
        file_name=f"{name}.csv",
        mime="text/csv",
        key="sp_dl_csv",
        icon=":material/download:",
    )
    download(
        c[2],
        "Parquet",
        partial(parquet_bytes, df),
        file_name=f"{name}.parquet",
        mime="application/octet-stream",
        key="sp_dl_parquet",
        icon=":material/download:",
    )
    lo = (int(page) - 1) * per_page
    shown = df.slice(lo, per_page)
    st.dataframe(
        shown,
        hide_index=True,
        key="sp_members",
        on_select="rerun",
        selection_mode="single-row",
        column_config={"total_spent": st.column_config.NumberColumn(format="%.2f")},
    )
    picked = clicked_row("sp_members")
    if picked is not None and picked < shown.height:
        ss.pop("sp_members", None)
        state.go("user", ul_id=shown["user_id"][picked])
    st.caption(
        f"Members {fmt_int(lo + 1 if df.height else 0)}-"
        f"{fmt_int(min(lo + per_page, df.height))} of {fmt_int(df.height)}"
    )
    if seg.is_static:
        st.markdown("**Change the list**")
        left, right = st.columns(2)
        with left:
            picked = st.multiselect(
                "Members of this page to remove",
                df.slice(lo, per_page)["user_id"].to_list(),
                key="sp_rm_ids",
            )
            if st.button("Remove selected", key="sp_rm_go", icon=":material/remove:",
                         disabled=not picked):
                remember(store.remove_members(name, picked, expect_version=seen))
                ss.pop("sp_rm_ids", None)
                st.rerun()
        with right:
            text = st.text_area("Ids to add (one per line, or separated by commas)",
                                key="sp_add_text", height=100)
            if st.button("Add ids", key="sp_add_go", icon=":material/add:"):
                ids = pasted_ids(text)
                if not ids:
                    st.error("Paste some ids to add.")
                else:
                    remember(store.add_members(name, ids, expect_version=seen))
                    ss.pop("sp_add_text", None)
                    st.rerun()

with t_rule, guard("rule"):
    if seg.kind == "static":
        st.write(f"Static segment with {fmt_int(seg.member_count)} stored ids.")
    else:
        st.markdown("**Rule**")
        st.code(seg.rule_text or "", language="sql")
    dialect = st.selectbox("SQL dialect", list(DIALECTS), key="sp_dialect")
    st.code(cached.run(SqlQuery(target, as_of, dialect)).sql, language="sql")

with t_history, guard("history"):
    hist = store.catalog.history(name)
    st.dataframe(
        pl.DataFrame(hist, infer_schema_length=None)
        .select("version", "action", "saved_at", "name", "member_count", "note",
                "rule_text", "description")
        .sort("version", descending=True),
        hide_index=True,
        key="sp_history",
    )
    earlier = [h["version"] for h in hist if h["version"] < seg.version][::-1]
    if earlier:
        c = st.columns([2, 2, 3], vertical_alignment="bottom")
        back = c[0].selectbox("Version", earlier, key="sp_hist_version")
        what = "members" if seg.is_static else "rule"
        if c[1].button("Restore this version", key="sp_hist_restore", icon=":material/history:",
                       help=f"The description and the {what} of that version come back "
                            "(as a new version; the name stays)"):
            back_seg = store.catalog.revert(name, back, expect_version=seen)
            ss["sp_message"] = (
                f"'{name}' is back to version {back} (now version {back_seg.version}"
                + (f", {fmt_int(back_seg.member_count)} ids stored" if seg.is_static else "")
                + ")."
            )
            st.rerun()
