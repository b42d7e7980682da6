"""Reports in a report time zone across the 2026 clock changes, hand-computed.

New York: clocks go forward on 2026-03-08 (a 23-hour day, EST -05:00 -> EDT -04:00) and
back on 2026-11-01; Berlin: forward on 2026-03-29, back on 2026-10-25 (a 25-hour day,
CEST +02:00 -> CET +01:00). Event reports and funnels are checked on every engine (the
SQL engines count the same local days, ``segcore.engine.sql.localday``).
"""

from __future__ import annotations

import datetime as dt

import pytest

from segcore import query as Q
from segcore.engine.polars.evaluate import members
from segcore.lang.dates import report_zone
from tests.conftest import make_store

NY, BERLIN = "America/New_York", "Europe/Berlin"
ENGINES = ["polars", "duckdb", "clickhouse"]

EVENTS = [
    # New York
    ("a", "signup", "2026-03-08T04:30:00"),    # 03-07 23:30 EST: the day before the change
    ("a", "purchase", "2026-03-08T06:30:00"),  # 03-08 01:30 EST
    ("b", "signup", "2026-03-08T05:30:00"),    # 03-08 00:30 EST
    ("c", "signup", "2026-03-09T03:30:00"),    # 03-08 23:30 EDT
    ("c", "purchase", "2026-03-09T05:00:00"),  # 03-09 01:00 EDT
    ("d", "signup", "2026-03-09T04:30:00"),    # 03-09 00:30 EDT
    ("g", "signup", "2026-11-01T05:30:00"),    # 11-01 01:30 EST (second 01:30; first was 05:30Z-1h)
    ("h", "signup", "2026-11-02T04:30:00"),    # 11-01 23:30 EST
    # Berlin
    ("e", "signup", "2026-10-24T21:30:00"),    # 10-24 23:30 CEST: the day before the change
    ("e", "purchase", "2026-10-25T01:30:00"),  # 10-25 02:30 CET (the second 02:30)
    ("f", "signup", "2026-10-25T22:30:00"),    # 10-25 23:30 CET
    ("i", "signup", "2026-03-28T23:30:00"),    # 03-29 00:30 CET
    ("j", "signup", "2026-03-29T21:30:00"),    # 03-29 23:30 CEST
]
USERS = [{"user_id": u, "renews": dt.date(2026, 3, 8) if u in "ab" else dt.date(2026, 3, 9)}
         for u in "abcdefghij"]


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    return make_store(tmp_path_factory.mktemp("tz_reports"), EVENTS, USERS)


def counts(df, col="events"):
    return dict(zip(df["period"].cast(str).to_list(), df[col].to_list(), strict=True))


@pytest.mark.parametrize("engine", ENGINES)
def test_daily_event_counts(store, engine):
    utc = store.events(["signup"], "2026-03-07", "2026-03-09", engine=engine)
    assert counts(utc) == {"2026-03-07": 0, "2026-03-08": 2, "2026-03-09": 2}
    ny = store.events(["signup"], "2026-03-07", "2026-03-09", tz=NY, engine=engine)
    assert counts(ny) == {"2026-03-07": 1, "2026-03-08": 2, "2026-03-09": 1}
    # the 25-hour day 11-01 keeps both its 01:30 and its 23:30
    fall = store.events(["signup"], "2026-10-31", "2026-11-02", tz=NY, engine=engine)
    assert counts(fall) == {"2026-10-31": 0, "2026-11-01": 2, "2026-11-02": 0}
    berlin = store.events(["signup", "purchase"], "2026-10-24", "2026-10-25", tz=BERLIN, engine=engine)
    by = {(str(p), e): n for p, e, n in berlin.select("period", "event", "events").iter_rows()}
    assert by == {("2026-10-24", "signup"): 1, ("2026-10-25", "signup"): 1,
                  ("2026-10-24", "purchase"): 0, ("2026-10-25", "purchase"): 1}
    spring = store.events(["signup"], "2026-03-28", "2026-03-29", tz=BERLIN, engine=engine)
    assert counts(spring) == {"2026-03-28": 0, "2026-03-29": 2}


@pytest.mark.parametrize("engine", ENGINES)
def test_weekly_event_periods(store, engine):
    # the week of Monday 03-02 holds a, b and c (03-07 and 03-08 local); 03-09 holds d
    ny = store.events(["signup"], "2026-03-02", "2026-03-15", every="week", tz=NY, engine=engine)
    assert counts(ny) == {"2026-03-02": 3, "2026-03-09": 1}
    utc = store.events(["signup"], "2026-03-02", "2026-03-15", every="week", engine=engine)
    assert counts(utc) == {"2026-03-02": 2, "2026-03-09": 2}


