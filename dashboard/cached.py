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
    MembersQuery,
    MembersResult,
    Query,
    ReachQuery,
    Target,
    TrendQuery,
    members_actors,
    reach_actors,
    trend_actors,
)
from segcore.query import run as run_query


def _key() -> tuple[str, str, Engine, str]:
    s = state.store()
    return str(s.home), s.version(), state.engine(), state.report_tz()


@st.cache_data(show_spinner=False, max_entries=1024)
def _run(home: str, version: str, engine: Engine, tz: str, query: Query) -> Any:
    with report_zone(tz):
        return run_query(state._store(home), query, engine=engine)


def run(query: Query) -> Any:
    """The result of ``query`` (see :mod:`segcore.query`), cached per store version."""
    return _run(*_key(), query)


@st.cache_data(show_spinner=False, max_entries=256)
def _members(home: str, version: str, engine: Engine, tz: str, query: MembersQuery,
             attributes: bool) -> pl.DataFrame:
    with report_zone(tz):
        return members_actors(state._store(home), query, attributes=attributes, engine=engine)


def members(query: MembersQuery, *, attributes: bool = False) -> pl.DataFrame:
    """The members of ``query`` (with the user attributes if asked), cached."""
    return _members(*_key(), query, attributes)


@st.cache_data(show_spinner=False, max_entries=256)
def _trend_actors(home: str, version: str, engine: Engine, tz: str, query: TrendQuery,
                  date: str, which: str) -> pl.DataFrame:
    with report_zone(tz):
        return trend_actors(state._store(home), query, date, which, engine=engine)


def trend_actors_of(query: TrendQuery, date: str, which: str) -> pl.DataFrame:
    """The users who ``entered``/``exited`` at the point of ``date``, cached."""
    return _trend_actors(*_key(), query, date, which)


@st.cache_data(show_spinner=False, max_entries=256)
def _reach_actors(home: str, version: str, engine: Engine, tz: str, query: ReachQuery,
                  channel: str) -> pl.DataFrame:
    with report_zone(tz):
        return reach_actors(state._store(home), query, channel, engine=engine)


def reach_actors_of(query: ReachQuery, channel: str) -> pl.DataFrame:
    """The members reachable by ``channel`` (with its contact columns), cached."""
    return _reach_actors(*_key(), query, channel)


@st.cache_data(show_spinner=False, max_entries=64)
def _info(home: str, version: str, tz: str) -> dict[str, Any]:
    return state._store(home).info()


def info() -> dict[str, Any]:
    """``store.info()`` (cached; read from the store on every engine)."""
    s = state.store()
    return _info(str(s.home), s.version())


def size(target: Target, as_of: str) -> MembersResult:
    """Members of ``target`` at ``as_of`` with all users and the share of them."""
    result: MembersResult = run(MembersQuery(target, as_of, share_of_all=True))
    return result


def segment_count(name: str, as_of: str) -> int:
    """Members of a saved segment at ``as_of``."""
    result: MembersResult = run(MembersQuery(Target(segment=name), as_of))
    return result.members
