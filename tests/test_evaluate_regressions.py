"""Regression tests for evaluator bugs, each named after the bug."""

from __future__ import annotations

import datetime as dt

from segcore.sql.engines import run_members

T = "2026-06-30"


def test_sequence_where_filters_only_the_first_event(tiny):
    """``where`` selects the A events of did_then/did_then_not; the B events are filtered
    by ``then_where`` only (it used to fall back to A's ``where``)."""
    d = dt.datetime(2026, 6, 20, 12)
    store = tiny(events=[
        ("a", "added_to_cart", d, {"price": 200.0}),
        ("a", "charged", d + dt.timedelta(minutes=5), {"price": 10.0}),  # cheap B still counts
        ("b", "added_to_cart", d, {"price": 200.0}),
        ("c", "added_to_cart", d, {"price": 50.0}),  # A filtered out
        ("c", "charged", d + dt.timedelta(minutes=5), {"price": 300.0}),
    ])
    rule = "did_then('added_to_cart', 'charged', gap => '10 minutes', where => price > 100)"
    assert store.members(rule, as_of=T)["user_id"].to_list() == ["a"]
    rule_not = ("did_then_not('added_to_cart', 'charged', gap => '10 minutes', "
                "where => price > 100)")
    assert store.members(rule_not, as_of=T)["user_id"].to_list() == ["b"]
    with_then = ("did_then('added_to_cart', 'charged', gap => '10 minutes', where => price > 100,"
                 " then_where => price > 100)")
    assert store.members(with_then, as_of=T)["user_id"].to_list() == []
    for engine in ("duckdb", "clickhouse"):
        for r, want in ((rule, ["a"]), (rule_not, ["b"]), (with_then, [])):
            assert run_members(store, r, as_of=T, engine=engine)["user_id"].to_list() == want