def test_trend_entries_and_exits(store):
    rule = "did('signup', since => today())"
    ny = store.trend(rule, "2026-03-07", "2026-03-09", tz=NY)
    assert ny["members"].to_list() == [1, 2, 1]   # {a}, {b, c}, {d}
    assert ny["entered"].to_list() == [1, 2, 1]
    assert ny["exited"].to_list() == [0, 1, 2]
    utc = store.trend(rule, "2026-03-07", "2026-03-09")
    assert utc["members"].to_list() == [0, 2, 2]  # {}, {a, b}, {c, d}
    q = Q.TrendQuery(Q.Target(rule=rule), Q.DateRange("2026-03-07", "2026-03-09"), tz=NY)
    assert Q.trend_actors(store, q, "2026-03-08", "entered")["user_id"].to_list() == ["b", "c"]
    assert Q.trend_actors(store, q, "2026-03-08", "exited")["user_id"].to_list() == ["a"]


def test_relative_durations_stay_elapsed_time(store):
    """``within => '1 day'`` is 24 hours: at the end of the 23-hour 03-08 it still reaches
    back to 23:30 on 03-07 (a), which ``since => today()`` does not."""
    ny = store.trend("did('signup', within => '1 day')", "2026-03-08", "2026-03-08", tz=NY)
    assert ny["members"].to_list() == [3]  # a, b, c
    assert store.count("did('signup', since => today())", "2026-03-08", tz=NY) == 2


def test_trend_grid_matches_members_at_each_local_day(store):
    rules = ["did('signup', since => today() - 1)", "event_count('signup', within => '25 hours') >= 1",
             "renews = today()", "now() > renews + interval '20 hours'",
             "event_periods('signup', period => '1 day', within => '3 days') >= 1"]
    for zone in (NY, BERLIN, "Australia/Lord_Howe", "Asia/Kolkata"):
        for rule in rules:
            got = store.trend(rule, "2026-03-05", "2026-03-31", tz=zone)
            with report_zone(zone):
                want = [members(store, rule, as_of=str(d)).height for d in got["date"]]
            assert got["members"].to_list() == want, (zone, rule)


@pytest.mark.parametrize("engine", ENGINES)
def test_funnel_entered_the_day_before_a_change(store, engine):
    # a enters at 23:30 on 03-07 (NY), completes 01:30 on 03-08: its entry day is 03-07
    ny = Q.run_funnel_trend(store, Q.FunnelTrendQuery(
        Q.FunnelQuery(steps=("signup", "purchase"), window="1d",
                      range=Q.DateRange("2026-03-07", "2026-03-09")), "day", tz=NY), engine).rows
    assert ny["period"].cast(str).to_list() == ["2026-03-07", "2026-03-08", "2026-03-09"]
    assert ny["entered"].to_list() == [1, 2, 1]
    assert ny["completed"].to_list() == [1, 1, 0]
    utc = store.funnel(["signup", "purchase"], start="2026-03-07", end="2026-03-07", tz=NY,
                       engine=engine)
    assert [s["users"] for s in utc["steps"]] == [1, 1]
    assert [s["users"] for s in store.funnel(["signup", "purchase"], start="2026-03-07",
                                             end="2026-03-07", engine=engine)["steps"]] == [0, 0]
    # Berlin: e enters 23:30 CEST on 10-24 and buys in the repeated hour of 10-25
    berlin = Q.run_funnel_trend(store, Q.FunnelTrendQuery(
        Q.FunnelQuery(steps=("signup", "purchase"), window="1d",
                      range=Q.DateRange("2026-10-24", "2026-10-25")), "day", tz=BERLIN), engine).rows
    assert berlin["entered"].to_list() == [1, 1]
    assert berlin["completed"].to_list() == [1, 0]


def test_today_at_local_midnight(store):
    # renews = 03-08 for a, b; 03-09 for the rest. NY midnight of 03-09 is 04:00Z: the end
    # of 03-08, so today() is still 03-08; a microsecond later it is 03-09.
    assert store.count("renews = today()", "2026-03-09T04:00:00Z", tz=NY) == 2
    assert store.count("renews = today()", "2026-03-09T04:00:00.000001Z", tz=NY) == 8
    assert store.count("renews = today()", "2026-03-09T04:00:00Z") == 8  # UTC: 03-09


