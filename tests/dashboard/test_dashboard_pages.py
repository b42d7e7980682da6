"""The Streamlit dashboard in AppTest: every page renders, values equal segcore's."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from segcore.sample.examples import EXAMPLES, seed_examples

APP = str(Path(__file__).resolve().parents[2] / "dashboard" / "app.py")
AS_OF = "2026-06-30"  # the last day of the conftest sample = the dashboard's default as-of
PAGES = ["overview", "segments", "builder", "segment", "funnels", "events", "retention", "user",
         "data", "settings"]
TIMEOUT = 60


def metrics(at: AppTest) -> dict[str, str]:
    return {m.label: m.value for m in at.metric}


def n(text: str) -> int:
    return int(text.replace(",", ""))


def frame(at: AppTest, column: str):
    """The first table shown that has ``column`` (as pandas)."""
    return next(d.value for d in at.dataframe if column in d.value.columns)


def assert_clean(at: AppTest) -> None:
    assert not at.exception, at.exception
    assert not [e.value for e in at.error], [e.value for e in at.error]


def goto(at: AppTest, page: str) -> AppTest:
    at.switch_page(f"app_pages/{page}.py").run()
    return at


def open_saved_funnel(name: str) -> AppTest:
    """A fresh app session with the saved funnel ``name`` opened on the Funnels page."""
    fresh = AppTest.from_file(APP, default_timeout=TIMEOUT)
    fresh.run()
    goto(fresh, "funnels")
    fresh.selectbox(key="fn_saved").select(name)
    fresh.button(key="fn_open").click().run()
    assert_clean(fresh)
    return fresh


def fn_rows(at: AppTest) -> list[str]:
    """The funnel step rows shown, in order, as widget key prefixes (``fn_s<id>_``)."""
    return [
        s.key[: -len("event")]
        for s in at.selectbox
        if s.key and re.fullmatch(r"fn_s\d+_event", s.key)
    ]


def fn_steps(at: AppTest) -> list[dict]:
    """The funnel steps shown, in order, as ``{"event", "where"}`` (blank where = None)."""
    return [
        {
            "event": at.selectbox(key=f"{row}event").value,
            "where": at.text_input(key=f"{row}where").value or None,
        }
        for row in fn_rows(at)
    ]


def set_fn_steps(at: AppTest, pairs: list[tuple[str, str]]) -> None:
    """Edit the funnel step rows to ``(event, where)`` pairs with the page's buttons."""
    while len(fn_rows(at)) < len(pairs):
        at.button(key="fn_add_step").click().run()
    while len(fn_rows(at)) > len(pairs):
        at.button(key=f"{fn_rows(at)[-1]}rm").click().run()
    for row, (event, where) in zip(fn_rows(at), pairs, strict=True):
        at.selectbox(key=f"{row}event").select(event)
        at.text_input(key=f"{row}where").input(where)
    at.run()


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


def test_overview_shows_the_store_and_every_segment(app, store):
    info = store.info()
    m = metrics(app)
    assert n(m["Users"]) == info["users"]
    assert n(m["Events"]) == info["events"]
    assert m["First event"] == info["first_event"][:10]
    assert m["Last event"] == info["last_event"][:10] == AS_OF
    table = frame(app, "Last 30 days")
    shown = dict(zip(table["Segment"], table["Members"], strict=True))
    assert set(shown) == {e["name"] for e in EXAMPLES}
    for name, size in shown.items():
        assert size == store.count(segment=name, as_of=AS_OF)
    spark = dict(zip(table["Segment"], table["Last 30 days"], strict=True))
    assert len(spark["Frequent buyers"]) == 30
    assert spark["Frequent buyers"][-1] == shown["Frequent buyers"]


@pytest.mark.parametrize("page", PAGES)
def test_every_page_renders(app, page):
    goto(app, page)
    assert_clean(app)
    assert app.title[0].value
    keys = {
        "segments": ("text_input", "sl_search"),
        "builder": ("text_area", "b_text"),
        "segment": ("selectbox", "sp_name"),
        "funnels": ("button", "fn_add_step"),
        "events": ("multiselect", "ev_events"),
        "user": ("text_input", "ul_id"),
        "data": ("radio", "dt_kind"),
    }
    if page in keys:
        kind, key = keys[page]
        assert getattr(app, kind)(key=key) is not None


