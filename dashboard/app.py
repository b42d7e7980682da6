"""segcore dashboard: the router (``streamlit run dashboard/app.py``).

Sets up the import path, the password gate, the first-start sample data and the
sidebar's report time zone and as-of date, then runs the chosen page from ``dashboard/app_pages/``.
"""

from __future__ import annotations

import datetime as dt
import math
import os
import sys
import threading
from pathlib import Path

_HERE = Path(__file__).resolve().parent
for _p in (str(_HERE.parent),):  # the repo root: `segcore` and `dashboard` packages
    if _p not in sys.path:
        sys.path.insert(0, _p)

import streamlit as st  # noqa: E402

from dashboard import cached, exposure, state  # noqa: E402
from dashboard.widgets import guard  # noqa: E402
from segcore.lang.dates import (  # noqa: E402
    DEFAULT_AS_OF_RULE,
    as_zone,
    default_as_of,
    report_zone,
)
from segcore.store.settings import read_settings  # noqa: E402

# offered in the sidebar besides UTC and the store's own zone
COMMON_ZONES = ("America/Los_Angeles", "America/New_York", "America/Sao_Paulo",
                "Europe/London", "Europe/Berlin", "Asia/Kolkata", "Asia/Singapore",
                "Asia/Tokyo", "Australia/Sydney", "Australia/Lord_Howe")


def _password() -> str | None:
    env = os.environ.get("SEGCORE_PASSWORD")
    if env:
        return env
    try:
        return st.secrets.get("password")  # type: ignore[no-any-return]
    except Exception:  # noqa: BLE001 - no secrets file
        return None


def bound_safely() -> bool:
    """Serve nothing beyond loopback unless ``SEGCORE_ALLOW_REMOTE`` and a password are set."""
    address = st.get_option("server.address")
    if exposure.bound_to_loopback(address):
        return True
    if exposure.remote_allowed() and _password():
        return True
    st.title("segcore")
    st.error(
        f"The dashboard is listening on {address or 'every network interface'}, not only "
        "on this computer: nothing is served. Start it with `--server.address 127.0.0.1`, "
        f"or set both {exposure.ALLOW_REMOTE_ENV}=1 and SEGCORE_PASSWORD to serve the network."
    )
    return False


def password_ok() -> bool:
    """Ask for the password when one is configured; wrong tries are throttled."""
    expected = _password()
    ss = st.session_state
    if not expected or ss.get("auth_ok"):
        return True
    st.title("segcore")
    with st.form("login"):
        given = st.text_input("Password", type="password", key="auth_password")
        submitted = st.form_submit_button("Sign in")
    if not submitted:
        return False
    ss.pop("auth_password", None)
    failures = int(ss.get("auth_failures", 0))
    wait = exposure.THROTTLE.wait(failures, ss.get("auth_last_failure"))
    if wait > 0:
        st.error(f"Too many wrong passwords: try again in {math.ceil(wait)} s.")
        return False
    if exposure.same_secret(given, str(expected)):
        ss["auth_ok"] = True
        ss.pop("auth_failures", None)
        st.rerun()
    ss["auth_failures"] = failures + 1
    ss["auth_last_failure"] = exposure.THROTTLE.failed()
    st.error("Wrong password.")
    return False


def protect_downloads() -> None:
    """Downloads go only to signed-in browsers (see ``dashboard.exposure``).

    Where that cannot be enforced (another media storage, no XSRF cookie with a password
    set), download buttons are disabled instead.
    """
    from streamlit import runtime

    storage = None
    if runtime.exists():
        storage = getattr(runtime.get_instance().media_file_mgr, "_storage", None)
    required = bool(_password())
    ok = exposure.guard_downloads(storage, password_required=required)
    if ok and required:
        ok = exposure.sign_in_browser(st.context.cookies.get(exposure.XSRF_COOKIE))
    st.session_state["downloads_ok"] = ok


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
    from segcore.sample import generate
    from segcore.sample.examples import seed_examples

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


def engine_setting() -> None:
    """The engine every page runs on (and the Spark master URL), and a caption naming it
    (for ``auto``, what the runners choose on this store)."""
    from segcore.engine.choice import ENGINE_NAMES
    from segcore.query.auto import AUTO, describe

    names = (AUTO, *ENGINE_NAMES)
    current = state.engine()
    current_name = AUTO if current == AUTO else current.name  # type: ignore[union-attr]
    current_master = "" if current == AUTO else (current.master or "")  # type: ignore[union-attr]
    name = st.selectbox(
        "Engine", names, index=names.index(current_name), key="engine_pick",
        help="Where the numbers are computed: auto (Polars in this process, or DuckDB for "
        "some analytics on stores too large for the event cache), Polars, or the same "
        "query as SQL on DuckDB, ClickHouse (chdb) or Spark (docs/engines.md).",
    )
    master = current_master
    if name == "spark":
        master = st.text_input(
            "Spark master URL", value=master, key="spark_master_pick",
            placeholder="local[2], spark://host:7077 or sc://host:15002",
            help="Empty: $SEGCORE_SPARK_MASTER or $SPARK_MASTER, else local[2].",
        )
    if (name, master) != (current_name, current_master):
        state.set_engine(name, master)
    st.caption(f"engine: {describe(state.store(), state.engine())}")