@pytest.mark.parametrize("engine", ENGINES)
def test_store_setting_and_request_override(tmp_path, engine):
    from segcore.store.settings import read_settings, set_setting

    s = make_store(tmp_path / "s", EVENTS, USERS)
    assert counts(s.events(["signup"], "2026-03-07", "2026-03-07", engine=engine)) == {"2026-03-07": 0}
    set_setting(s.home, "timezone", NY)
    assert read_settings(s.home) == {"timezone": NY, "week_start": "monday"}
    assert counts(s.events(["signup"], "2026-03-07", "2026-03-07", engine=engine)) == {"2026-03-07": 1}
    assert counts(s.events(["signup"], "2026-03-07", "2026-03-07", tz="UTC", engine=engine)) == \
        {"2026-03-07": 0}
    set_setting(s.home, "week_start", "sunday")
    weeks = s.events(["signup"], "2026-03-01", "2026-03-14", every="week", engine=engine)
    assert counts(weeks) == {"2026-03-01": 1, "2026-03-08": 3}


# --------------------------------------------------------------------------- periods
# Retention, lifecycle and stickiness bucket instants into days, weeks and months of the
# report zone: a day is the local calendar day (23 or 25 hours on the change days), weeks
# start on the store's week start, and every engine gives the same periods.
PERIOD_EVENTS = [
    # New York
    ("u1", "open", "2026-03-08T04:30:00"),  # 03-07 23:30 EST (Sat): the day before the change
    ("u1", "open", "2026-03-08T06:30:00"),  # 03-08 01:30 EST (Sun)
    ("u1", "buy", "2026-03-09T03:30:00"),   # 03-08 23:30 EDT (Sun): the 23-hour day's last hour
    ("u2", "open", "2026-03-09T03:30:00"),  # 03-08 23:30 EDT (Sun)
    ("u2", "open", "2026-03-09T04:30:00"),  # 03-09 00:30 EDT (Mon)
    ("u2", "buy", "2026-03-16T03:59:00"),   # 03-15 23:59 EDT (Sun)
    ("u3", "open", "2026-11-01T04:30:00"),  # 11-01 00:30 EDT: the 25-hour day's first hour
    ("u3", "open", "2026-11-02T04:30:00"),  # 11-01 23:30 EST: its last hour
    ("u6", "open", "2026-11-01T03:30:00"),  # 10-31 23:30 EDT: October's last day
    # Berlin
    ("u4", "open", "2026-03-28T23:30:00"),  # 03-29 00:30 CET: the 23-hour day's first hour
    ("u4", "open", "2026-03-29T21:30:00"),  # 03-29 23:30 CEST: its last hour
    ("u4", "buy", "2026-03-29T22:30:00"),   # 03-30 00:30 CEST (Mon)
    ("u5", "open", "2026-10-24T22:30:00"),  # 10-25 00:30 CEST: the 25-hour day's first hour
    ("u5", "open", "2026-10-25T22:30:00"),  # 10-25 23:30 CET: its last hour
]
SQL_ENGINES = ("duckdb", "clickhouse")


@pytest.fixture(scope="module")
def periods_store(tmp_path_factory):
    return make_store(tmp_path_factory.mktemp("tz_periods"), PERIOD_EVENTS,
                      [{"user_id": f"u{i}"} for i in range(1, 7)])


def on_every_engine(run, store, q, *args):
    """The Polars result of ``run``, checked equal on DuckDB and ClickHouse."""
    want = run(store, q, *args)
    for engine in SQL_ENGINES:  # ok-loop: one run per engine
        got = run(store, q, *args, engine=engine)
        same = got.equals(want) if hasattr(got, "equals") else got.to_dict() == want.to_dict()
        assert same, (engine, q)
    return want


def cohorts(store, every, start, end, periods, tz, **kw):
    q = Q.RetentionQuery("open", "buy", Q.DateRange(start, end), every, periods, tz=tz, **kw)
    r = on_every_engine(Q.run_retention, store, q)
    return {c["period"]: (c["size"], c["retained"]) for c in r.cohorts()}


def test_daily_retention_in_local_days(periods_store):
    # NY: u1 first opens 03-07 23:30 and buys on 03-08 (k = 1); u2 first opens 03-08 23:30
    assert cohorts(periods_store, "day", "2026-03-07", "2026-03-09", 2, NY) == {
        "2026-03-07": (1, [0, 1, 0]), "2026-03-08": (1, [0, 0, 0]), "2026-03-09": (0, [0, 0, 0])}
    assert cohorts(periods_store, "day", "2026-03-07", "2026-03-09", 2, "UTC") == {
        "2026-03-07": (0, [0, 0, 0]), "2026-03-08": (1, [0, 1, 0]), "2026-03-09": (1, [0, 0, 0])}
    # Berlin: both of u4's opens are on the 23-hour 03-29; the buy at 00:30 on 03-30
    assert cohorts(periods_store, "day", "2026-03-28", "2026-03-30", 1, BERLIN) == {
        "2026-03-28": (0, [0, 0]), "2026-03-29": (1, [0, 1]), "2026-03-30": (0, [0, 0])}
    assert cohorts(periods_store, "day", "2026-03-28", "2026-03-30", 1, "UTC") == {
        "2026-03-28": (1, [0, 1]), "2026-03-29": (0, [0, 0]), "2026-03-30": (0, [0, 0])}


