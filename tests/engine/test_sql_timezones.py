"""The SQL engines in a report time zone (docs/engines.md, Time zones): analytics measured at
instants follow the zone (instants from its midnights, ``today()`` and dates compiled with
the dialect's own zone functions); event reports and funnels count its local days
(``segcore.engine.sql.localday``). All equal the Polars runner, here across the 2026 clock
changes of New York (03-08, 11-01), Berlin (03-29, 10-25) and Lord Howe (04-05, 10-04, half
an hour) and in Kolkata (+05:30, no change). So do the periods of retention,
lifecycle and stickiness (local days, weeks and months: ``Dialect.local_date``)."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pytest

from segcore import Store
from segcore.lang.dates import ReportZone, localize
from segcore.query import (
    DateRange,
    EngagementQuery,
    EngagementTrendQuery,
    EventQuery,
    FunnelQuery,
    FunnelTrendQuery,
    LifecycleQuery,
    ReachQuery,
    RetentionQuery,
    StickinessQuery,
    Target,
    TrendQuery,
    lifecycle_actors,
    retention_actors,
    run,
    stickiness_actors,
)
from segcore.query.queries import Exclusion, Step
from segcore.query.runners import funnel_actors
from segcore.segments import create_segment
from tests.analytics.test_funnel_ties import Ev, write_store

ZONES = ["America/New_York", "Europe/Berlin", "Asia/Kolkata", "Australia/Lord_Howe"]
# recent activity and a date compared with today(): both move with the zone's midnight
ACTIVE = "did('app_launched', within => '3 days')"
RECENT = "first_seen('app_launched') >= today() - interval '20 days'"


def queries(tz: str) -> list:
    days = DateRange("2026-06-01", "2026-06-08")
    return [
        TrendQuery(Target(rule=ACTIVE), days, "day", tz=tz),
        TrendQuery(Target(rule=RECENT), DateRange("2026-05-01", "2026-06-28"), "week", tz=tz),
        ReachQuery(Target(rule=RECENT), "2026-06-15", tz=tz),
        EngagementQuery(Target(rule=ACTIVE), "2026-06-15", tz=tz),
        EngagementTrendQuery(Target(rule=ACTIVE), days, "day", tz=tz),
    ]


@pytest.mark.parametrize("engine", ["duckdb", "clickhouse"])
@pytest.mark.parametrize("tz", ZONES)
def test_instant_analytics_follow_the_zone(sample_store, engine, tz):
    for q in queries(tz):  # ok-loop: one query per analytic
        want = run(sample_store, q).to_dict()
        assert run(sample_store, q, engine=engine).to_dict() == want, type(q).__name__


def test_the_zone_changes_the_answer(sample_store):
    """The fixture is not blind to the zone: New York's days give other daily members."""
    q = queries("America/New_York")[0]
    utc = TrendQuery(q.target, q.range, q.every, tz="UTC")
    assert run(sample_store, q, engine="duckdb").to_dict() != run(sample_store, utc).to_dict()


# --------------------------------------------------------------------------- event reports, funnels
HOUR_US = 3_600_000_000
CHANGES = {  # local days on which the clocks change (Kolkata: none, the same days as probes)
    "America/New_York": ["2026-03-08", "2026-11-01"],
    "Europe/Berlin": ["2026-03-29", "2026-10-25"],
    "Asia/Kolkata": ["2026-03-08", "2026-10-25"],
    "Australia/Lord_Howe": ["2026-04-05", "2026-10-04"],
}
SPRING, FALL = DateRange("2026-03-05", "2026-04-08"), DateRange("2026-09-30", "2026-11-04")


def _us(t: dt.datetime) -> int:
    return (t - dt.datetime(1970, 1, 1, tzinfo=dt.UTC)) // dt.timedelta(microseconds=1)


