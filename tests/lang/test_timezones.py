"""The report time zone (segcore.lang.dates): local days across the 2026 clock changes,
hand-computed. US: 2026-03-08 (23 h) and 2026-11-01 (25 h); EU: 2026-03-29 (23 h) and
2026-10-25 (25 h); Lord Howe: 2026-04-05 (24.5 h) and 2026-10-04 (23.5 h)."""

from __future__ import annotations

import datetime as dt

import polars as pl
import pytest

from segcore.engine.polars.expressions import local_day, local_midnight
from segcore.errors import UsageError
from segcore.lang.dates import (
    ReportZone,
    current_zone,
    day_points,
    end_of_day,
    localize,
    parse_date,
    report_zone,
    resolve_as_of,
    today_at,
)
from segcore.lang.periods import period_first
from segcore.query import MembersQuery, Target, query_from_json


def Z(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text.replace("Z", "+00:00"))


@pytest.mark.parametrize("zone,day,hours", [
    ("America/New_York", "2026-03-08", 23), ("America/New_York", "2026-11-01", 25),
    ("America/New_York", "2026-03-09", 24), ("Europe/Berlin", "2026-03-29", 23),
    ("Europe/Berlin", "2026-10-25", 25), ("Australia/Lord_Howe", "2026-04-05", 24.5),
    ("Australia/Lord_Howe", "2026-10-04", 23.5), ("Asia/Kolkata", "2026-03-29", 24),
    ("UTC", "2026-03-29", 24),
])
def test_local_day_lengths(zone, day, hours):
    z = ReportZone(zone)
    d = dt.date.fromisoformat(day)
    assert (z.end_of_day(d) - z.start_of_day(d)) == dt.timedelta(hours=hours)


def test_as_of_a_date_is_the_end_of_the_local_day():
    assert resolve_as_of("2026-03-08") == Z("2026-03-09T00:00:00Z")
    with report_zone("America/New_York"):
        assert resolve_as_of("2026-03-08") == Z("2026-03-09T04:00:00Z")  # EDT after the change
        assert resolve_as_of("2026-03-07") == Z("2026-03-08T05:00:00Z")  # EST
        assert resolve_as_of("2026-10-31") == Z("2026-11-01T04:00:00Z")
        assert resolve_as_of("2026-11-01") == Z("2026-11-02T05:00:00Z")
        # a timestamp is exactly that instant; without an offset it is UTC
        assert resolve_as_of("2026-03-08T12:00:00") == Z("2026-03-08T12:00:00Z")
    with report_zone("Asia/Kolkata"):
        assert resolve_as_of("2026-03-29") == Z("2026-03-29T18:30:00Z")
    with report_zone("Australia/Lord_Howe"):  # +11 (daylight) until 04-05 02:00, then +10:30
        assert resolve_as_of("2026-04-04") == Z("2026-04-04T13:00:00Z")
        assert resolve_as_of("2026-04-05") == Z("2026-04-05T13:30:00Z")


def test_today_at_local_midnight():
    with report_zone("America/New_York"):
        midnight = Z("2026-03-09T04:00:00Z")  # 2026-03-09 00:00 EDT
        assert today_at(midnight) == dt.date(2026, 3, 8)  # T is the end of the 8th
        assert today_at(midnight + dt.timedelta(microseconds=1)) == dt.date(2026, 3, 9)
        assert today_at(Z("2026-03-09T03:59:00Z")) == dt.date(2026, 3, 8)  # 23:59 EDT
    with report_zone("Europe/Berlin"):
        assert today_at(Z("2026-10-25T23:00:00Z") + dt.timedelta(seconds=1)) == \
            dt.date(2026, 10, 26)
        assert today_at(Z("2026-10-25T22:59:59Z")) == dt.date(2026, 10, 25)
    assert today_at(Z("2026-10-25T22:59:59Z")) == dt.date(2026, 10, 25)  # UTC again


