"""The SQL engines in a report time zone: analytics measured at instants follow the zone
(instants from its midnights, ``today()`` and dates compiled with the dialect's own zone
functions) and equal the Polars runner; so do the periods of retention, lifecycle and
stickiness (local days, weeks and months: ``Dialect.local_date``); the other reports that
count per calendar period in SQL refuse a zone other than UTC with one line
(docs/engines.md, Time zones)."""

from __future__ import annotations

import pytest

from segcore.errors import UsageError
from segcore.query import (
    DateRange,
    EngagementQuery,
    EngagementTrendQuery,
    EventQuery,
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
from segcore.segments import create_segment

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


def test_period_counts_refuse_another_zone(sample_store):
    q = EventQuery(("app_launched",), DateRange("2026-06-01", "2026-06-08"), "day",
                   tz="Europe/Berlin")
    with pytest.raises(UsageError, match="report time zone Europe/Berlin runs on the polars"):
        run(sample_store, q, engine="duckdb")
    assert run(sample_store, EventQuery(("app_launched",), q.range, "day", tz="UTC"),
               engine="duckdb").to_dict() == run(sample_store, EventQuery(
                   ("app_launched",), q.range, "day", tz="UTC")).to_dict()


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
    for q in period_queries(tz):  # ok-loop: one query per report
        want = run(sample_store, q).to_dict()
        assert run(sample_store, q, engine=engine).to_dict() == want, q


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