def sidebar() -> None:
    """The report time zone, the as-of date (default: segcore's default instant, see
    ``Store.default_as_of``) and the engine."""
    info = cached.info()
    ss = st.session_state
    saved = read_settings(state.home_path())["timezone"]
    zones = list(dict.fromkeys([saved, "UTC", *COMMON_ZONES, ss.get("report_tz") or saved]))
    with st.sidebar:
        # the values live in plain session keys: widget state does not survive page switches
        ss["report_tz"] = st.selectbox(
            "Report time zone", zones, index=zones.index(ss.get("report_tz") or saved),
            key=f"report_tz_{saved}",
            help="Days, weeks, 'today()' and the as-of date are counted in this zone "
            "(the store's setting by default: segcore config set timezone ...). "
            "Windows such as 'within 30 days' stay exact elapsed time.",
        )
        last = info["last_event"]  # from the store's per-file statistics: no scan
        with report_zone(ss["report_tz"]):
            chosen = default_as_of(None if last is None else
                                   dt.datetime.fromisoformat(last.replace("Z", "+00:00")))
        default = chosen.day
        if ss.get("as_of_default") != default or not isinstance(ss.get("as_of_value"), dt.date):
            ss["as_of_default"] = default
            ss["as_of_value"] = default
        ss["as_of_now"] = None if chosen.last_event_day else chosen.text()
        ss["as_of_value"] = st.date_input(
            f"As of (end of day, {ss['report_tz']})",
            value=ss["as_of_value"],
            key=f"as_of_{default.isoformat()}",
            help="Segments are evaluated at the end of this day in the report time zone. "
            f"The default, as in the CLI, is {DEFAULT_AS_OF_RULE} (docs/dashboard.md, "
            "As-of date). Date ranges that end on this day move with it.",
        )
        state.follow_as_of()
        day = ss["as_of_value"]
        if day != default:
            st.caption(f"As of {day} 24:00 {ss['report_tz']}")
        elif chosen.last_event_day:
            st.caption(f"As of {day} 24:00 {ss['report_tz']} (the end of the last event "
                       "day: the data ends before today)")
        else:
            with report_zone(ss["report_tz"]):
                local = chosen.instant.astimezone(as_zone(ss["report_tz"]).tzinfo)
            st.caption(f"As of now: {day} {local:%H:%M} {ss['report_tz']} "
                       f"({chosen.text()}; the data reaches today)")
        st.caption(f"Store: `{Path(info['home']).name}`", help=info["home"])
        engine_setting()


def main() -> None:
    st.set_page_config(page_title="segcore", page_icon=":material/groups:", layout="wide")
    if not bound_safely() or not password_ok():
        return
    protect_downloads()
    pages = [
        st.Page(
            state.PAGES["overview"], title="Overview", icon=":material/dashboard:", default=True
        ),
        st.Page(state.PAGES["segments"], title="Segments", icon=":material/list:"),
        st.Page(state.PAGES["builder"], title="Segment builder", icon=":material/tune:"),
        st.Page(state.PAGES["segment"], title="Segment", icon=":material/group:"),
        st.Page(state.PAGES["compare"], title="Compare segments", icon=":material/stacked_line_chart:"),
        st.Page(state.PAGES["funnels"], title="Funnels", icon=":material/filter_alt:"),
        st.Page(state.PAGES["events"], title="Events", icon=":material/show_chart:"),
        st.Page(state.PAGES["retention"], title="Retention", icon=":material/event_repeat:"),
        st.Page(state.PAGES["user"], title="User lookup", icon=":material/person_search:"),
        st.Page(state.PAGES["data"], title="Data", icon=":material/database:"),
        st.Page(state.PAGES["settings"], title="Settings", icon=":material/settings:"),
    ]
    page = st.navigation(pages)
    with guard():
        first_start()
    with guard():
        sidebar()
    with guard():
        state.restore_widgets()
        try:
            with report_zone(state.report_tz()):
                page.run()
        finally:
            state.remember_widgets()


main()
