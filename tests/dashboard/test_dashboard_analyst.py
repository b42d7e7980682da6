"""The dashboard as an analyst uses it (issue 19), in AppTest: comparisons, navigation,
formats, confirmations, static lists, lookups and suggestions; values equal segcore's."""

from __future__ import annotations

import datetime as dt

import polars as pl
import pytest
from streamlit.testing.v1 import AppTest

from segcore.query import CompareQuery, DateRange, run
from segcore.sample.examples import seed_examples
from tests.dashboard.test_dashboard_pages import (
    APP,
    AS_OF,
    TIMEOUT,
    assert_clean,
    frame,
    goto,
    metrics,
    n,
)


@pytest.fixture
def store(writable_sample, monkeypatch):
    """A private copy of the sample store with the example segments, as SEGCORE_HOME."""
    seed_examples(writable_sample)
    monkeypatch.setenv("SEGCORE_HOME", str(writable_sample.home))
    monkeypatch.delenv("SEGCORE_PASSWORD", raising=False)
    return writable_sample


@pytest.fixture
def app(store) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    at.run()
    assert_clean(at)
    return at


def select_row(at: AppTest, key: str, row: int) -> None:
    """Click row ``row`` of the ``st.dataframe`` of ``key`` (its on_select state)."""
    at.session_state[key] = {"selection": {"rows": [row], "columns": [], "cells": []}}


def default_tabs(at: AppTest) -> list[str]:
    """The tab each tab bar of the page opens on."""
    found = []

    def walk(node) -> None:
        proto = getattr(node, "proto", None)
        if getattr(proto, "DESCRIPTOR", None) is not None and proto.DESCRIPTOR.name == "Block" \
                and proto.WhichOneof("type") == "tab_container":
            labels = [child.label for child in node.children.values()]
            found.append(labels[proto.tab_container.default_tab_index])
        for child in getattr(node, "children", {}).values():
            walk(child)

    walk(at.main)
    return found


def chart_specs(at: AppTest) -> list[str]:
    """The Vega-Lite specs (JSON text) of the charts on the page."""
    return [c.proto.spec for c in at.get("vega_lite_chart")]


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


def _save_static(at: AppTest, name: str, text: str) -> None:
    at.text_input(key="b_static_name").input(name)
    at.text_area(key="b_static_text").input(text)
    at.button(key="FormSubmitter:b_static_form-Save list").click().run()
    assert_clean(at)


def test_static_list_pasted_with_commas_lines_and_blanks(app, store):
    goto(app, "builder")
    ids = store.scan_users().select("user_id").head(4).collect()["user_id"].to_list()
    _save_static(app, "Commas", f"{ids[0]}, {ids[1]}, {ids[2]}")  # the label promises commas
    assert sorted(store.catalog.members("Commas")) == sorted(ids[:3])
    _save_static(app, "Lines", f"{ids[0]}, {ids[1]}\n\n{ids[2]},,{ids[3]}\n{ids[0]}\nnobody-9")
    assert sorted(store.catalog.members("Lines")) == sorted([*ids, "nobody-9"])
    m = metrics(app)
    assert (m["Duplicate ids"], m["Unknown ids"], m["Blank entries skipped"]) == ("1", "1", "2")
    members_now = store.count(segment="Lines", as_of=AS_OF)
    assert members_now == 4  # the unknown id is stored, not a member
    said = app.success[0].value
    assert "5 distinct ids stored from 6 given" in said
    assert f"{members_now} of them are members as of {AS_OF}" in said


def test_edit_on_a_static_segment_opens_the_list_tab(app, store):
    goto(app, "builder")
    _save_static(app, "Picked", "u000001, u000002")
    app.session_state["segment"] = "Picked"
    goto(app, "segment")
    app.button(key="sp_edit").click().run()
    assert_clean(app)
    assert app.title[0].value == "Edit segment: Picked"
    assert default_tabs(app) == ["List of user ids (static)"]
    goto(app, "segments")
    seg = next(s for s in store.catalog.list() if not s.is_static)
    app.button(key=f"sl_edit_{seg.id}").click().run()
    assert default_tabs(app) == ["Rule"]