def test_ambiguous_and_nonexistent_wall_times():
    berlin = ReportZone("Europe/Berlin")
    # 02:30 on 03-29 is skipped: moved forward by the gap (03:30 CEST = 01:30 UTC)
    assert localize(dt.datetime(2026, 3, 29, 2, 30), berlin) == Z("2026-03-29T01:30:00Z")
    # 02:30 on 10-25 happens twice: the first occurrence (CEST, +02:00)
    assert localize(dt.datetime(2026, 10, 25, 2, 30), berlin) == Z("2026-10-25T00:30:00Z")
    ny = ReportZone("America/New_York")
    assert localize(dt.datetime(2026, 11, 1, 1, 30), ny) == Z("2026-11-01T05:30:00Z")
    assert localize(dt.datetime(2026, 3, 8, 2, 15), ny) == Z("2026-03-08T07:15:00Z")
    lh = ReportZone("Australia/Lord_Howe")  # a 30-minute gap on 10-04 02:00 -> 02:30
    assert localize(dt.datetime(2026, 10, 4, 2, 10), lh) == Z("2026-10-03T15:40:00Z")


def test_polars_midnights_match_python():
    days = [dt.date(2026, 1, 1) + dt.timedelta(days=i) for i in range(365)]
    for zone in ("America/New_York", "Europe/Berlin", "Asia/Kolkata", "Australia/Lord_Howe",
                 "America/Havana", "UTC"):
        with report_zone(zone):
            got = pl.select(local_midnight(pl.lit(pl.Series(days))).alias("t"))["t"].to_list()
            assert got == [current_zone().start_of_day(d) for d in days], zone
            back = pl.select(local_day(pl.lit(pl.Series(got))).alias("d"))["d"].to_list()
            assert back == days, zone


def test_weeks_start_monday_unless_configured():
    assert day_points("2026-03-02", "2026-03-16", "week") == [dt.date(2026, 3, 8),
                                                              dt.date(2026, 3, 15)]
    with report_zone("America/New_York", "sunday"):
        assert day_points("2026-03-02", "2026-03-16", "week") == [dt.date(2026, 3, 7),
                                                                  dt.date(2026, 3, 14)]
        firsts = pl.select(period_first(pl.lit(pl.Series([dt.date(2026, 3, 7),
                                                           dt.date(2026, 3, 8)])), "week"))
        assert firsts.to_series().to_list() == [dt.date(2026, 3, 1), dt.date(2026, 3, 8)]
    firsts = pl.select(period_first(pl.lit(pl.Series([dt.date(2026, 3, 8)])), "week"))
    assert firsts.to_series().to_list() == [dt.date(2026, 3, 2)]


def test_dates_of_instants_are_local():
    with report_zone("America/New_York"):
        assert parse_date(Z("2026-03-09T03:30:00Z")) == dt.date(2026, 3, 8)
        assert end_of_day(dt.date(2026, 11, 1)) == Z("2026-11-02T05:00:00Z")
    assert parse_date(Z("2026-03-09T03:30:00Z")) == dt.date(2026, 3, 9)


def test_bad_zones_are_one_clear_error():
    with pytest.raises(UsageError, match="unknown time zone 'Mars/Base'"):
        ReportZone("Mars/Base")
    with pytest.raises(UsageError, match="bad week start"):
        ReportZone("UTC", "someday")
    with pytest.raises(UsageError, match="unknown time zone"):
        MembersQuery(Target(rule="country = 'US'"), tz="Nowhere")


def test_queries_carry_their_zone():
    q = MembersQuery(Target(rule="country = 'US'"), "2026-03-08", tz="America/New_York")
    assert q.tz == "America/New_York"
    assert query_from_json(q.to_json()) == q
    assert "tz" not in MembersQuery(Target(rule="country = 'US'")).to_dict()
    assert ReportZone("utc").is_utc and ReportZone("Etc/UTC").is_utc