def test_full_flow_build_preview_save_list_open_funnel(app, store):
    rule = "did('charged', within => '60 days') AND country = 'US'"
    goto(app, "builder")
    app.text_area(key="b_text").input(rule).run()
    assert_clean(app)
    expected = store.count(rule, as_of=AS_OF)
    assert expected > 0
    assert n(metrics(app)["Matching users"]) == expected
    # the visual builder followed the text: one event row and one attribute row
    assert app.selectbox(key="b_3_ev").value == "charged" or any(
        s.value == "charged" for s in app.selectbox
    )
    assert any(t.value == "US" for t in app.text_input)
    app.text_input(key="b_name").input("US buyers")
    app.text_input(key="b_desc").input("bought lately, in the US")
    app.button(key="FormSubmitter:b_save_form-Save segment").click().run()
    assert_clean(app)
    assert [s.value for s in app.success] == ["Saved segment 'US buyers'."]
    seg = store.catalog.get("US buyers")
    assert seg.rule_text == rule and seg.description == "bought lately, in the US"

    goto(app, "segments")
    app.text_input(key="sl_search").input("us buy").run()
    names = [b.label for b in app.button if b.key and b.key.startswith("sl_open_")]
    assert names == ["US buyers"]

    app.session_state["segment"] = "US buyers"
    goto(app, "segment")
    assert_clean(app)
    assert app.selectbox(key="sp_name").value == "US buyers"
    assert n(metrics(app)["Members now"]) == expected

    app.session_state["fn_segment_default"] = "US buyers"
    goto(app, "funnels")
    assert_clean(app)
    assert app.selectbox(key="fn_segment").value == "US buyers"
    steps = fn_steps(app)
    assert [s["event"] for s in steps] == ["product_viewed", "added_to_cart", "charged"]
    res = store.funnel(steps, window="1 days", start="2026-06-01", end=AS_OF, segment="US buyers")
    m = metrics(app)
    assert n(m["Entered the funnel"]) == res["steps"][0]["users"]
    assert n(m["Converted"]) == res["steps"][-1]["users"]


def test_builder_rows_write_the_rule_and_advanced_rules_stay_text(app, store):
    goto(app, "builder")
    add = next(s.key for s in app.selectbox if s.key.startswith("b_add_kind_"))
    app.selectbox(key=add).select("attribute")
    app.button(key=add.replace("b_add_kind_", "b_add_")).click().run()
    row = next(s.key for s in app.selectbox if s.key.endswith("_col"))[: -len("_col")]
    app.selectbox(key=f"{row}_col").select("age")
    app.selectbox(key=f"{row}_op").select(">=")
    app.run()
    app.text_input(key=f"{row}_val").input("40").run()
    assert_clean(app)
    assert app.text_area(key="b_text").value == "age >= 40"
    assert n(metrics(app)["Matching users"]) == store.count("age >= 40", as_of=AS_OF)

    app.text_area(key="b_text").input("age + 1 > 41").run()
    assert_clean(app)
    assert any("Advanced rule" in i.value for i in app.info)
    assert n(metrics(app)["Matching users"]) == store.count("age >= 41", as_of=AS_OF)


def test_rule_errors_are_shown_with_their_position(app):
    goto(app, "builder")
    app.text_area(key="b_text").input("age > 30 AND\ncountry = ").run()
    assert not app.exception
    errors = [e.value for e in app.error]
    assert len(errors) == 1 and errors[0].startswith("Line 2, column")
    app.text_area(key="b_text").input("age > 'old'").run()
    assert [e.value for e in app.error] == [
        "Line 1, column 7: type mismatch: cannot compare age (an integer) with 'old' (a text)"
    ]
    assert [c.value for c in app.code] == ["age > 'old'\n      ^"]


def test_edit_with_a_stale_version_is_a_friendly_conflict(app, store):
    app.session_state["edit_segment"] = "Frequent buyers"
    goto(app, "builder")
    assert app.text_area(key="b_text").value == EXAMPLES[0]["rule"]
    store.catalog.edit("Frequent buyers", description="changed elsewhere")
    app.text_area(key="b_text").input("event_count('charged', within => '90 days') >= 4").run()
    app.button(key="FormSubmitter:b_save_form-Save segment").click().run()
    assert not app.exception
    errors = [e.value for e in app.error]
    assert len(errors) == 1 and "changed by someone else" in errors[0]
    assert store.catalog.get("Frequent buyers").rule_text == EXAMPLES[0]["rule"]
    app.button(key="b_reload").click().run()
    assert_clean(app)
    assert app.text_input(key="b_desc").value == "changed elsewhere"
    assert app.text_area(key="b_text").value == EXAMPLES[0]["rule"]


