"""Window boundaries of docs/rules.md section 6, on tiny hand-made stores.

T is 2026-07-01T00:00:00Z (``as_of="2026-06-30"``) unless a test says otherwise.
Each store has a few users whose single events sit exactly on, or 1 µs off, a
boundary; the expected members are read off the rule's definition.
"""

from __future__ import annotations

import datetime as dt

import pytest

AS_OF = "2026-06-30"
T = dt.datetime(2026, 7, 1)
US = dt.timedelta(microseconds=1)
DAY = dt.timedelta(days=1)
MIN = dt.timedelta(minutes=1)
WEEK = dt.timedelta(weeks=1)


def members(store, rule, as_of=AS_OF) -> list[str]:
    return store.members(rule, as_of=as_of)["user_id"].to_list()


# --------------------------------------------------------------------------- within
@pytest.fixture
def within_store(tiny):
    return tiny(
        events=[
            ("at_lo", "charged", T - 30 * DAY, {"amount": 1.0}),  # exactly T - W: counts
            ("before_lo", "charged", T - 30 * DAY - US, {"amount": 2.0}),  # 1 µs before: no
            ("at_T", "charged", T, {"amount": 4.0}),  # at T: does not exist
            ("last_us", "charged", T - US, {"amount": 8.0}),  # 1 µs before T: counts
        ]
    )


def test_within_includes_T_minus_W_and_excludes_T(within_store):
    assert members(within_store, "did('charged', within => '30 days')") == ["at_lo", "last_us"]


def test_within_sum_and_count_use_the_same_window(within_store):
    assert members(within_store, "event_sum('charged', amount, within => '30 days') = 1") == [
        "at_lo"
    ]
    assert members(within_store, "event_count('charged', within => '30 days') = 0") == [
        "before_lo"
    ]  # at_T has no event before T and is not in the universe


def test_event_at_T_does_not_exist(within_store):
    assert members(within_store, "did('charged')") == ["at_lo", "before_lo", "last_us"]
    # a user whose only event is at T is not in the universe at T
    assert members(within_store, "NOT did('charged')") == []
    # one microsecond later it exists
    later = "2026-07-01T00:00:00.000001Z"
    assert members(within_store, "did('charged', within => '1 second')", as_of=later) == [
        "at_T",
        "last_us",
    ]


# --------------------------------------------------------------------------- since / until
@pytest.fixture
def since_store(tiny):
    since, until = dt.datetime(2026, 6, 1), dt.datetime(2026, 6, 15)
    return tiny(
        events=[
            ("at_since", "charged", since),
            ("before_since", "charged", since - US),
            ("at_until", "charged", until),
            ("before_until", "charged", until - US),
        ]
    )


def test_since_until_is_half_open(since_store):
    rule = "did('charged', since => DATE '2026-06-01', until => '2026-06-15')"
    assert members(since_store, rule) == ["at_since", "before_until"]


def test_since_only_and_until_only(since_store):
    assert members(since_store, "did('charged', since => '2026-06-01')") == [
        "at_since",
        "at_until",
        "before_until",
    ]
    assert members(since_store, "did('charged', until => '2026-06-01')") == ["before_since"]


def test_since_until_relative_to_now(since_store):
    # T = 2026-06-16T00:00Z: now() - 15 days = 2026-06-01, now() - 1 day = 2026-06-15
    rule = "did('charged', since => now() - interval '15 days', until => now() - interval '1 day')"
    assert members(since_store, rule, as_of="2026-06-15") == ["at_since", "before_until"]


def test_until_after_T_is_capped_at_T(since_store):
    # until is in the future of T: events at or after T still do not exist
    rule = "did('charged', since => '2026-06-01', until => '2027-01-01')"
    assert members(since_store, rule, as_of="2026-06-15T00:00:00Z") == ["at_since", "before_until"]


def test_since_with_today(since_store):
    # as of 2026-06-15 (T = 2026-06-16T00:00Z) today() = 2026-06-15
    assert members(since_store, "did('charged', since => today())", as_of="2026-06-15") == [
        "at_until"
    ]


