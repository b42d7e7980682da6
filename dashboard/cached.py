"""Cached runs of segcore queries, keyed on the query object, the engine, the store's version
and the report time zone chosen in the sidebar (run in that zone, docs/rules.md section 2).

``run(TrendQuery(...))`` runs the query's runner (:mod:`segcore.query.runners`) on the
engine chosen in the sidebar (``state.engine()``) once per store version (imports and
catalog edits invalidate), engine and query; the drill-downs (``members``,
``trend_actors``, ``reach_actors``) are cached the same way. Query objects and engines are
frozen and hashable: they are the cache key, nothing else is.
"""

from __future__ import annotations

from typing import Any

import polars as pl
import streamlit as st

from dashboard import state
from segcore.engine.choice import Engine
from segcore.lang.dates import report_zone
from segcore.query import (
    CompareQuery,
    EngagementQuery,
    EngagementTrendQuery,
    EventQuery,
    FunnelQuery,
    FunnelTrendQuery,
    MembersQuery,
    MembersResult,
    OverlapQuery,
    ProfileQuery,
    Query,
    ReachQuery,
    SqlQuery,
    Target,
    TrendQuery,
    UserQuery,
    UserSearchQuery,
    ValuesQuery,
    members_actors,
    reach_actors,
    trend_actors,
)
from segcore.query import run as run_query


def _of(target: Target) -> str:
    return f"'{target.segment}'" if target.segment is not None else "the rule"


def describe(query: Query) -> str:
    """What a query computes, in words (the text of its spinner)."""
    q: Any = query
    kind = type(query)
    if kind is MembersQuery:
        return f"Counting the members of {_of(q.target)}"
    if kind is TrendQuery:
        return f"Computing the size of {_of(q.target)} at every {q.every.value}"
    if kind is ReachQuery:
        return f"Computing who in {_of(q.target)} is reachable per channel"
    if kind is ProfileQuery:
        return f"Computing the profile of {_of(q.target)}"
    if kind in (EngagementQuery, EngagementTrendQuery):
        return f"Computing the engagement of {_of(q.target)}"
    if kind is OverlapQuery:
        return f"Computing the overlap of {len(q.items)} segments"
    if kind is CompareQuery:
        return f"Computing the sizes of {len(q.segments)} segments at every {q.every.value}"
    if kind is FunnelQuery:
        return f"Computing the {len(q.steps)}-step funnel"
    if kind is FunnelTrendQuery:
        return f"Computing the funnel's conversion per {q.every.value}"
    if kind is EventQuery:
        return f"Counting {len(q.events)} event(s) per {q.every.value}"
    if kind is SqlQuery:
        return f"Writing the SQL of {_of(q.target)}"
    if kind is UserQuery:
        return f"Loading user {q.user_id}"
    if kind is UserSearchQuery:
        return f"Looking for users matching '{q.text}'"
    if kind is ValuesQuery:
        return f"Finding the most frequent values of {q.column}"
    return "Computing"


def _key() -> tuple[str, str, Engine | str, str]:
    s = state.store()
    return str(s.home), s.version(), state.engine(), state.report_tz()


@st.cache_data(show_spinner=False, max_entries=1024)
def _run(home: str, version: str, engine: Engine | str, tz: str, query: Query) -> Any:
    with report_zone(tz):
        return run_query(state._store(home), query, engine=engine)


def run(query: Query) -> Any:
    """The result of ``query`` (see :mod:`segcore.query`), cached per store version.

    A spinner names what is computed (Streamlit shows it only after half a second, so a
    cached result shows none)."""
    with st.spinner(f"{describe(query)}...", show_time=True):
        return _run(*_key(), query)


@st.cache_data(show_spinner=False, max_entries=256)
def _members(home: str, version: str, engine: Engine | str, tz: str, query: MembersQuery,
             attributes: bool) -> pl.DataFrame:
    with report_zone(tz):
        return members_actors(state._store(home), query, attributes=attributes, engine=engine)


def members(query: MembersQuery, *, attributes: bool = False) -> pl.DataFrame:
    """The members of ``query`` (with the user attributes if asked), cached."""
    with st.spinner(f"Listing the members of {_of(query.target)}...", show_time=True):
        return _members(*_key(), query, attributes)


@st.cache_data(show_spinner=False, max_entries=256)
def _trend_actors(home: str, version: str, engine: Engine | str, tz: str, query: TrendQuery,
                  date: str, which: str) -> pl.DataFrame:
    with report_zone(tz):
        return trend_actors(state._store(home), query, date, which, engine=engine)


def trend_actors_of(query: TrendQuery, date: str, which: str) -> pl.DataFrame:
    """The users who ``entered``/``exited`` at the point of ``date``, cached."""
    with st.spinner(f"Listing who {which} {_of(query.target)} on {date}...", show_time=True):
        return _trend_actors(*_key(), query, date, which)


@st.cache_data(show_spinner=False, max_entries=256)
def _reach_actors(home: str, version: str, engine: Engine | str, tz: str, query: ReachQuery,
                  channel: str) -> pl.DataFrame:
    with report_zone(tz):
        return reach_actors(state._store(home), query, channel, engine=engine)


def reach_actors_of(query: ReachQuery, channel: str) -> pl.DataFrame:
    """The members reachable by ``channel`` (with its contact columns), cached."""
    with st.spinner(f"Listing the members reachable by {channel}...", show_time=True):
        return _reach_actors(*_key(), query, channel)


@st.cache_data(show_spinner=False, max_entries=64)
def _info(home: str, version: str, tz: str) -> dict[str, Any]:
    return state._store(home).info()


def info() -> dict[str, Any]:
    """``store.info()`` (cached; read from the store on every engine)."""
    with st.spinner("Reading the store's summary...", show_time=True):
        s = state.store()
        return _info(str(s.home), s.version(), state.report_tz())


def size(target: Target, as_of: str) -> MembersResult:
    """Members of ``target`` at ``as_of`` with all users and the share of them."""
    result: MembersResult = run(MembersQuery(target, as_of, share_of_all=True))
    return result


def segment_count(name: str, as_of: str) -> int:
    """Members of a saved segment at ``as_of``."""
    result: MembersResult = run(MembersQuery(Target(segment=name), as_of))
    return result.members