def test_unknown_segment_in_the_address_says_so(store):
    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    at.query_params["segment"] = "Nope"
    at.switch_page("app_pages/segment.py").run()
    assert [e.value for e in at.error] == ["There is no saved segment named 'Nope'."]
    assert not at.metric  # nothing of another segment is shown
    at.query_params["segment"] = "Hot lead"
    at.run()
    assert at.error[0].value.startswith(
        "There is no saved segment named 'Hot lead'; did you mean 'Hot leads'")
    at.selectbox(key="sp_pick_instead").select("Hot leads").run()
    assert_clean(at)
    assert at.selectbox(key="sp_name").value == "Hot leads"


def test_a_bare_word_compared_with_an_attribute_gets_a_quote_hint(app):
    goto(app, "builder")
    app.text_area(key="b_text").input("country = US").run()
    shown = [e.value for e in app.error]
    assert shown == ["Line 1, column 11: unknown attribute 'US'; to compare with the text US, "
                     "quote it: 'US'"]


def add_condition(app, kind: str) -> None:
    """On the builder page, add one condition of ``kind`` (attribute, event, ...)."""
    goto(app, "builder")
    add = next(b.key for b in app.button if b.key and b.key.startswith("b_add_")
               and b.key != "b_add_group")
    app.selectbox(key=add.replace("b_add_", "b_add_kind_")).select(kind)
    app.button(key=add).click().run()


def test_builder_suggests_top_values_with_counts(app, store):
    add_condition(app, "attribute")
    row_key = next(s.key for s in app.selectbox if s.key and s.key.endswith("_col"))
    k = row_key[: -len("_col")]
    app.selectbox(key=row_key).select("country").run()
    sugg = app.selectbox(key=f"{k}_sugg")
    counts = (store.scan_users().group_by("country").len().sort(["len", "country"],
              descending=[True, False]).head(15).collect())
    assert sugg.options == [f"{v} ({c:,} users)" for v, c in counts.iter_rows()]
    top = counts["country"][0]
    sugg.select(top).run()
    assert_clean(app)
    assert app.text_input(key=f"{k}_val").value == top
    assert app.text_area(key="b_text").value == f"country = '{top}'"
    assert n(metrics(app)["Matching users"]) == store.count(f"country = '{top}'", as_of=AS_OF)


def test_builder_suggests_event_property_values_with_counts(app, store):
    add_condition(app, "event")
    k = next(s.key for s in app.selectbox if s.key and s.key.endswith("_ev"))[: -len("_ev")]
    app.selectbox(key=f"{k}_ev").select("charged").run()
    first = app.selectbox(key=f"{k}_wprop").value  # starts on a property charged events have
    assert store.scan_events().filter(pl.col("event") == "charged").select(
        pl.col(first).is_not_null().any()).collect().item()
    assert app.selectbox(key=f"{k}_wsugg").options
    app.selectbox(key=f"{k}_wprop").select("payment_method").run()
    assert_clean(app)
    sugg = app.selectbox(key=f"{k}_wsugg")
    counts = (store.scan_events().filter(pl.col("event") == "charged")
              .drop_nulls("payment_method").group_by("payment_method").len()
              .sort(["len", "payment_method"], descending=[True, False]).head(15).collect())
    assert len(counts) > 1
    assert sugg.options == [f"{v} ({c:,} events)" for v, c in counts.iter_rows()]
    top, second = counts["payment_method"][0], counts["payment_method"][1]
    sugg.select(top).run()
    assert_clean(app)
    assert app.text_input(key=f"{k}_where").value == f"payment_method = '{top}'"
    app.selectbox(key=f"{k}_wsugg").select(second).run()  # a second pick is ANDed
    where = f"payment_method = '{top}' AND payment_method = '{second}'"
    assert app.text_input(key=f"{k}_where").value == where
    app.text_input(key=f"{k}_where").input(f"payment_method = '{top}'").run()
    assert_clean(app)
    rule = app.text_area(key="b_text").value
    assert f"payment_method = '{top}'" in rule
    assert n(metrics(app)["Matching users"]) == store.count(rule, as_of=AS_OF)


