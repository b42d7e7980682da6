"""Regression tests for evaluator bugs, each named after the bug."""

from __future__ import annotations

import datetime as dt

from segcore.engine.sql.engines import run_members

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


def test_in_memory_event_cache_equals_parquet_scans(sample_store):
    """The in-memory (event, ts)-sorted column cache gives the same members as Parquet
    scans, including '*' in sequences and windows that cut event ranges."""
    from segcore import Store

    cold = Store(sample_store.home, cache_events=False)
    rules = [
        "did('charged', within => '30 days')",
        "event_count('page_viewed', where => page = 'pricing') > 2",
        "did_then_not('added_to_cart', 'charged', gap => '10 minutes', within => '20 days')",
        "did_then('*', 'charged', gap => '1 hour', since => DATE '2026-05-01', "
        "until => DATE '2026-06-01')",
        "did_then('added_to_cart', '*', gap => '1 minute')",
        "NOT did('charged')",
        "did('*', within => '3 days')",
        "event_periods('app_launched', period => 'week', within => '7 weeks') >= 5",
        "first_seen('*') > TIMESTAMP '2026-05-01 00:00:00'",
        "event_sum('charged', amount, since => now() - interval '45 days') > 100",
    ]
    for rule in rules:
        for as_of in ("2026-06-30", "2026-05-15T12:00:00Z", "2026-03-05"):
            hot = sample_store.members(rule, as_of=as_of)["user_id"].to_list()
            assert hot == cold.members(rule, as_of=as_of)["user_id"].to_list(), (rule, as_of)
