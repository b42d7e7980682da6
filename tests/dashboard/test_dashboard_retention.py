"""The Retention page in AppTest: the numbers shown are segcore's, cells' users save."""

from __future__ import annotations

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from segcore.query import (
    DateRange,
    LifecycleQuery,
    RetentionQuery,
    retention_actors,
    run_lifecycle,
    run_retention,
)
from segcore.sample.examples import seed_examples

APP = str(Path(__file__).resolve().parents[2] / "dashboard" / "app.py")
AS_OF = "2026-06-30"


@pytest.fixture
def app(writable_sample, monkeypatch):
    seed_examples(writable_sample)
    monkeypatch.setenv("SEGCORE_HOME", str(writable_sample.home))
    monkeypatch.delenv("SEGCORE_PASSWORD", raising=False)
    at = AppTest.from_file(APP, default_timeout=90)
    at.run()
    at.switch_page("app_pages/retention.py").run()
    assert not at.exception, at.exception
    assert not [e.value for e in at.error]
    return at


def test_retention_page_shows_segcores_tables_and_saves_a_cell(app, writable_sample):
    store = writable_sample
    rng = DateRange.of("2026-05-06", AS_OF)  # the page's default: the last 56 days
    q = RetentionQuery("signed_up", "app_launched", rng, "week", 6)
    want = run_retention(store, q).to_dict()["cohorts"]
    table = next(d.value for d in app.dataframe if "cohort" in d.value.columns)
    assert table["cohort"].tolist() == [c["period"] for c in want]
    assert table["size"].tolist() == [c["size"] for c in want]
    # the users of a cell, saved as a static segment
    app.selectbox(key="rt_cell_cohort").select(want[1]["period"])
    app.selectbox(key="rt_cell_k").select(1).run()
    expected = retention_actors(store, q, want[1]["period"], 1)["user_id"].to_list()
    assert len(expected) == want[1]["retained"][1]
    app.text_input(key="rt_cell_save_name").input("Came back in week 1")
    app.button(key="FormSubmitter:rt_cell_save_form-Save").click().run()
    assert not app.exception and not [e.value for e in app.error]
    assert sorted(store.catalog.members("Came back in week 1")) == expected
    # lifecycle of the return event, restricted to a segment's members
    lq = LifecycleQuery("app_launched", rng, "week")
    shown = next(d.value for d in app.dataframe if "resurrecting" in d.value.columns)
    assert shown["dormant"].tolist() == run_lifecycle(store, lq).table["dormant"].to_list()


def test_breakdown_and_segment_entered_cohorts(app, writable_sample):
    names = [s.name for s in writable_sample.catalog.list()][:2]
    app.multiselect(key="rt_compare").set_value(names).run()
    assert not app.exception and not [e.value for e in app.error]
    assert [s.value for s in app.subheader][:2] == names
    app.radio(key="rt_by").set_value("Entering a segment").run()
    assert not app.exception and not [e.value for e in app.error]
