"""Shared state of the dashboard: the store handle, the as-of date, page links."""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path

import streamlit as st

from segcore.store import Store

DEFAULT_SAMPLE_USERS = 10_000
DEFAULT_SAMPLE_DAYS = 180

PAGES = {
    "overview": "app_pages/overview.py",
    "segments": "app_pages/segments.py",
    "builder": "app_pages/builder.py",
    "segment": "app_pages/segment.py",
    "funnels": "app_pages/funnels.py",
    "events": "app_pages/events.py",
    "user": "app_pages/user.py",
    "data": "app_pages/data.py",
}


def home_path() -> Path:
    """The store folder: ``SEGCORE_HOME`` or ``./data``, relative to the current directory."""
    return Path(os.environ.get("SEGCORE_HOME") or "data").resolve()


@st.cache_resource(show_spinner=False)
def _store(home: str) -> Store:
    return Store(home)


def store() -> Store:
    """The (cached) Store handle for :func:`home_path`."""
    return _store(str(home_path()))


def sample_size() -> tuple[int, int]:
    """Users and days of the first-start sample (``SEGCORE_SAMPLE_USERS``/``_DAYS``)."""
    users = int(os.environ.get("SEGCORE_SAMPLE_USERS") or DEFAULT_SAMPLE_USERS)
    days = int(os.environ.get("SEGCORE_SAMPLE_DAYS") or DEFAULT_SAMPLE_DAYS)
    return users, days


def as_of() -> str:
    """The evaluation date chosen in the sidebar (``YYYY-MM-DD``; end of that UTC day)."""
    day = st.session_state.get("as_of")
    if isinstance(day, dt.date):
        return day.isoformat()
    return dt.datetime.now(dt.timezone.utc).date().isoformat()


def go(page: str, **params: str) -> None:
    """Switch to one of :data:`PAGES`, remembering ``params`` in the session."""
    for key, value in params.items():
        st.session_state[key] = value
    st.switch_page(PAGES[page])