def test_funnel_comparison_labels_every_chart_and_reopens_with_its_segments(app, store):
    goto(app, "funnels")
    pair = ["Frequent buyers", "Email subscribers"]
    app.multiselect(key="fn_compare").set_value(pair).run()
    assert_clean(app)
    charts_json = chart_specs(app)
    # time to convert and conversion over time: one colour per compared segment
    assert sum('"segment"' in spec for spec in charts_json) >= 3
    app.radio(key="fn_bar_measure").set_value("conversion").run()
    assert_clean(app)
    assert any('"% of step 1"' in spec for spec in chart_specs(app))
    app.selectbox(key="fn_segment").select("Hot leads").run()
    assert any("also members of **Hot leads**" in c.value for c in app.caption)
    app.selectbox(key="fn_segment").select(None).run()
    app.text_input(key="fn_save_name").input("Compared")
    app.button(key="FormSubmitter:fn_save_form-Save funnel").click().run()
    assert_clean(app)
    from tests.dashboard.test_dashboard_pages import open_saved_funnel

    fresh = open_saved_funnel("Compared")
    assert fresh.multiselect(key="fn_compare").value == pair


def test_dropoff_name_follows_the_step_and_a_second_save_gets_a_free_name(app, store):
    goto(app, "funnels")
    from tests.dashboard.test_dashboard_pages import set_fn_steps

    set_fn_steps(app, [("product_viewed", ""), ("added_to_cart", ""), ("charged", "")])

    def name_box():
        return next(t for t in app.text_input if t.label == "Segment name")

    assert name_box().value == "Dropped after product_viewed"
    app.selectbox(key="fn_after").select(2).run()
    assert name_box().value == "Dropped after added_to_cart"
    app.button(key="FormSubmitter:fn_dropoff_form-Save").click().run()
    assert_clean(app)
    assert store.catalog.exists("Dropped after added_to_cart")
    assert app.success[0].value.startswith("Saved static segment 'Dropped after added_to_cart'")
    assert name_box().value == "Dropped after added_to_cart (2)"
    app.button(key="FormSubmitter:fn_dropoff_form-Save").click().run()
    assert_clean(app)
    assert store.catalog.exists("Dropped after added_to_cart (2)")


def test_channels_refuse_event_rules_and_delete_asks_first(app, store):
    goto(app, "data")
    app.text_input(key="dt_ch_new_name").input("buyers")
    app.text_input(key="dt_ch_new_rule").input("did('charged')")
    app.button(key="FormSubmitter:dt_ch_new-Add channel").click().run()
    assert [e.value for e in app.error] == [
        "a channel rule may use user attributes only, not events: "
        "e.g. email IS NOT NULL AND email_opt_in"]
    assert "buyers" not in [c.name for c in store.catalog.channels()]
    before = [c.name for c in store.catalog.channels()]
    app.button(key=f"dt_ch_del_{before[0]}").click().run()
    assert [c.name for c in store.catalog.channels()] == before  # not before confirming
    assert any(f"Delete channel **{before[0]}**" in w.value for w in app.warning)
    app.button(key="dt_ch_confirm_delete").click().run()
    assert_clean(app)
    assert [c.name for c in store.catalog.channels()] == before[1:]