def clock_change_history(seed: int = 7, n_users: int = 60) -> dict[str, list[Ev]]:
    """Random events (a, b, c, x; property p, NULL at times) on a minute grid within 40
    hours of every local midnight around a clock change; events one microsecond either
    side of those midnights; and per zone and change a user entering (a) at 23:30 on the
    day before, then b and c within the hour and a half after."""
    rng = np.random.default_rng(seed)
    out: dict[str, list[Ev]] = {f"u{i}": [] for i in range(n_users)}
    midnights = []
    for zone, days in CHANGES.items():  # ok-loop: a few zones and days
        z = ReportZone(zone)
        for day in map(dt.date.fromisoformat, days):  # ok-loop
            midnights += [z.start_of_day(day + dt.timedelta(days=k)) for k in (-1, 0, 1)]
            start = _us(localize(dt.datetime.combine(day, dt.time(23, 30))
                                 - dt.timedelta(days=1), z))
            out[f"e-{zone}-{day}"] = [Ev(start, "a", 1), Ev(start + HOUR_US, "b", 1),
                                      Ev(start + 3 * HOUR_US // 2, "c", None)]
    for m in midnights:  # ok-loop: the fixture's rows
        at = _us(m)
        for i, u in enumerate(rng.choice(n_users, size=8, replace=False)):  # ok-loop
            t = at + (1 if i % 2 else -1) * (i // 2)
            out[f"u{u}"].append(Ev(t, "abcx"[i % 4], int(i % 3) if i != 5 else None))
        for u in range(n_users):  # ok-loop
            n = int(rng.integers(0, 4))
            minutes = rng.integers(-40 * 60, 40 * 60, size=n)
            names = rng.choice(list("abcx"), size=n, p=[0.4, 0.3, 0.2, 0.1])
            for mi, name in zip(minutes, names, strict=True):  # ok-loop
                p = int(rng.integers(0, 3)) if rng.random() > 0.15 else None
                out[f"u{u}"].append(Ev(at + int(mi) * 60_000_000, str(name), p))
    return out


@pytest.fixture(scope="module")
def changes(tmp_path_factory: pytest.TempPathFactory) -> Store:
    history = clock_change_history()
    store = write_store(tmp_path_factory.mktemp("tzchanges"), history)
    users = sorted(history)
    store.catalog.create("odd", kind="static", members=users[1::2])
    store.catalog.create("even", kind="static", members=users[::2])
    return store


def report_queries(tz: str) -> list:
    f = FunnelQuery(steps=(Step("a"), Step("b"), Step("c")), window="2h", range=SPRING, tz=tz)
    later = FunnelQuery(steps=(Step("a"), Step("b")), window="1d", range=FALL, tz=tz,
                        compare=("odd", "even"))
    chains = FunnelQuery(steps=(Step("a"), Step("b"), Step("c")), window="3h", range=FALL,
                         exclusions=(Exclusion("x"),), tz=tz)  # the selected-rows path
    return [
        EventQuery(("a", "b"), SPRING, "day", tz=tz),
        EventQuery(("a", "c"), FALL, "day", by="p", top=1, tz=tz),
        EventQuery(("a",), SPRING, "week", compare=("odd", "even"), tz=tz),
        EventQuery(("b", "x"), FALL, "week", segment="odd", where="p >= 1", tz=tz),
        f, later, chains,
        FunnelTrendQuery(f, "day", tz=tz),
        FunnelTrendQuery(f, "week", tz=tz),
        FunnelTrendQuery(later, "day", tz=tz),
        FunnelTrendQuery(chains, "day", tz=tz),
    ]


def assert_same(store, queries: list, engine: str) -> None:
    """Every query's result on ``engine`` equals Polars'."""
    for q in queries:  # ok-loop: one query per report
        assert run(store, q, engine=engine).to_dict() == run(store, q).to_dict(), q


@pytest.mark.parametrize("engine", ["duckdb", "clickhouse"])
@pytest.mark.parametrize("tz", ZONES)
def test_event_reports_and_funnels_follow_the_zone(changes, engine, tz):
    assert_same(changes, report_queries(tz), engine)
    dropped = FunnelQuery(steps=(Step("a"), Step("b"), Step("c")), window="2h", range=SPRING,
                          tz=tz)
    for step in (1, 2):  # ok-loop: ClickHouse's windowFunnel path too
        assert funnel_actors(changes, dropped, step, engine).equals(
            funnel_actors(changes, dropped, step)), step


def test_the_zone_moves_reports_and_funnels(changes):
    """The fixture is not blind to the zone: every zone gives other daily counts and
    entry days than UTC, and the users entering at 23:30 count on the day before."""
    for tz in ZONES:  # ok-loop
        for q in (report_queries(tz)[0], report_queries(tz)[7]):  # ok-loop
            utc = run(changes, type(q)(**{**q.__dict__, "tz": "UTC"}), engine="duckdb")
            assert run(changes, q, engine="duckdb").to_dict() != utc.to_dict(), (tz, q)


@pytest.mark.parametrize("tz", ["Europe/Berlin", "Australia/Lord_Howe"])
def test_spark_counts_the_local_days(changes, tz):
    assert_same(changes, [report_queries(tz)[2], report_queries(tz)[8]], "spark")


def period_queries(tz: str) -> list:
    rng = DateRange("2026-04-27", "2026-06-14")
    return [
        RetentionQuery("signed_up", "app_launched", rng, "week", 3, tz=tz),
        RetentionQuery("app_launched", "charged", DateRange("2026-06-01", "2026-06-10"), "day",
                       4, recurring=True, tz=tz),
        RetentionQuery("app_launched", "charged", rng, "month", 1, on_or_after=True, tz=tz),
        LifecycleQuery("app_launched", rng, "day", tz=tz),
        LifecycleQuery("charged", rng, "week", tz=tz),
        StickinessQuery("app_launched", rng, "week", tz=tz),
        StickinessQuery("app_launched", rng, "month", tz=tz),
    ]


@pytest.mark.parametrize("engine", ["duckdb", "clickhouse"])
@pytest.mark.parametrize("tz", ZONES)
def test_period_reports_follow_the_zone(sample_store, engine, tz):
    assert_same(sample_store, period_queries(tz), engine)


def test_the_zone_changes_the_periods(sample_store):
    """The fixture is not blind to the zone: Kolkata's days give other daily cohorts."""
    kolkata, utc = period_queries("Asia/Kolkata")[1], period_queries("UTC")[1]
    assert run(sample_store, kolkata, engine="duckdb").to_dict() != \
        run(sample_store, utc).to_dict()


@pytest.mark.parametrize("engine", ["duckdb", "clickhouse"])
def test_entered_cohorts_and_cell_users_follow_the_zone(writable_sample, engine):
    store = writable_sample
    create_segment(store, "Active", "did('app_launched', within => '3 days')")
    rng = DateRange("2026-06-01", "2026-06-14")
    for tz in ZONES:  # ok-loop: one zone at a time
        q = RetentionQuery(None, "charged", rng, "week", 1, entered="Active", tz=tz)
        assert run(store, q, engine=engine).to_dict() == run(store, q).to_dict(), tz
        assert retention_actors(store, q, "2026-06-08", 0, engine=engine).equals(
            retention_actors(store, q, "2026-06-08", 0)), tz
        lq = LifecycleQuery("charged", rng, "week", tz=tz)
        assert lifecycle_actors(store, lq, "2026-06-08", "returning", engine=engine).equals(
            lifecycle_actors(store, lq, "2026-06-08", "returning")), tz
        sq = StickinessQuery("app_launched", rng, "week", tz=tz)
        assert stickiness_actors(store, sq, "2026-06-08", 2, engine=engine).equals(
            stickiness_actors(store, sq, "2026-06-08", 2)), tz


def test_spark_local_periods_in_a_zone(sample_store):
    tz = "Australia/Lord_Howe"
    rng = DateRange("2026-03-30", "2026-04-12")  # holds Lord Howe's 24.5-hour 04-05
    for q in (RetentionQuery("app_launched", "charged", rng, "day", 2, recurring=True, tz=tz),
              StickinessQuery("app_launched", rng, "week", tz=tz)):
        assert run(sample_store, q, engine="spark").to_dict() == run(sample_store, q).to_dict()