def test_weekly_retention_follows_the_week_start(tmp_path):
    s = make_store(tmp_path / "weeks", PERIOD_EVENTS)
    # Monday weeks: u1 (Sat 03-07) and u2 (Sun 03-08) start in the week of 03-02; u1 buys
    # in it (Sun 03-08 23:30), u2 in the next one (Sun 03-15 23:59)
    assert cohorts(s, "week", "2026-03-02", "2026-03-15", 1, NY) == {
        "2026-03-02": (2, [1, 1]), "2026-03-09": (0, [0, 0])}
    assert cohorts(s, "week", "2026-03-02", "2026-03-15", 1, "UTC") == {
        "2026-03-02": (1, [0, 1]), "2026-03-09": (1, [0, 1])}
    from segcore.store.settings import set_setting
    set_setting(s.home, "week_start", "sunday")
    # Sunday weeks: u1 starts in the week of 03-01 and buys in the next; u2 starts on Sunday
    # 03-08 and buys on the next Sunday
    assert cohorts(s, "week", "2026-03-01", "2026-03-14", 1, NY) == {
        "2026-03-01": (1, [0, 1]), "2026-03-08": (1, [0, 1])}
    q = Q.RetentionQuery("open", "buy", Q.DateRange("2026-03-01", "2026-03-14"), "week", 1,
                         tz=NY)
    assert on_every_engine(Q.retention_actors, s, q, "2026-03-10", 1)["user_id"].to_list() \
        == ["u2"]


def test_daily_lifecycle_in_local_days(periods_store):
    rng = Q.DateRange("2026-03-07", "2026-03-09")
    ny = on_every_engine(Q.run_lifecycle, periods_store, Q.LifecycleQuery("open", rng, "day", tz=NY))
    assert [(str(r[0]), *r[1:]) for r in ny.table.rows()] == [
        ("2026-03-07", 1, 0, 0, 0), ("2026-03-08", 1, 1, 0, 0), ("2026-03-09", 0, 1, 0, -1)]
    utc = on_every_engine(Q.run_lifecycle, periods_store,
                          Q.LifecycleQuery("open", rng, "day", tz="UTC"))
    assert [(str(r[0]), *r[1:]) for r in utc.table.rows()] == [
        ("2026-03-07", 0, 0, 0, 0), ("2026-03-08", 1, 0, 0, 0), ("2026-03-09", 1, 0, 0, -1)]
    q = Q.LifecycleQuery("open", rng, "day", tz=NY)
    assert on_every_engine(Q.lifecycle_actors, periods_store, q, "2026-03-09", "dormant")[
        "user_id"].to_list() == ["u1"]


def sticky(store, every, start, end, tz) -> dict[tuple[str, int], int]:
    q = Q.StickinessQuery("open", Q.DateRange(start, end), every, tz=tz)
    t = on_every_engine(Q.run_stickiness, store, q).table
    return {(str(p), n): u for p, n, u in t.rows() if u}


def test_stickiness_counts_local_days_of_any_length(periods_store):
    # u3's two opens are 23 hours apart on the 25-hour 11-01; u6's 23:30 is still October
    assert sticky(periods_store, "month", "2026-10-01", "2026-11-30", NY) == {
        ("2026-10-01", 1): 1, ("2026-10-01", 2): 1, ("2026-11-01", 1): 1}
    assert sticky(periods_store, "month", "2026-10-01", "2026-11-30", "UTC") == {
        ("2026-10-01", 2): 1, ("2026-11-01", 1): 1, ("2026-11-01", 2): 1}
    # Berlin: u4's opens share the 23-hour 03-29, u5's the 25-hour 10-25
    assert sticky(periods_store, "week", "2026-03-23", "2026-03-29", BERLIN) == {
        ("2026-03-23", 1): 1}
    assert sticky(periods_store, "week", "2026-03-23", "2026-03-29", "UTC") == {
        ("2026-03-23", 2): 1}
    assert sticky(periods_store, "week", "2026-10-19", "2026-10-25", BERLIN) == {
        ("2026-10-19", 1): 1}
    assert sticky(periods_store, "week", "2026-10-19", "2026-10-25", "UTC") == {
        ("2026-10-19", 2): 1}
    q = Q.StickinessQuery("open", Q.DateRange("2026-10-01", "2026-11-30"), "month", tz=NY)
    assert on_every_engine(Q.stickiness_actors, periods_store, q, "2026-10-15", 2)[
        "user_id"].to_list() == ["u5"]