def test_clone_and_delete_ask_first(app, store):
    goto(app, "segments")
    seg = store.catalog.get("Hot leads")
    app.button(key=f"sl_clone_{seg.id}").click().run()
    app.text_input(key="sl_clone_name").input("Hot leads 2")
    app.button(key="sl_confirm_clone").click().run()
    assert_clean(app)
    assert store.catalog.get("Hot leads 2").rule_text == seg.rule_text
    app.button(key=f"sl_delete_{seg.id}").click().run()
    assert store.catalog.exists("Hot leads")  # not before the confirmation
    assert any("Delete segment" in w.value for w in app.warning)
    app.button(key="sl_confirm_delete").click().run()
    assert_clean(app)
    assert not store.catalog.exists("Hot leads")
    assert [s.value for s in app.success] == ["Deleted segment 'Hot leads'."]


def test_static_segment_from_pasted_ids_reports_unknown_and_duplicates(app, store):
    goto(app, "builder")
    ids = store.scan_users().select("user_id").head(3).collect()["user_id"].to_list()
    app.text_input(key="b_static_name").input("Hand picked")
    app.text_area(key="b_static_text").input("\n".join([*ids, ids[0], "nobody-1"]))
    app.button(key="FormSubmitter:b_static_form-Save list").click().run()
    assert_clean(app)
    m = metrics(app)
    assert m["Duplicate ids"] == "1" and m["Unknown ids"] == "1"
    assert sorted(store.catalog.members("Hand picked")) == sorted([*ids, "nobody-1"])


def test_segment_page_members_and_size_over_time(app, store):
    app.session_state["segment"] = "Email subscribers"
    goto(app, "segment")
    assert_clean(app)
    size = store.count(segment="Email subscribers", as_of=AS_OF)
    assert n(metrics(app)["Members now"]) == size
    table = frame(app, "email_opt_in")
    first = store.members(segment="Email subscribers", as_of=AS_OF)["user_id"].head(50)
    assert table["user_id"].tolist() == first.to_list()
    app.number_input(key="sp_page").set_value(2).run()
    table = frame(app, "email_opt_in")
    second = store.members(segment="Email subscribers", as_of=AS_OF)["user_id"].slice(50, 50)
    assert table["user_id"].tolist() == second.to_list()
    assert "email_opt_in" in [c.value for c in app.code][0]


def test_user_lookup_shows_profile_and_segments(app, store):
    uid = store.scan_users().select("user_id").head(1).collect().item()
    goto(app, "user")
    app.text_input(key="ul_id").input(uid).run()
    assert_clean(app)
    prof = store.user(uid, as_of=AS_OF)
    m = metrics(app)
    assert n(m["Events before as-of"]) == prof["events"]
    assert n(m["Segments now"]) == len(prof["segments"])
    app.text_input(key="ul_id").input("no-such-user").run()
    assert not app.exception
    assert [w.value for w in app.warning] == [
        "No user has the id, email or name 'no-such-user'."]


def test_data_page_channels_editor(app, store):
    goto(app, "data")
    app.text_input(key="dt_ch_new_name").input("vip_email")
    app.text_input(key="dt_ch_new_rule").input("email_opt_in AND total_spent > 1000")
    app.button(key="FormSubmitter:dt_ch_new-Add channel").click().run()
    assert_clean(app)
    assert [c.name for c in store.catalog.channels()][-1] == "vip_email"
    app.button(key="dt_ch_del_vip_email").click().run()
    app.button(key="dt_ch_confirm_delete").click().run()
    assert "vip_email" not in [c.name for c in store.catalog.channels()]


def test_first_start_creates_sample_data_and_examples(tmp_path, monkeypatch):
    home = tmp_path / "empty"
    monkeypatch.setenv("SEGCORE_HOME", str(home))
    monkeypatch.setenv("SEGCORE_SAMPLE_USERS", "300")
    monkeypatch.setenv("SEGCORE_SAMPLE_DAYS", "30")
    monkeypatch.delenv("SEGCORE_PASSWORD", raising=False)
    at = AppTest.from_file(APP, default_timeout=TIMEOUT).run()
    assert_clean(at)
    from segcore import Store

    s = Store(home)
    assert s.info()["users"] == 300
    assert {x.name for x in s.catalog.list()} == {e["name"] for e in EXAMPLES}
    assert n(metrics(at)["Users"]) == 300


