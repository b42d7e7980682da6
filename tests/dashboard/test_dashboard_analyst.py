"""The dashboard as an analyst uses it (issue 19), in AppTest: comparisons, navigation,
formats, confirmations, static lists, lookups and suggestions; values equal segcore's."""

from __future__ import annotations

import datetime as dt

import polars as pl
import pytest
from streamlit.testing.v1 import AppTest

from segcore.query import CompareQuery, DateRange, run
from tests.dashboard.test_dashboard_pages import (  # noqa: F401 - fixtures
    APP,
    AS_OF,
    TIMEOUT,
    app,
    assert_clean,
    frame,
    goto,
    metrics,
    n,
    store,
)


def select_row(at: AppTest, key: str, row: int) -> None:
    """Click row ``row`` of the ``st.dataframe`` of ``key`` (its on_select state)."""
    at.session_state[key] = {"selection": {"rows": [row], "columns": [], "cells": []}}


def test_compare_page_shows_each_segments_size_and_share(app, store):
    goto(app, "compare")
    assert_clean(app)
    chosen = app.multiselect(key="cmp_segments").value
    assert len(chosen) == 3
    table = frame(app, "Members at start")
    end = dt.date.fromisoformat(AS_OF)
    want = run(store, CompareQuery(tuple(chosen), DateRange(end - dt.timedelta(days=29), end))).rows
    for name, members, share in zip(table["Segment"], table["Members"], table["Share"],
                                    strict=True):
        assert members == store.count(segment=name, as_of=AS_OF)
        last = want.filter(pl.col("segment") == name).row(-1, named=True)
        assert share == pytest.approx(last["share"])
        assert last["all_users"] == store.count("true", as_of=AS_OF)
    assert app.get("download_button")  # the points as CSV
    app.radio(key="cmp_every").set_value("week").run()
    assert_clean(app)
    assert any("Weekly points are Sundays" in c.value for c in app.caption)


def test_overview_share_is_a_number_and_a_row_opens_its_segment(app, store):
    table = frame(app, "Last 30 days")
    assert table["Share"].dtype.kind == "f"  # sorts as a number (shown as a percent)
    everyone = store.count("true", as_of=AS_OF)
    for name, share in zip(table["Segment"], table["Share"], strict=True):
        assert share == pytest.approx(store.count(segment=name, as_of=AS_OF) / everyone)
    row = list(table["Segment"]).index("Frequent buyers")
    select_row(app, "ov_segments", row)
    app.run()
    assert_clean(app)
    assert app.title[0].value == "Segment"
    assert app.selectbox(key="sp_name").value == "Frequent buyers"


def test_segments_list_name_opens_delete_confirms_in_a_dialog_and_restore(app, store):
    goto(app, "segments")
    seg = store.catalog.get("Hot leads")
    app.button(key=f"sl_delete_{seg.id}").click().run()
    assert store.catalog.exists("Hot leads")  # not before the confirmation
    assert any("Delete segment **Hot leads**" in w.value for w in app.warning)
    app.button(key="sl_confirm_delete").click().run()
    assert_clean(app)
    assert not store.catalog.exists("Hot leads")
    assert [s.value for s in app.success] == ["Deleted segment 'Hot leads'."]
    app.button(key=f"sl_restore_{seg.id}").click().run()
    assert_clean(app)
    assert store.catalog.get("Hot leads").rule_text == seg.rule_text
    assert [s.value for s in app.success] == ["Restored segment 'Hot leads'."]
    app.button(key=f"sl_open_{seg.id}").click().run()
    assert_clean(app)
    assert app.selectbox(key="sp_name").value == "Hot leads"
