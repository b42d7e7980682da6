"""Segments: search, sizes, and the actions view / edit / clone / delete / new."""

from __future__ import annotations

import streamlit as st

from dashboard import cached, state
from dashboard.widgets import fmt_int, guard

st.title("Segments")
store = state.store()
as_of = state.as_of()

top = st.columns([3, 1])
search = top[0].text_input("Search", key="sl_search", placeholder="Name or description")
if top[1].button("New segment", key="sl_new", type="primary", icon=":material/add:"):
    st.session_state.pop("edit_segment", None)
    st.session_state["b_reset"] = True
    state.go("builder")

msg = st.session_state.pop("sl_message", None)
if msg:
    st.success(msg)

segs = store.catalog.list(search=search or None)
if not segs:
    st.info("No segments match." if search else "No saved segments yet: create one.")

head = st.columns([3, 1.3, 1.3, 4, 2, 2.6])
for col, label in zip(
    head, ["Name", "Kind", "Members", "Description", "Last edit", "Actions"], strict=True
):
    col.markdown(f"**{label}**")

for seg in segs:
    with guard(seg.name):
        cols = st.columns([3, 1.3, 1.3, 4, 2, 2.6])
        if cols[0].button(seg.name, key=f"sl_open_{seg.id}", type="tertiary",
                          help=f"Open the page of {seg.name}"):
            state.go("segment", segment=seg.name)
        cols[1].write(seg.kind)
        cols[2].write(fmt_int(cached.segment_count(seg.name, as_of)))
        cols[3].write(seg.description or "")
        cols[4].write(seg.updated_at[:16].replace("T", " "))
        b = cols[5].columns(4)
        if b[0].button("", key=f"sl_view_{seg.id}", icon=":material/visibility:", help="View"):
            state.go("segment", segment=seg.name)
        if b[1].button("", key=f"sl_edit_{seg.id}", icon=":material/edit:", help="Edit"):
            st.session_state["b_reset"] = True
            state.go("builder", edit_segment=seg.name)
        if b[2].button("", key=f"sl_clone_{seg.id}", icon=":material/content_copy:", help="Clone"):
            st.session_state["sl_cloning"] = seg.name
        if b[3].button("", key=f"sl_delete_{seg.id}", icon=":material/delete:", help="Delete"):
            st.session_state["sl_deleting"] = seg.name


@st.dialog("Delete segment", on_dismiss=lambda: st.session_state.pop("sl_deleting", None))
def confirm_delete(name: str) -> None:
    """The confirmation, in a dialog over the list (wherever the row is)."""
    with guard("delete"):
        seg = store.catalog.get(name)
        st.warning(f"Delete segment **{name}** ({fmt_int(cached.segment_count(name, as_of))} "
                   "members)? It can be restored below the list (Deleted segments).")
        c = st.columns(2)
        if c[0].button("Delete", key="sl_confirm_delete", type="primary"):
            store.catalog.delete(name, expect_version=seg.version)
            st.session_state.pop("sl_deleting", None)
            st.session_state["sl_message"] = f"Deleted segment '{name}'."
            st.rerun()
        if c[1].button("Cancel", key="sl_cancel_delete"):
            st.session_state.pop("sl_deleting", None)
            st.rerun()


deleting = st.session_state.get("sl_deleting")
if deleting:
    confirm_delete(deleting)

cloning = st.session_state.get("sl_cloning")
if cloning:
    with st.container(border=True), guard("clone"):
        new = st.text_input(
            f"Name of the copy of **{cloning}**", value=f"{cloning} (copy)", key="sl_clone_name"
        )
        c = st.columns(6)
        if c[0].button("Clone", key="sl_confirm_clone", type="primary"):
            store.catalog.clone(cloning, new)
            st.session_state.pop("sl_cloning", None)
            st.session_state["sl_message"] = f"Cloned '{cloning}' as '{new}'."
            st.rerun()
        if c[1].button("Cancel", key="sl_cancel_clone"):
            st.session_state.pop("sl_cloning", None)
            st.rerun()

live = {s.name for s in store.catalog.list()}
deleted = list({d.name: d for d in sorted(store.catalog.list(include_deleted=True),
                                          key=lambda d: d.deleted_at or "")
                if d.deleted_at and d.name not in live}.values())
if deleted:
    with st.expander(f"Deleted segments ({len(deleted)})"), guard("restore"):
        for seg in deleted:
            c = st.columns([3, 3, 2], vertical_alignment="center")
            c[0].write(seg.name)
            c[1].caption(f"deleted {seg.deleted_at[:16].replace('T', ' ')}")
            if c[2].button("Restore", key=f"sl_restore_{seg.id}", icon=":material/restore:"):
                back = store.catalog.restore(seg.name)
                st.session_state["sl_message"] = f"Restored segment '{back.name}'."
                st.rerun()
