"""Shared state of the dashboard: the store handle, the as-of date, page links."""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path

import streamlit as st

from segcore.api import Store
from segcore.engine.choice import ENGINE_NAMES, Engine
from segcore.query.auto import AUTO
from segcore.store.settings import read_settings

DEFAULT_SAMPLE_USERS = 10_000
DEFAULT_SAMPLE_DAYS = 180

PAGES = {
    "overview": "app_pages/overview.py",
    "segments": "app_pages/segments.py",
    "builder": "app_pages/builder.py",
    "segment": "app_pages/segment.py",
    "compare": "app_pages/compare.py",
    "funnels": "app_pages/funnels.py",
    "events": "app_pages/events.py",
    "retention": "app_pages/retention.py",
    "user": "app_pages/user.py",
    "data": "app_pages/data.py",
    "settings": "app_pages/settings.py",
}


def home_path() -> Path:
    """The store folder: ``SEGCORE_HOME`` or ``./data``, relative to the current directory."""
    return Path(os.environ.get("SEGCORE_HOME") or "data").resolve()


@st.cache_resource(show_spinner=False)
def _store(home: str) -> Store:
    return Store(home, background_cache=True)  # long-lived: fill the cache meanwhile


def store() -> Store:
    """The (cached) Store handle for :func:`home_path`."""
    return _store(str(home_path()))


def sample_size() -> tuple[int, int]:
    """Users and days of the first-start sample (``SEGCORE_SAMPLE_USERS``/``_DAYS``)."""
    users = int(os.environ.get("SEGCORE_SAMPLE_USERS") or DEFAULT_SAMPLE_USERS)
    days = int(os.environ.get("SEGCORE_SAMPLE_DAYS") or DEFAULT_SAMPLE_DAYS)
    return users, days


def report_tz() -> str:
    """The report time zone chosen in the sidebar (default: the store's setting)."""
    tz = st.session_state.get("report_tz")
    return tz if isinstance(tz, str) and tz else read_settings(home_path())["timezone"]


def as_of() -> str:
    """The evaluation instant chosen in the sidebar: ``YYYY-MM-DD`` (the end of that day in
    the report time zone, :func:`report_tz`), or on the default day of a store whose data
    reaches today, the default instant "now" (an ISO timestamp; ``Store.default_as_of``)."""
    ss = st.session_state
    day = ss.get("as_of_value")
    if not isinstance(day, dt.date):
        return dt.datetime.now(dt.timezone.utc).date().isoformat()
    now = ss.get("as_of_now")
    if now and day == ss.get("as_of_default"):
        return str(now)
    return day.isoformat()


def as_of_day() -> dt.date:
    """The day of :func:`as_of` (date ranges that end "now" end on it)."""
    day = st.session_state.get("as_of_value")
    return day if isinstance(day, dt.date) else dt.datetime.now(dt.timezone.utc).date()


ENGINE_KEY = "engine_value"  # plain session keys: they survive page switches
MASTER_KEY = "spark_master_value"


def default_engine() -> Engine | str:
    """The engine a new session starts with: ``SEGCORE_ENGINE`` (default ``auto``, the
    runners' automatic choice, :mod:`segcore.query.auto`), and for Spark
    ``SEGCORE_SPARK_MASTER`` as the master URL."""
    name = (os.environ.get("SEGCORE_ENGINE") or AUTO).strip().lower()
    if name not in ENGINE_NAMES:
        return AUTO
    master = os.environ.get("SEGCORE_SPARK_MASTER") if name == "spark" else None
    return Engine(name, master or None)  # type: ignore[arg-type]


def set_engine(name: str, master: str | None) -> Engine | str:
    """Choose the engine every page runs its queries on (the sidebar's setting; ``auto``
    leaves the choice to the runners)."""
    choice: Engine | str = AUTO if name == AUTO else Engine(  # type: ignore[arg-type]
        name, (master or None) if name == "spark" else None)
    st.session_state[ENGINE_KEY] = AUTO if choice == AUTO else choice.name  # type: ignore[union-attr]
    st.session_state[MASTER_KEY] = "" if choice == AUTO else (choice.master or "")  # type: ignore[union-attr]
    return choice


def engine() -> Engine | str:
    """The engine chosen in the sidebar (see :func:`default_engine` before any choice):
    an :class:`Engine`, or ``"auto"``."""
    ss = st.session_state
    if ENGINE_KEY not in ss:
        first = default_engine()
        if first == AUTO:
            return set_engine(AUTO, None)
        return set_engine(first.name, first.master)  # type: ignore[union-attr]
    name = ss[ENGINE_KEY]
    if name == AUTO:
        return AUTO
    return Engine(name, (ss.get(MASTER_KEY) or None) if name == "spark" else None)


# date ranges of the pages; one ending at the as-of date moves with it
RANGE_KEYS = ("sp_range", "fn_range", "ev_range", "cmp_range")


def follow_as_of() -> None:
    """When the sidebar's as-of date moved, move the pages' date ranges that ended on the
    old date by as many days (their length kept), remembered ones included."""
    ss = st.session_state
    new, old = ss.get("as_of_value"), ss.get("as_of_followed")
    ss["as_of_followed"] = new
    if not isinstance(new, dt.date) or not isinstance(old, dt.date) or new == old:
        return
    delta = new - old
    kept = ss.get(_STORE, {})
    for where in (ss, kept):
        for key in RANGE_KEYS:
            rng = where.get(key)
            if isinstance(rng, tuple | list) and len(rng) == 2 and rng[1] == old:
                where[key] = (rng[0] + delta, rng[1] + delta)


def go(page: str, **params: str) -> None:
    """Switch to one of :data:`PAGES`, remembering ``params`` in the session."""
    for key, value in params.items():
        st.session_state[key] = value
    st.switch_page(PAGES[page])


# Streamlit forgets a widget's value when a run does not draw it (another page).
# These page widgets keep their values across page switches.
KEEP_KEYS = (
    "sl_search",
    "b_name",
    "b_desc",
    "sp_range",
    "sp_every",
    "sp_dialect",
    "fn_win_n",
    "fn_win_u",
    "fn_range",
    "fn_every",
    "fn_strict",
    "fn_any",
    "fn_excl",
    "fn_hold",
    "fn_segment",
    "fn_compare",
    "ev_events",
    "ev_range",
    "ev_every",
    "ev_mode",
    "ev_segment",
    "ev_segments",
    "ev_by",
    "ev_top",
    "ev_measure",
    "ul_id",
    "cmp_segments",
    "cmp_range",
    "cmp_every",
    "cmp_measure",
)
KEEP_PREFIXES: tuple[str, ...] = ()
_STORE = "_kept_widgets"


def _kept(key: object) -> bool:
    return isinstance(key, str) and (key in KEEP_KEYS or key.startswith(KEEP_PREFIXES))


def restore_widgets() -> None:
    """Put back the remembered values of page widgets that Streamlit dropped."""
    ss = st.session_state
    for key, value in ss.get(_STORE, {}).items():
        if key not in ss:
            ss[key] = value


def remember_widgets() -> None:
    """Remember the current values of the page widgets of :data:`KEEP_KEYS`."""
    ss = st.session_state
    kept = dict(ss.get(_STORE, {}))
    kept.update({k: ss[k] for k in list(ss.keys()) if _kept(k)})
    ss[_STORE] = kept