# --------------------------------------------------------------------------- sequences
@pytest.fixture
def seq_store(tiny):
    a = dt.datetime(2026, 6, 20, 12)
    gap = 10 * MIN
    return tiny(
        events=[
            # B exactly at a + gap: did_then counts it; did_then_not is not satisfied
            ("b_at_gap", "added_to_cart", a),
            ("b_at_gap", "charged", a + gap),
            # B 1 µs after a + gap: too late
            ("b_late", "added_to_cart", a),
            ("b_late", "charged", a + gap + US),
            # B at the same instant as A: does not follow it
            ("b_at_a", "added_to_cart", a),
            ("b_at_a", "charged", a),
            # B just after A
            ("b_just_after", "added_to_cart", a),
            ("b_just_after", "charged", a + US),
            # no B at all
            ("no_b", "added_to_cart", a),
            # B before A only
            ("b_before", "charged", a - US),
            ("b_before", "added_to_cart", a),
            # two A events: the first is followed, the second is not
            ("two_a", "added_to_cart", a),
            ("two_a", "charged", a + MIN),
            ("two_a", "added_to_cart", a + 2 * MIN),
        ]
    )


def test_did_then_b_exactly_at_a_plus_gap_counts(seq_store):
    rule = "did_then('added_to_cart', 'charged', gap => '10 minutes')"
    assert members(seq_store, rule) == ["b_at_gap", "b_just_after", "two_a"]


def test_did_then_not(seq_store):
    rule = "did_then_not('added_to_cart', 'charged', gap => '10 minutes')"
    assert members(seq_store, rule) == ["b_at_a", "b_before", "b_late", "no_b", "two_a"]


def test_did_then_not_needs_a_plus_gap_before_T(tiny):
    # a + gap == T: the gap has not passed yet at T (needs a + gap < T)
    store = tiny(
        events=[
            ("eq", "added_to_cart", T - 10 * MIN),
            ("just_before", "added_to_cart", T - 10 * MIN - US),
            ("other", "charged", T - 100 * DAY),
        ]
    )
    rule = "did_then_not('added_to_cart', 'charged', gap => '10 minutes')"
    assert members(store, rule) == ["just_before"]


def test_did_then_b_must_be_before_T(tiny):
    store = tiny(events=[("u", "added_to_cart", T - MIN), ("u", "charged", T)])
    assert members(store, "did_then('added_to_cart', 'charged', gap => '10 minutes')") == []
    # at T + 1 µs the B event exists
    assert members(
        store,
        "did_then('added_to_cart', 'charged', gap => '10 minutes')",
        as_of="2026-07-01T00:00:00.000001Z",
    ) == ["u"]


def test_sequence_window_selects_a_events_only(tiny):
    # A inside the window, B outside it (after T - W is irrelevant: B is not windowed)
    a = T - 30 * DAY
    store = tiny(
        events=[
            ("in", "added_to_cart", a),
            ("in", "charged", a + MIN),
            ("out", "added_to_cart", a - US),
            ("out", "charged", a + MIN),
        ]
    )
    rule = "did_then('added_to_cart', 'charged', gap => '10 minutes', within => '30 days')"
    assert members(store, rule) == ["in"]


def test_sequence_where_and_then_where(tiny):
    a = dt.datetime(2026, 6, 1)
    store = tiny(
        events=[
            ("cheap_cart", "added_to_cart", a, {"price": 5.0}),
            ("cheap_cart", "charged", a + MIN, {"amount": 500.0}),
            ("small_buy", "added_to_cart", a, {"price": 50.0}),
            ("small_buy", "charged", a + MIN, {"amount": 5.0}),
            ("both", "added_to_cart", a, {"price": 50.0}),
            ("both", "charged", a + MIN, {"amount": 500.0}),
        ]
    )
    rule = (
        "did_then('added_to_cart', 'charged', gap => '1 hour', where => price > 10, "
        "then_where => amount > 100)"
    )
    assert members(store, rule) == ["both"]
    rule_not = (
        "did_then_not('added_to_cart', 'charged', gap => '1 hour', where => price > 10, "
        "then_where => amount > 100)"
    )
    assert members(store, rule_not) == ["small_buy"]


# --------------------------------------------------------------------------- periods
def test_event_periods_boundaries(tiny):
    """Periods are [T-(k+1)P, T-kP): an event exactly at T - P is still in period 0,
    one exactly at T - 7 weeks in period 6, the last of 7 weeks."""
    store = tiny(
        events=[
            # three events in week 0 (T - 1 week included), one 1 µs earlier (week 1): 2 periods
            ("two", "app_launched", T - US),
            ("two", "app_launched", T - 3 * DAY),
            ("two", "app_launched", T - WEEK),
            ("two", "app_launched", T - WEEK - US),
            # T - 7 weeks is inside the 7-week window and in week 6: with weeks 0..5 -> 7
            *[("seven", "app_launched", T - k * WEEK - DAY) for k in range(6)],
            ("seven", "app_launched", T - 7 * WEEK),
            # 1 µs before the window: not counted
            ("outside", "app_launched", T - 7 * WEEK - US),
        ]
    )
    rule = "event_periods('app_launched', period => 'week', within => '7 weeks')"
    assert members(store, f"{rule} = 2") == ["two"]
    assert members(store, f"{rule} = 7") == ["seven"]
    assert members(store, f"{rule} = 0") == ["outside"]
    assert members(store, f"{rule} > 7") == []


