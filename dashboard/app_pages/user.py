"""User lookup: attributes, recent events and current segments of one user; adding the
user to a static segment or removing them from one."""

from __future__ import annotations

import polars as pl
import streamlit as st

from dashboard import cached, state
from dashboard.static_edit import remember, show_last_change
from dashboard.widgets import clicked_row, fmt_int, guard
from segcore.errors import NotFoundError
from segcore.query import UserQuery, UserSearchQuery

store = state.store()
as_of = state.as_of()
st.title("User lookup")

if "ul_pick" in st.session_state:  # a row of the matches was clicked (previous run)
    st.session_state["ul_id"] = st.session_state.pop("ul_pick")
typed = st.text_input("User id, email or name", key="ul_id",
                      placeholder="e.g. u000042, priya@ or Rossi").strip()
if not typed:
    sample = store.scan_users().select("user_id").head(3).collect()["user_id"].to_list()
    if sample:
        st.caption("For example: " + ", ".join(f"`{u}`" for u in sample))
    st.stop()
with guard("search"):
    found = cached.run(UserSearchQuery(typed)).rows
    if typed not in found["user_id"].to_list() and found.height:
        st.caption(f"{fmt_int(found.height)} user(s) match"
                   + (" (the first 20)" if found.height == 20 else "") + ": click one.")
        st.dataframe(found, hide_index=True, key="ul_matches", on_select="rerun",
                     selection_mode="single-row")
        picked = clicked_row("ul_matches")
        if picked is not None:
            st.session_state["ul_pick"] = found["user_id"][picked]
            st.session_state.pop("ul_matches", None)
            st.rerun()
        st.stop()
uid = typed  # an id (also of a user who only has events)



def _static_segments(uid: str) -> None:
    """Add the user to a static segment or remove them from one (undo: the last change)."""
    st.subheader("Static segments")
    show_last_change("ul", as_of)
    statics = [s for s in store.catalog.list() if s.is_static]
    if not statics:
        st.caption("No static segments: save a list of ids in the Segment builder.")
        return
    holding = store.catalog.member_of(uid)
    # changes are made from the versions the user saw (drawn by the previous run)
    seen = {**{s.name: s.version for s in statics}, **st.session_state.get("ul_seen", {})}
    st.session_state["ul_seen"] = {s.name: s.version for s in statics}
    for name in holding:
        c = st.columns([3, 2], vertical_alignment="center")
        c[0].write(name)
        if c[1].button("Remove from segment", key=f"ul_rm_{name}", icon=":material/remove:"):
            with guard("remove"):
                remember(store.remove_members(name, [uid], expect_version=seen[name]))
                st.rerun()
    others = [s.name for s in statics if s.name not in holding]
    if others:
        c = st.columns([3, 2], vertical_alignment="bottom")
        target = c[0].selectbox("Add to static segment", others, key="ul_add_target")
        if c[1].button("Add to segment", key="ul_add", icon=":material/add:"):
            with guard("add"):
                remember(store.add_members(target, [uid], expect_version=seen[target]))
                st.rerun()


with guard("user"):
    try:
        prof = cached.run(UserQuery(uid, as_of, last_events=50))
    except NotFoundError:
        st.warning(f"No user has the id, email or name '{typed}'.")
        st.stop()
    c = st.columns(4)
    c[0].metric("Events before as-of", fmt_int(prof["events"]))
    c[1].metric(
        "First event", str(prof["first_event"] or "-")[:10], help=str(prof["first_event"] or "")
    )
    c[2].metric(
        "Last event", str(prof["last_event"] or "-")[:10], help=str(prof["last_event"] or "")
    )
    c[3].metric("Segments now", fmt_int(len(prof["segments"])))
    left, right = st.columns([2, 3])
    with left:
        st.subheader("Attributes")
        attrs = prof["attributes"]
        if attrs:
            st.dataframe(
                [
                    {
                        "attribute": k,
                        "value": ", ".join(map(str, v))
                        if isinstance(v, list)
                        else ("" if v is None else str(v)),
                    }
                    for k, v in attrs.items()
                ],
                hide_index=True,
                key="ul_attrs",
            )
        else:
            st.info("No row in the users table (the user only has events).")
        st.subheader("Segments now")
        if prof["segments"]:
            for name in prof["segments"]:
                if st.button(name, key=f"ul_seg_{name}", icon=":material/group:"):
                    state.go("segment", segment=name)
        else:
            st.write("In no saved segment.")
        _static_segments(uid)
    with right:
        st.subheader("Recent events")
        recent = pl.DataFrame(prof["latest_events"]) if prof["latest_events"] else pl.DataFrame()
        if recent.height:
            props = [c for c in recent.columns if c not in ("user_id", "event", "ts", "event_id")]
            details = (
                pl.concat_str(
                    [
                        pl.when(pl.col(c).is_not_null()).then(
                            pl.lit(f"{c}=") + pl.col(c).cast(pl.String)
                        )
                        for c in props
                    ],
                    separator=", ",
                    ignore_nulls=True,
                )
                if props
                else pl.lit("")
            )
            st.dataframe(
                recent.select(
                    pl.col("ts").dt.convert_time_zone(state.report_tz())
                    .dt.strftime("%Y-%m-%d %H:%M:%S").alias(f"time ({state.report_tz()})"),
                    "event",
                    details.alias("details"),
                ),
                hide_index=True,
                key="ul_events",
            )
        else:
            st.write("No events.")