def test_password_gate(store, monkeypatch):
    monkeypatch.setenv("SEGCORE_PASSWORD", "s3cret")
    at = AppTest.from_file(APP, default_timeout=TIMEOUT).run()
    assert not at.metric and [t.value for t in at.title] == ["segcore"]
    at.text_input(key="auth_password").input("wrong")
    at.button(key="FormSubmitter:login-Sign in").click().run()
    assert [e.value for e in at.error] == ["Wrong password."]
    at.text_input(key="auth_password").input("s3cret")
    at.button(key="FormSubmitter:login-Sign in").click().run()
    assert_clean(at)
    assert n(metrics(at)["Users"]) == store.info()["users"]


def test_static_segment_page(app, store):
    store.catalog.upload_static("Picked", ["u000001", "u000002", "ghost"])
    app.session_state["segment"] = "Picked"
    goto(app, "segment")
    assert_clean(app)
    assert n(metrics(app)["Members now"]) == store.count(segment="Picked", as_of=AS_OF) == 2


def test_reachability_values(app, store):
    app.session_state["segment"] = "Frequent buyers"
    goto(app, "segment")
    r = store.reach(segment="Frequent buyers", as_of=AS_OF)
    m = metrics(app)
    assert n(m["Reachable by any channel"]) == r["any"]
    assert n(m["Not reachable"]) == r["none"]
    assert n(m["Members"]) == r["members"] == store.count(segment="Frequent buyers", as_of=AS_OF)


def test_events_page_values_by_segment_and_property(app, store):
    from segcore.analytics.event_report import event_report

    goto(app, "events")
    app.multiselect(key="ev_events").set_value(["charged"])
    app.date_input(key="ev_range").set_value(("2026-06-01", AS_OF))
    app.radio(key="ev_mode").set_value("Members of a segment").run()
    app.selectbox(key="ev_segment").select("Frequent buyers").run()
    assert_clean(app)
    df = event_report(
        store, ["charged"], start="2026-06-01", end=AS_OF, every="day", segment="Frequent buyers"
    )
    assert n(metrics(app)["Events"]) == df["events"].sum() > 0
    app.radio(key="ev_mode").set_value("By a property").run()
    app.selectbox(key="ev_by").select("payment_method").run()
    assert_clean(app)
    df = event_report(
        store, ["charged"], start="2026-06-01", end=AS_OF, every="day", by="payment_method", top=5
    )
    assert n(metrics(app)["Events"]) == df["events"].sum()
    assert n(metrics(app)["Series"]) == df["value"].n_unique()


def test_regenerate_sample_data_from_the_data_page(app, store):
    goto(app, "data")
    app.number_input(key="dt_s_users").set_value(200)
    app.number_input(key="dt_s_days").set_value(10)
    app.checkbox(key="dt_s_sure").check()
    app.button(key="FormSubmitter:dt_sample_form-Regenerate sample data").click().run()
    assert_clean(app)
    assert store.info()["users"] == 200
    assert [s.value for s in app.success][0].startswith("Generated 200 users")


def test_funnel_side_by_side_and_save_dropoffs(app, store):
    goto(app, "funnels")
    steps = fn_steps(app)
    app.multiselect(key="fn_compare").set_value(["Frequent buyers", "Email subscribers"]).run()
    assert_clean(app)
    res = store.funnel(
        steps,
        window="1 days",
        start="2026-06-01",
        end=AS_OF,
        segments=["Frequent buyers", "Email subscribers"],
    )
    table = frame(app, "segment")
    for name in ("Frequent buyers", "Email subscribers"):
        shown = table[table["segment"] == name]["users"].tolist()
        assert shown == [s["users"] for s in res["segments"][name]["steps"]]
    app.multiselect(key="fn_compare").set_value([]).run()
    next(t for t in app.text_input if t.label == "Segment name").input("Viewed, no cart")
    app.button(key="FormSubmitter:fn_dropoff_form-Save").click().run()
    assert_clean(app)
    from segcore.analytics.funnel import funnel_dropoffs

    expected = funnel_dropoffs(store, steps, "1 days", "2026-06-01", AS_OF, after_step=1)
    assert sorted(store.catalog.members("Viewed, no cart")) == expected["user_id"].to_list()
    assert [s.value for s in app.success] == [
        f"Saved static segment 'Viewed, no cart' with {expected.height:,} users."
    ]


def test_password_from_secrets(store):
    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    at.secrets["password"] = "from-secrets"
    at.run()
    assert not at.metric
    at.text_input(key="auth_password").input("from-secrets")
    at.button(key="FormSubmitter:login-Sign in").click().run()
    assert_clean(at)
    assert metrics(at)["Users"]


