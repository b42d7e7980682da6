"""The SQL engines in a report time zone: analytics measured at instants follow the zone
(instants from its midnights, ``today()`` and dates compiled with the dialect's own zone
functions) and equal the Polars runner; those that count per calendar period in SQL refuse
a zone other than UTC with one line (docs/engines.md, Time zones)."""

from __future__ import annotations

import pytest

from segcore.errors import UsageError
from segcore.query import (
    DateRange,
    EngagementQuery,
    EngagementTrendQuery,
    EventQuery,
    ReachQuery,
    Target,
    TrendQuery,
    run,
)

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
