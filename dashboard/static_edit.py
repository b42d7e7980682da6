"""Static segments edited by hand (user page, segment page): the report of a change and
its undo (the catalog's ``revert`` to the version before it)."""

from __future__ import annotations

import re

import streamlit as st

from dashboard import cached, state
from dashboard.widgets import fmt_int, guard
from segcore.store.catalog import MembersReport

_LAST = "static_change"  # session key: the last change made in this session


def pasted_ids(text: str) -> list[str]:
    """Ids pasted one per line or separated by commas, semicolons or spaces."""
    return [i for i in re.split(r"[\s,;]+", text or "") if i]


def _ids(n: int | None) -> str:
    return f"{fmt_int(n)} id" + ("" if n == 1 else "s")


def describe(report: MembersReport) -> str:
    """One sentence: what the change did (the same counts as the CLI's report)."""
    extra = []
    if report.action == "add":
        text = f"Added {_ids(report.added)} to '{report.segment}'"
        if report.already_members:
            extra.append(f"{fmt_int(report.already_members)} already "
                         + ("a member" if report.already_members == 1 else "members"))
        if report.unknown:
            extra.append(f"{fmt_int(report.unknown)} not in the store yet (kept)")
    else:
        text = f"Removed {_ids(report.removed)} from '{report.segment}'"
        if report.not_members:
            extra.append(f"{fmt_int(report.not_members)} "
                         + ("was not a member" if report.not_members == 1 else "were not members"))
    if extra:
        text += " (" + ", ".join(extra) + ")"
    return text + f": {_ids(report.member_count)} stored, version {report.version}."


def remember(report: MembersReport) -> None:
    """Keep the change to show (with its undo) after the rerun."""
    st.session_state[_LAST] = {
        "segment": report.segment, "version": report.version, "text": describe(report),
    }


def show_last_change(prefix: str, as_of: str) -> None:
    """The last change of this session: its report, the size now, and an Undo button."""
    ss = st.session_state
    done = ss.pop(f"{_LAST}_done", None)
    if done:
        st.success(done)
    last = ss.get(_LAST)
    if not last:
        return
    with st.container(border=True), guard("undo"):
        c = st.columns([5, 1], vertical_alignment="center")
        size = cached.segment_count(last["segment"], as_of)
        c[0].success(f"{last['text']} Members now: {fmt_int(size)}.")
        if c[1].button("Undo", key=f"{prefix}_undo", icon=":material/undo:"):
            store = state.store()
            seg = store.catalog.revert(last["segment"], last["version"] - 1,
                                       expect_version=last["version"])
            ss.pop(_LAST, None)
            ss[f"{_LAST}_done"] = (
                f"Undone: '{seg.name}' is back to version {last['version'] - 1} "
                f"({_ids(seg.member_count)} stored, now version {seg.version})."
            )
            st.rerun()