def test_builder_event_rows_and_groups(app, store):
    goto(app, "builder")
    add = next(s.key for s in app.selectbox if s.key.startswith("b_add_kind_"))
    app.selectbox(key=add).select("event")
    app.button(key=add.replace("b_add_kind_", "b_add_")).click().run()
    row = next(s.key for s in app.selectbox if s.key.endswith("_measure"))[: -len("_measure")]
    app.selectbox(key=f"{row}_ev").select("charged")
    app.selectbox(key=f"{row}_measure").select("number of times").run()
    app.number_input(key=f"{row}_times").set_value(2)
    app.number_input(key=f"{row}_within_n").set_value(60).run()
    assert_clean(app)
    rule = "event_count('charged', within => '60 days') >= 2"
    assert app.text_area(key="b_text").value == rule
    # a second condition in the same group, then "any (OR)"
    app.selectbox(key=add).select("segment")
    app.button(key=add.replace("b_add_kind_", "b_add_")).click().run()
    seg_row = next(s.key for s in app.selectbox if s.key.endswith("_seg"))[: -len("_seg")]
    app.selectbox(key=f"{seg_row}_seg").select("Hot leads").run()
    gop = next(r.key for r in app.radio if r.key.startswith("b_gop_"))
    app.radio(key=gop).set_value("or").run()
    assert_clean(app)
    both = f"{rule} OR in_segment('Hot leads')"
    assert app.text_area(key="b_text").value == both
    assert n(metrics(app)["Matching users"]) == store.count(both, as_of=AS_OF)
    # removing the first row leaves the segment condition
    app.button(key=f"{row}_rm").click().run()
    assert app.text_area(key="b_text").value == "in_segment('Hot leads')"


def test_segment_size_over_time_and_who_entered(app, store):
    from segcore.analytics.trend import trend, trend_members

    app.session_state["segment"] = "Cart abandoners"
    goto(app, "segment")
    assert_clean(app)
    tr = trend(store, None, "2026-06-01", AS_OF, "day", segment="Cart abandoners")
    caption = next(c.value for c in app.caption if c.value.startswith("Over the range"))
    assert caption == (
        f"Over the range: {tr['entered'].sum():,} entries, {tr['exited'].sum():,} exits; "
        f"{tr['members'][-1]:,} members on 2026-06-30."
    )
    assert tr["members"][-1] == store.count(segment="Cart abandoners", as_of=AS_OF)
    who = trend_members(store, None, AS_OF, segment="Cart abandoners", which="entered")
    labels = [b.proto.label for b in app.get("download_button")]
    assert f"{who.height:,} users who entered (CSV)" in labels


def test_save_and_open_a_funnel(app, store):
    goto(app, "funnels")
    set_fn_steps(app, [("signed_up", ""), ("charged", "")])
    app.number_input(key="fn_win_n").set_value(7)
    app.checkbox(key="fn_strict").check()
    app.radio(key="fn_between").set_value("no repeated step (deduplication)")
    app.selectbox(key="fn_segment").select("Email subscribers").run()
    first = metrics(app)
    app.text_input(key="fn_save_name").input("Signup to purchase")
    app.button(key="FormSubmitter:fn_save_form-Save funnel").click().run()
    assert_clean(app)
    spec = store.catalog.get_funnel("Signup to purchase")["spec"]
    assert [s["event"] for s in spec["steps"]] == ["signed_up", "charged"]
    assert spec["window"] == "7 days" and spec["strict"] and spec["segment"] == "Email subscribers"
    assert spec["dedup"] and not spec["strict_order"]

    fresh = open_saved_funnel("Signup to purchase")
    assert fn_steps(fresh) == [
        {"event": "signed_up", "where": None},
        {"event": "charged", "where": None},
    ]
    assert fresh.selectbox(key="fn_segment").value == "Email subscribers"
    assert fresh.radio(key="fn_between").value == "no repeated step (deduplication)"
    assert metrics(fresh) == first


def test_page_widgets_survive_a_trip_to_another_page(app, store):
    goto(app, "builder")
    app.text_area(key="b_text").input("age > 30").run()
    goto(app, "funnels")
    set_fn_steps(app, [("signed_up", ""), ("charged", "amount > 50")])
    app.date_input(key="fn_range").set_value(("2026-05-01", AS_OF)).run()
    goto(app, "segments")
    goto(app, "builder")
    assert app.text_area(key="b_text").value == "age > 30"
    assert n(metrics(app)["Matching users"]) == store.count("age > 30", as_of=AS_OF)
    goto(app, "funnels")
    assert_clean(app)
    steps = [{"event": "signed_up", "where": None}, {"event": "charged", "where": "amount > 50"}]
    assert fn_steps(app) == steps
    res = store.funnel(steps, window="1 days", start="2026-05-01", end=AS_OF)
    assert n(metrics(app)["Entered the funnel"]) == res["steps"][0]["users"]