def test_user_lookup_by_email_or_name_and_a_click_opens_the_user(app, store):
    goto(app, "user")
    users = store.scan_users().select("user_id", "name", "email").collect()
    first = users.filter(pl.col("email").is_not_null()).row(0, named=True)
    app.text_input(key="ul_id").input(first["email"].upper()).run()
    assert_clean(app)
    assert not metrics(app)  # a match is listed to click, not opened
    assert frame(app, "email")["user_id"].tolist() == [first["user_id"]]
    select_row(app, "ul_matches", 0)
    app.run()
    assert_clean(app)
    assert app.text_input(key="ul_id").value == first["user_id"]
    assert n(metrics(app)["Events before as-of"]) == store.user(
        first["user_id"], as_of=AS_OF)["events"]
    surname = first["name"].split()[-1]
    app.text_input(key="ul_id").input(surname.lower()).run()
    want = sorted(users.filter(pl.col("name").str.to_lowercase().str.contains(surname.lower())
                               | pl.col("email").str.to_lowercase().str.contains(
                                   surname.lower()))["user_id"].to_list())[:20]
    assert frame(app, "name")["user_id"].tolist() == want
    app.text_input(key="ul_id").input("zz-nobody-zz").run()
    assert [w.value for w in app.warning] == ["No user has the id, email or name 'zz-nobody-zz'."]


def test_ranges_follow_the_as_of_date(app, store):
    app.session_state["segment"] = "Frequent buyers"
    goto(app, "segment")
    end = dt.date.fromisoformat(AS_OF)
    assert app.date_input(key="sp_range").value == (end - dt.timedelta(days=29), end)
    earlier = end - dt.timedelta(days=10)
    app.date_input(key=f"as_of_{AS_OF}").set_value(earlier).run()
    assert_clean(app)
    assert app.date_input(key="sp_range").value == (earlier - dt.timedelta(days=29), earlier)
    assert n(metrics(app)["Members now"]) == store.count(segment="Frequent buyers",
                                                        as_of=earlier.isoformat())
    goto(app, "funnels")  # a remembered range moved too
    assert app.date_input(key="fn_range").value[1] == earlier
    assert any(f"As of {earlier} 24:00 UTC" in c.value for c in app.sidebar.caption)


def test_weekly_event_periods_cut_by_the_range_are_marked(app, store):
    goto(app, "events")
    app.radio(key="ev_every").set_value("week").run()
    assert_clean(app)
    table = frame(app, "partial")
    end = dt.date.fromisoformat(AS_OF)  # a Tuesday: its week is cut
    last_monday = end - dt.timedelta(days=end.weekday())
    cut = {d.date() if hasattr(d, "date") else d for d in table[table["partial"]]["period"]}
    assert last_monday in cut
    assert any("the range cuts the week(s) of" in c.value for c in app.caption)


def test_each_computation_has_a_spinner_naming_it():
    from dashboard.cached import describe
    from segcore.query import FunnelQuery, MembersQuery, Target, TrendQuery

    assert describe(MembersQuery(Target(segment="VIP"))) == "Counting the members of 'VIP'"
    assert describe(TrendQuery(Target(rule="true"), DateRange.of("2026-06-01", "2026-06-30"),
                               "week")) == "Computing the size of the rule at every week"
    assert describe(FunnelQuery(("a", "b"))) == "Computing the 2-step funnel"


def test_import_summary_names_the_users_file_not_a_temporary_path(tiny):
    from dashboard.imports import run_import

    store = tiny(users=[{"user_id": "a"}])
    csv = b"user_id,event,ts\na,x,2026-05-01T10:00:00Z\nb,y,not a time\n"
    summary, rejected = run_import(store, "events", [("mine.csv", csv)], skip_invalid=True)
    assert summary["files"] == ["mine.csv"]
    assert "segcore-upload" not in summary["summary"] and "/" not in summary["summary"]
    assert "; the rejected rows are in the download below" in summary["summary"]
    assert rejected.decode().splitlines()[1].startswith("b,y,not a time")
    again, _ = run_import(store, "events", [("mine.csv", csv)], skip_invalid=True,
                          if_imported="again")
    assert again["identical_rows"] == 1 and "give key columns to skip them" in again["summary"]
