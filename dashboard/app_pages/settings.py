"""Settings: the membership service's tokens and its clients' last syncs (docs/service.md)."""

from __future__ import annotations

import streamlit as st

from dashboard import state
from dashboard.widgets import guard
from segcore.service.state import tokens_and_syncs

store = state.store()
st.title("Settings")
st.subheader("Membership service")
st.caption(
    "Programs (bots, campaign tools) read segment memberships from `segcore serve` with a "
    "bearer token. Create one with `segcore token create NAME [--scope read|admin]` (it is "
    "shown once; only its hash is kept), remove one with `segcore token revoke NAME`."
)

with guard("service"):
    info = tokens_and_syncs(store.home)
    st.markdown("**Tokens**")
    if info["tokens"]:
        st.dataframe(
            [{"Name": t["name"], "Scope": t["scope"], "Created": t["created_at"],
              "Last used": t["last_used"] or "never", "Requests": t["requests"]}
             for t in info["tokens"]],
            hide_index=True, key="st_tokens",
        )
    else:
        st.info("No tokens yet: `segcore token create NAME`.")
    st.markdown("**Last syncs** (the change feed, per token and segment)")
    if info["syncs"]:
        st.dataframe(
            [{"Token": s["token"], "Segment": s["segment"], "At": s["at"],
              "Entered": s["entered"], "Left": s["left"], "Cursor": s["cursor"]}
             for s in info["syncs"]],
            hide_index=True, key="st_syncs",
        )
    else:
        st.info("No client has synced yet.")