def test_leave_edit_mode_for_a_new_segment(app):
    app.session_state["edit_segment"] = "Hot leads"
    goto(app, "builder")
    assert app.title[0].value == "Edit segment: Hot leads"
    app.button(key="b_new").click().run()
    assert_clean(app)
    assert app.title[0].value == "New segment"
    assert app.text_area(key="b_text").value == ""


def test_a_broken_store_gives_messages_not_tracebacks(store):
    bad = store.home / "events" / "zz-broken.parquet"
    bad.write_bytes(b"this is not parquet")
    at = AppTest.from_file(APP, default_timeout=TIMEOUT).run()
    assert not at.exception
    errors = [e.value for e in at.error]
    assert errors and all("zz-broken.parquet" in e for e in errors)
    for page in PAGES[1:]:
        goto(at, page)
        assert not at.exception, page


def test_a_store_with_users_only_and_no_segments(tiny, monkeypatch):
    s = tiny(users=[{"user_id": "a", "age": 30}, {"user_id": "b", "age": 50}])
    monkeypatch.setenv("SEGCORE_HOME", str(s.home))
    monkeypatch.delenv("SEGCORE_PASSWORD", raising=False)
    at = AppTest.from_file(APP, default_timeout=TIMEOUT).run()
    assert_clean(at)
    assert n(metrics(at)["Users"]) == 2 and n(metrics(at)["Events"]) == 0
    for page in PAGES[1:]:
        goto(at, page)
        assert_clean(at)
    goto(at, "builder")
    at.text_area(key="b_text").input("age > 40").run()
    assert n(metrics(at)["Matching users"]) == 1


def test_overview_survives_a_broken_segment(store):
    from segcore.segments import create_segment

    create_segment(store, "Base", "age > 30")
    create_segment(store, "Derived", "in_segment('Base') AND email_opt_in")
    # the catalog refuses to delete a referenced segment: delete it behind its back
    import sqlite3

    con = sqlite3.connect(store.catalog_path)
    con.execute("UPDATE segments SET deleted_at = '2026-01-01T00:00:00Z' WHERE name = 'Base'")
    con.commit()
    con.close()
    at = AppTest.from_file(APP, default_timeout=TIMEOUT).run()
    assert not at.exception
    warnings = [w.value for w in at.warning]
    assert len(warnings) == 1 and warnings[0].startswith("Derived: ")
    table = frame(at, "Last 30 days")
    assert len(table) == len(EXAMPLES) + 1
    shown = dict(zip(table["Segment"], table["Members"], strict=True))
    assert shown["Hot leads"] == store.count(segment="Hot leads", as_of=AS_OF)


# ---------------------------------------------------------------------- funnel step editor
PRICING_THEN_DOCS = [
    {"event": "page_viewed", "where": "page = 'pricing'"},
    {"event": "page_viewed", "where": "page = 'docs'"},
]


def test_funnel_with_the_same_event_twice_and_two_filters(app, store):
    from segcore.analytics.funnel import funnel

    goto(app, "funnels")
    set_fn_steps(app, [(s["event"], s["where"]) for s in PRICING_THEN_DOCS])
    app.number_input(key="fn_win_n").set_value(7).run()
    assert_clean(app)
    assert fn_steps(app) == PRICING_THEN_DOCS
    res = funnel(store, steps=PRICING_THEN_DOCS, window="7 days", start="2026-06-01", end=AS_OF)
    expected = [s["users"] for s in res["steps"]]
    table = frame(app, "Median time from first")
    assert table["Step"].tolist() == [
        "1. page_viewed where page = 'pricing'",
        "2. page_viewed where page = 'docs'",
    ]
    assert [n(u) for u in table["Users"]] == expected
    assert expected[0] > expected[1] > 0
    unfiltered = funnel(
        store, steps=["page_viewed", "page_viewed"], window="7 days", start="2026-06-01", end=AS_OF
    )
    assert [s["users"] for s in unfiltered["steps"]] != expected
    m = metrics(app)
    assert n(m["Entered the funnel"]) == expected[0] and n(m["Converted"]) == expected[1]


