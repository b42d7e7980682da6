"""segcore dashboard: the router (``streamlit run dashboard/app.py``).

Sets up the import path, the password gate, the first-start sample data and the
sidebar's as-of date, then runs the chosen page from ``dashboard/app_pages/``.
"""

from __future__ import annotations

import datetime as dt
import hmac
import os
import sys
import threading
from pathlib import Path

_HERE = Path(__file__).resolve().parent
for _p in (str(_HERE.parent),):  # the repo root: `segcore` and `dashboard` packages
    if _p not in sys.path:
        sys.path.insert(0, _p)

import streamlit as st  # noqa: E402

from dashboard import cached, state  # noqa: E402
from dashboard.widgets import guard  # noqa: E402


def _password() -> str | None:
    env = os.environ.get("SEGCORE_PASSWORD")
    if env:
        return env
    try:
        return st.secrets.get("password")  # type: ignore[no-any-return]
    except Exception:  # noqa: BLE001 - no secrets file
        return None


def password_ok() -> bool:
    """Ask for the password when one is configured (compared in constant time)."""
    expected = _password()
    if not expected or st.session_state.get("auth_ok"):
        return True
    st.title("segcore")
    with st.form("login"):
        given = st.text_input("Password", type="password", key="auth_password")
        submitted = st.form_submit_button("Sign in")
    if submitted:
        if hmac.compare_digest(given.encode(), str(expected).encode()):
            st.session_state["auth_ok"] = True
            st.session_state.pop("auth_password", None)
            st.rerun()
        st.error("Wrong password.")
    return False


@st.cache_resource(show_spinner=False)
def _first_start_lock() -> threading.Lock:
    return threading.Lock()


def first_start() -> None:
    """On an empty store, generate the sample data (with progress) and example segments.

    One session generates; others arriving meanwhile wait for it (a process-wide lock).
    """
    store = state.store()
    lock = _first_start_lock()
    if lock.locked():  # another session is writing the sample data: wait for it
        with st.spinner("Creating the sample data..."), lock:
            pass
    if not store.is_empty():
        return
    with lock:
        if store.is_empty():
            _generate(store)
    st.cache_data.clear()
    st.rerun()


def _generate(store) -> None:
    from segcore.examples import seed_examples
    from segcore.sample import generate

    users, days = state.sample_size()
    st.title("Welcome to segcore")
    st.write(
        f"The store at `{store.home}` is empty: creating sample data "
        f"({users:,} users, {days} days)..."
    )
    bar = st.progress(0.0, text="Starting...")

    def progress(fraction: float, message: str) -> None:
        bar.progress(min(max(float(fraction), 0.0), 1.0), text=message)

    end = dt.datetime.now(dt.timezone.utc).date()
    generate(store.home, users=users, days=days, end=end, seed=42, progress=progress)
    seed_examples(store)


def sidebar() -> None:
    """The as-of date (default: the day of the last event)."""
    info = cached.info()
    last = info.get("last_event")
    default = dt.date.fromisoformat(last[:10]) if last else dt.datetime.now(dt.timezone.utc).date()
    ss = st.session_state
    if ss.get("as_of_default") != default or not isinstance(ss.get("as_of_value"), dt.date):
        ss["as_of_default"] = default
        ss["as_of_value"] = default
    with st.sidebar:
        # the value lives in a plain session key: widget state does not survive page switches
        ss["as_of_value"] = st.date_input(
            "As of (end of day, UTC)",
            value=ss["as_of_value"],
            key=f"as_of_{default.isoformat()}",
            help="Segments are evaluated at the end of this day.",
        )
        st.caption(f"Store: `{Path(info['home']).name}`", help=info["home"])


def main() -> None:
    st.set_page_config(page_title="segcore", page_icon=":material/groups:", layout="wide")
    if not password_ok():
        return
    pages = [
        st.Page(
            state.PAGES["overview"], title="Overview", icon=":material/dashboard:", default=True
        ),
        st.Page(state.PAGES["segments"], title="Segments", icon=":material/list:"),
        st.Page(state.PAGES["builder"], title="Segment builder", icon=":material/tune:"),
        st.Page(state.PAGES["segment"], title="Segment", icon=":material/group:"),
        st.Page(state.PAGES["funnels"], title="Funnels", icon=":material/filter_alt:"),
        st.Page(state.PAGES["events"], title="Events", icon=":material/show_chart:"),
        st.Page(state.PAGES["user"], title="User lookup", icon=":material/person_search:"),
        st.Page(state.PAGES["data"], title="Data", icon=":material/database:"),
    ]
    page = st.navigation(pages)
    with guard():
        first_start()
    with guard():
        sidebar()
    with guard():
        state.restore_widgets()
        try:
            page.run()
        finally:
            state.remember_widgets()


main()