def test_period_arithmetic_in_a_zone():
    from segcore.lang.periods import Period

    with report_zone(NY, "sunday"):
        w = Period.WEEK.index_of(dt.date(2026, 3, 8))
        assert Period.WEEK.start_of(w) == dt.date(2026, 3, 8)
        assert Period.WEEK.start_of(w - 1) == dt.date(2026, 3, 1)
        assert Period.WEEK.index_of(dt.date(2026, 3, 7)) == w - 1
    with report_zone(NY):
        assert Period.WEEK.start_of(Period.WEEK.index_of(dt.date(2026, 3, 8))) == \
            dt.date(2026, 3, 2)
# the edges of a 23-hour (New York 03-08) and a 25-hour day (Berlin 10-25), to the microsecond
EDGES = [
    ("n1", "tick", "2026-03-08T04:59:59.999999"),  # 03-07 23:59:59.999999 EST
    ("n2", "tick", "2026-03-08T05:00:00"),         # 03-08 00:00 EST
    ("n3", "tick", "2026-03-08T06:59:59"),         # 03-08 01:59:59 EST, before the gap
    ("n4", "tick", "2026-03-08T07:00:00"),         # 03-08 03:00 EDT, after it
    ("n5", "tick", "2026-03-09T03:59:59.999999"),  # 03-08 23:59:59.999999 EDT
    ("n6", "tick", "2026-03-09T04:00:00"),         # 03-09 00:00 EDT
    ("b1", "tick", "2026-10-24T21:59:59.999999"),  # 10-24 23:59:59.999999 CEST
    ("b2", "tick", "2026-10-24T22:00:00"),         # 10-25 00:00 CEST
    ("b3", "tick", "2026-10-25T00:30:00"),         # 10-25 02:30 CEST (the first)
    ("b4", "tick", "2026-10-25T01:30:00"),         # 10-25 02:30 CET (the second)
    ("b5", "tick", "2026-10-25T22:59:59.999999"),  # 10-25 23:59:59.999999 CET
    ("b6", "tick", "2026-10-25T23:00:00"),         # 10-26 00:00 CET
    ("f", "signup", "2026-03-08T04:30:00"),        # 03-07 23:30 EST, the day before the change
    ("f", "purchase", "2026-03-08T06:30:00"),      # 03-08 01:30 EST
    ("g", "signup", "2026-10-24T21:30:00"),        # 10-24 23:30 CEST, the day before the change
    ("g", "purchase", "2026-10-25T01:30:00"),      # 10-25 02:30 CET
]


@pytest.fixture(scope="module")
def edges(tmp_path_factory):
    return make_store(tmp_path_factory.mktemp("tz_edges"), EDGES,
                      [{"user_id": u} for u in dict.fromkeys(e[0] for e in EDGES)])


@pytest.mark.parametrize("engine", [*ENGINES, "spark"])
def test_daily_counts_across_a_23_and_a_25_hour_day(edges, engine):
    def daily(first, last, tz):
        return counts(edges.events(["tick"], first, last, tz=tz, engine=engine))

    assert daily("2026-03-07", "2026-03-09", NY) == \
        {"2026-03-07": 1, "2026-03-08": 4, "2026-03-09": 1}
    assert daily("2026-03-07", "2026-03-09", "UTC") == \
        {"2026-03-07": 0, "2026-03-08": 4, "2026-03-09": 2}
    assert daily("2026-10-24", "2026-10-26", BERLIN) == \
        {"2026-10-24": 1, "2026-10-25": 4, "2026-10-26": 1}
    # the range's bounds are local midnights: one day holds exactly its own events
    assert daily("2026-03-08", "2026-03-08", NY) == {"2026-03-08": 4}
    assert daily("2026-10-25", "2026-10-25", BERLIN) == {"2026-10-25": 4}
    for tz, first, last in ((NY, "2026-03-07", "2026-03-08"), (BERLIN, "2026-10-24", "2026-10-25")):
        trend = Q.run_funnel_trend(edges, Q.FunnelTrendQuery(
            Q.FunnelQuery(steps=("signup", "purchase"), window="1d",
                          range=Q.DateRange(first, last)), "day", tz=tz), engine).rows
        assert trend["entered"].to_list() == [1, 0], tz
        assert trend["completed"].to_list() == [1, 0], tz