def test_funnel_step_moves_up_with_its_filter_and_steps_can_be_removed(app, store):
    goto(app, "funnels")
    rows = fn_rows(app)
    assert [s["event"] for s in fn_steps(app)] == ["product_viewed", "added_to_cart", "charged"]
    assert app.button(key=f"{rows[0]}up").disabled and app.button(key=f"{rows[2]}down").disabled
    app.text_input(key=f"{rows[2]}where").input("amount > 50").run()
    app.button(key=f"{rows[2]}up").click().run()
    assert_clean(app)
    moved = [
        {"event": "product_viewed", "where": None},
        {"event": "charged", "where": "amount > 50"},
        {"event": "added_to_cart", "where": None},
    ]
    assert fn_steps(app) == moved
    assert fn_rows(app) == [rows[0], rows[2], rows[1]]  # widget keys follow the step, not the row
    res = store.funnel(moved, window="1 days", start="2026-06-01", end=AS_OF)
    table = frame(app, "Median time from first")
    assert [n(u) for u in table["Users"]] == [s["users"] for s in res["steps"]]

    app.button(key=f"{rows[1]}rm").click().run()  # added_to_cart, now the last row
    assert_clean(app)
    assert fn_steps(app) == moved[:2]
    res = store.funnel(moved[:2], window="1 days", start="2026-06-01", end=AS_OF)
    assert n(metrics(app)["Converted"]) == res["steps"][-1]["users"]

    app.button(key=f"{rows[0]}rm").click().run()
    assert_clean(app)
    assert fn_steps(app) == [moved[1]]
    assert [i.value for i in app.info] == ["Pick at least two steps."]
    assert not app.metric
    app.button(key="fn_add_step").click().run()
    assert_clean(app)
    assert len(fn_steps(app)) == 2 and metrics(app)["Entered the funnel"]


def test_save_and_open_a_funnel_with_a_repeated_event(app, store):
    goto(app, "funnels")
    steps = [*PRICING_THEN_DOCS, {"event": "page_viewed", "where": None}]
    set_fn_steps(app, [(s["event"], s["where"] or "") for s in steps])
    app.number_input(key="fn_win_n").set_value(3).run()
    first = metrics(app)
    app.text_input(key="fn_save_name").input("Pricing, docs, any page")
    app.button(key="FormSubmitter:fn_save_form-Save funnel").click().run()
    assert_clean(app)
    spec = store.catalog.get_funnel("Pricing, docs, any page")["spec"]
    assert spec["steps"] == steps and spec["window"] == "3 days"

    # the same session: change the steps, then open the saved funnel again
    set_fn_steps(app, [("signed_up", ""), ("charged", "")])
    app.selectbox(key="fn_saved").select("Pricing, docs, any page")
    app.button(key="fn_open").click().run()
    assert_clean(app)
    assert fn_steps(app) == steps
    assert metrics(app) == first

    fresh = open_saved_funnel("Pricing, docs, any page")
    assert fn_steps(fresh) == steps
    assert fresh.number_input(key="fn_win_n").value == 3
    assert metrics(fresh) == first


def test_a_bad_step_filter_names_the_step(app, store):
    goto(app, "funnels")
    row = fn_rows(app)[1]
    app.text_input(key=f"{row}where").input("amount >").run()
    assert not app.exception
    assert [e.value for e in app.error] == [
        "Step 2 (added_to_cart) where: syntax error: GT is missing its operand (line 1, column 8)"
    ]
    assert not app.metric
    app.text_input(key=f"{row}where").input("price > 100").run()
    assert_clean(app)
    steps = fn_steps(app)
    assert steps[1] == {"event": "added_to_cart", "where": "price > 100"}
    res = store.funnel(steps, window="1 days", start="2026-06-01", end=AS_OF)
    assert n(metrics(app)["Converted"]) == res["steps"][-1]["users"]


def test_open_a_saved_funnel_with_plain_event_name_steps(app, store):
    store.catalog.save_funnel("Plain", {"steps": ["signed_up", "no_such_event", "charged"]})
    goto(app, "funnels")
    app.selectbox(key="fn_saved").select("Plain")
    app.button(key="fn_open").click().run()
    assert_clean(app)
    steps = [{"event": "signed_up", "where": None}, {"event": "charged", "where": None}]
    assert fn_steps(app) == steps
    assert app.number_input(key="fn_win_n").value == 1
    res = store.funnel(steps, window="1 days", start="2026-06-01", end=AS_OF)
    assert n(metrics(app)["Entered the funnel"]) == res["steps"][0]["users"]


# ---------------------------------------------------------------------- static segments by hand
def _successes(at: AppTest) -> list[str]:
    return [s.value for s in at.success]


