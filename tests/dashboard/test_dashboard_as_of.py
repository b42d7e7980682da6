"""The dashboard's default instant is the CLI's (issue 19, item 4): segcore's
``Store.default_as_of``, named in the sidebar's caption; the sizes agree with the CLI."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from streamlit.testing.v1 import AppTest

from segcore import Store
from segcore.cli import main
from segcore.sample import generate
from segcore.sample.examples import seed_examples
from tests.dashboard.test_dashboard_pages import APP, AS_OF, TIMEOUT, assert_clean, goto, metrics, n


def cli_count(capsys, home, segment: str) -> tuple[int, str]:
    assert main(["eval", "--segment", segment, "--home", str(home), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    return out["count"], out["as_of"]


def start(monkeypatch, store: Store) -> AppTest:
    seed_examples(store)
    monkeypatch.setenv("SEGCORE_HOME", str(store.home))
    monkeypatch.delenv("SEGCORE_PASSWORD", raising=False)
    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    at.session_state["segment"] = "Frequent buyers"
    at.run()
    assert_clean(at)
    return goto(at, "segment")


def test_a_store_ending_before_today_opens_on_its_last_event_day(monkeypatch, capsys,
                                                                writable_sample):
    app = start(monkeypatch, writable_sample)
    assert app.date_input(key=f"as_of_{AS_OF}").value == dt.date.fromisoformat(AS_OF)
    assert any(f"As of {AS_OF} 24:00 UTC (the end of the last event day: the data ends "
               "before today)" in c.value for c in app.sidebar.caption)
    count, as_of = cli_count(capsys, writable_sample.home, "Frequent buyers")
    assert as_of == "2026-07-01T00:00:00Z"
    assert n(metrics(app)["Members now"]) == count


@pytest.fixture
def live_store(tmp_path) -> Store:
    """A small store whose events reach today (as a live store's do)."""
    generate(tmp_path, users=300, days=20, end=dt.datetime.now(dt.timezone.utc).date(), seed=5)
    return Store(tmp_path)


def test_a_live_store_opens_on_now_like_the_cli(monkeypatch, capsys, live_store):
    app = start(monkeypatch, live_store)
    for _ in range(2):  # once more if a minute boundary fell between the two clocks
        count, as_of = cli_count(capsys, live_store.home, "Frequent buyers")
        if app.session_state["as_of_now"] == as_of:
            break
        app.run()
    assert_clean(app)
    assert app.session_state["as_of_now"] == as_of
    today = dt.date.fromisoformat(as_of[:10])
    assert app.date_input(key=f"as_of_{today}").value == today
    assert any(c.value.startswith(f"As of now: {today} {as_of[11:16]} UTC")
               for c in app.sidebar.caption)
    assert n(metrics(app)["Members now"]) == count
    # the date ranges end today; another day is the end of that day, like --as-of DATE
    assert app.date_input(key="sp_range").value[1] == today
    earlier = today - dt.timedelta(days=3)
    app.date_input(key=f"as_of_{today}").set_value(earlier).run()
    assert_clean(app)
    assert any(f"As of {earlier} 24:00 UTC" == c.value for c in app.sidebar.caption)
    assert n(metrics(app)["Members now"]) == live_store.count(segment="Frequent buyers",
                                                             as_of=earlier.isoformat())
    assert app.date_input(key="sp_range").value[1] == earlier
