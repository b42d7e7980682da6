"""Cached calls into segcore, keyed on the store's version (imports and edits invalidate).

``call("segcore.evaluate:count", rule, as_of=...)`` runs ``count(store, rule, as_of=...)``
once per store version and arguments.
"""

from __future__ import annotations

import importlib
import importlib.util
from collections.abc import Callable
from typing import Any

import streamlit as st

from dashboard import state


def resolve(target: str) -> Callable[..., Any]:
    """``"module:function"`` -> the function."""
    module, _, name = target.partition(":")
    return getattr(importlib.import_module(module), name)


def available(target: str) -> bool:
    """True when ``"module:function"`` exists in the installed segcore."""
    module, _, name = target.partition(":")
    try:
        if importlib.util.find_spec(module) is None:
            return False
        return hasattr(importlib.import_module(module), name)
    except ImportError:
        return False


@st.cache_data(show_spinner=False, max_entries=1024)
def _call(home: str, version: str, target: str, args: tuple, kwargs: dict) -> Any:
    store = state._store(home)
    with store.pinned():  # one consistent set of files even if an import lands meanwhile
        return resolve(target)(store, *args, **kwargs)


def call(target: str, *args: Any, **kwargs: Any) -> Any:
    """``target(store, *args, **kwargs)``, cached per store version."""
    s = state.store()
    return _call(str(s.home), s.version(), target, args, kwargs)


def info() -> dict[str, Any]:
    """``store.info()`` (cached)."""
    return call("dashboard.cached:_info")


def _info(store) -> dict[str, Any]:
    return store.info()


def universe_count(as_of: str) -> int:
    """Number of users in the universe at ``as_of`` (users table + users with events)."""
    return call("dashboard.cached:_universe_count", as_of)


def _universe_count(store, as_of: str) -> int:
    from segcore.evaluate import universe
    from segcore.timeutil import resolve_as_of

    return int(universe(store, resolve_as_of(as_of)).select("user_id").collect().height)


def segment_count(name: str, as_of: str) -> int:
    """Members of a saved segment at ``as_of``."""
    return call("segcore.evaluate:count", None, as_of=as_of, segment=name)