def test_static_segment_page_add_remove_undo_and_restore(app, store):
    known = store.scan_users().select("user_id").head(5).collect()["user_id"].to_list()
    store.catalog.upload_static("Picked", known[:3])
    app.session_state["segment"] = "Picked"
    goto(app, "segment")
    assert_clean(app)
    app.text_area(key="sp_add_text").input(f"{known[3]}, ghost\n{known[0]}")
    app.button(key="sp_add_go").click().run()
    assert_clean(app)
    assert store.catalog.members("Picked") == sorted([*known[:4], "ghost"])
    assert _successes(app) == [
        "Added 2 ids to 'Picked' (1 already a member, 1 not in the store yet (kept)): 5 ids "
        "stored, version 2. Members now: 4."]
    assert n(metrics(app)["Members now"]) == 4
    # undo the add
    app.button(key="sp_undo").click().run()
    assert_clean(app)
    assert store.catalog.members("Picked") == sorted(known[:3])
    assert _successes(app) == [
        "Undone: 'Picked' is back to version 1 (3 ids stored, now version 3)."]
    # select members of the table's page and remove them
    app.multiselect(key="sp_rm_ids").select(known[1]).select(known[2]).run()
    app.button(key="sp_rm_go").click().run()
    assert_clean(app)
    assert store.catalog.members("Picked") == [known[0]]
    assert _successes(app) == ["Removed 2 ids from 'Picked': 1 id stored, version 4. "
                               "Members now: 1."]
    assert n(metrics(app)["Members now"]) == 1
    # the history restores any earlier version
    table = frame(app, "member_count")
    assert table["version"].tolist() == [4, 3, 2, 1]
    assert table["member_count"].tolist() == [1, 3, 5, 3]
    app.selectbox(key="sp_hist_version").select(2)
    app.button(key="sp_hist_restore").click().run()
    assert_clean(app)
    assert store.catalog.members("Picked") == sorted([*known[:4], "ghost"])
    assert "'Picked' is back to version 2 (now version 5, 5 ids stored)." in _successes(app)


def test_static_segment_page_edit_after_a_concurrent_change_is_a_conflict(app, store):
    known = store.scan_users().select("user_id").head(3).collect()["user_id"].to_list()
    store.catalog.upload_static("Picked", known[:2])
    app.session_state["segment"] = "Picked"
    goto(app, "segment")
    app.multiselect(key="sp_rm_ids").select(known[0]).run()
    store.add_members("Picked", [known[2]])  # another session, meanwhile
    app.button(key="sp_rm_go").click().run()
    assert not app.exception
    assert [e.value for e in app.error] == [
        "Someone else changed this segment meanwhile: segment 'Picked' was changed by someone "
        "else (you edited version 1, it is now version 2); reload and try again"]
    assert store.catalog.members("Picked") == sorted(known)


def test_user_page_adds_to_and_removes_from_static_segments(app, store):
    uid = store.scan_users().select("user_id").head(1).collect().item()
    store.catalog.upload_static("Picked", ["someone-else"])
    store.catalog.upload_static("Other", [uid])
    goto(app, "user")
    app.text_input(key="ul_id").input(uid).run()
    assert_clean(app)
    assert app.selectbox(key="ul_add_target").options == ["Picked"]
    app.button(key="ul_add").click().run()
    assert_clean(app)
    assert store.catalog.members("Picked") == sorted(["someone-else", uid])
    assert _successes(app) == [
        "Added 1 id to 'Picked': 2 ids stored, version 2. Members now: 1."]
    assert "Picked" in store.user(uid, as_of=AS_OF)["segments"]
    app.button(key="ul_rm_Other").click().run()
    assert_clean(app)
    assert store.catalog.members("Other") == []
    app.button(key="ul_undo").click().run()
    assert_clean(app)
    assert store.catalog.members("Other") == [uid]
    assert store.catalog.member_of(uid) == ["Other", "Picked"]


def test_freeze_a_dynamic_segment_from_its_page(app, store):
    app.session_state["segment"] = "Email subscribers"
    goto(app, "segment")
    app.button(key="sp_freeze").click().run()
    assert app.text_input(key="sp_freeze_name").value == f"Email subscribers {AS_OF}"
    app.text_input(key="sp_freeze_name").input("June mailing")
    app.button(key="sp_freeze_go").click().run()
    assert_clean(app)
    expected = sorted(store.members(segment="Email subscribers", as_of=AS_OF)["user_id"])
    assert store.catalog.members("June mailing") == expected and expected
    assert _successes(app) == [f"Saved static segment 'June mailing' with {len(expected):,} "
                                f"members of 'Email subscribers' as of {AS_OF}."]
    assert store.catalog.get("June mailing").is_static