def test_event_periods_regression_boundary_counts_in_the_right_week(tiny):
    """Regression (event_periods_boundary): k was floor((T - ts)/P), which put an event
    exactly at T - P in period 1 and one exactly at T - 7P in an 8th period of a 7-week
    window; docs/rules.md's periods are [T-(k+1)P, T-kP)."""
    store = tiny(
        events=[
            ("u", "app_launched", T - WEEK),
            ("u", "app_launched", T - WEEK + US),
            *[("v", "app_launched", T - k * WEEK) for k in range(1, 8)],
        ]
    )
    rule = "event_periods('app_launched', period => 'week', within => '7 weeks')"
    # T - WEEK and T - WEEK + 1 µs are both in [T - 1 week, T): one period
    assert members(store, f"{rule} = 1") == ["u"]
    # T - 1 week ... T - 7 weeks are the starts of periods 0..6: seven periods
    assert members(store, f"{rule} = 7") == ["v"]


def test_event_periods_by_day(tiny):
    store = tiny(events=[("u", "app_launched", T - k * DAY - MIN) for k in (0, 1, 1, 3)])
    assert members(store, "event_periods('app_launched', period => 'day') = 3") == ["u"]


# --------------------------------------------------------------------------- as of
def test_as_of_date_vs_timestamp(tiny):
    noon = dt.datetime(2026, 6, 30, 12)
    store = tiny(events=[("u", "charged", noon), ("v", "charged", noon - US)])
    # a date means the end of that UTC day
    assert members(store, "did('charged')", as_of="2026-06-30") == ["u", "v"]
    # a timestamp means exactly that instant
    assert members(store, "did('charged')", as_of="2026-06-30T12:00:00Z") == ["v"]
    assert members(
        store, "did('charged')", as_of=dt.datetime(2026, 6, 30, 12, 0, 0, 1, tzinfo=dt.timezone.utc)
    ) == ["u", "v"]
    assert members(store, "did('charged')", as_of=dt.date(2026, 6, 29)) == []


def test_today_is_the_date_just_before_T(tiny):
    store = tiny(
        users=[
            {"user_id": "d29", "renews": dt.date(2026, 6, 29)},
            {"user_id": "d30", "renews": dt.date(2026, 6, 30)},
            {"user_id": "d31", "renews": dt.date(2026, 7, 1)},
        ]
    )
    # as of 2026-06-30: T = 2026-07-01T00:00Z, today() = 2026-06-30
    assert members(store, "renews = today()") == ["d30"]
    assert members(store, "renews = current_date") == ["d30"]
    # at exactly midnight of 2026-07-01 it is still 2026-06-30
    assert members(store, "renews = today()", as_of="2026-07-01T00:00:00Z") == ["d30"]
    assert members(store, "renews = today()", as_of="2026-07-01T00:00:00.000001Z") == ["d31"]
    assert members(store, "renews = today() - 1") == ["d29"]
    assert members(store, "renews = today() + 1") == ["d31"]
    # now() is T itself: a date compares as its midnight
    assert members(store, "renews >= now()") == ["d31"]
    assert members(store, "renews < now() - interval '1 day'") == ["d29"]


def test_did_then_same_event_needs_a_later_one(tiny):
    """ "Bought again within a day": A and B are the same event; B must be strictly later."""
    a = dt.datetime(2026, 6, 10)
    store = tiny(
        events=[
            ("once", "charged", a),
            ("twice_same_instant", "charged", a),
            ("twice_same_instant", "charged", a),
            ("again", "charged", a),
            ("again", "charged", a + DAY),
            ("too_late", "charged", a),
            ("too_late", "charged", a + DAY + US),
        ]
    )
    assert members(store, "did_then('charged', 'charged', gap => '1 day')") == ["again"]


def test_sequence_with_since_until_window(tiny):
    since = dt.datetime(2026, 6, 1)
    store = tiny(
        events=[
            ("a_at_since", "added_to_cart", since),
            ("a_before", "added_to_cart", since - US),
            ("a_at_until", "added_to_cart", since + WEEK),
            ("other", "charged", since - WEEK),
        ]
    )
    rule = (
        "did_then_not('added_to_cart', 'charged', gap => '1 hour', "
        "since => '2026-06-01', until => '2026-06-08')"
    )
    assert members(store, rule) == ["a_at_since"]
