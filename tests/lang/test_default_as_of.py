"""The default instant of the CLI and the dashboard (issue 19, item 4): now, except when
the store's data ends on an earlier day than today in the report zone."""

from __future__ import annotations

import datetime as dt

from segcore.lang.dates import default_as_of, report_zone

UTC = dt.timezone.utc
NOW = dt.datetime(2026, 12, 2, 17, 45, 31, 250, tzinfo=UTC)


def test_data_ending_before_today_gives_the_end_of_the_last_event_day():
    d = default_as_of(dt.datetime(2026, 6, 30, 21, 5, tzinfo=UTC), NOW)
    assert d.last_event_day and d.instant == dt.datetime(2026, 7, 1, tzinfo=UTC)
    assert d.day == dt.date(2026, 6, 30)
    assert d.text() == "2026-07-01T00:00:00Z"
    assert "the end of the last event day" in d.describe()


def test_data_reaching_today_gives_now_to_the_minute():
    d = default_as_of(dt.datetime(2026, 12, 2, 0, 10, tzinfo=UTC), NOW)
    assert not d.last_event_day and d.instant == dt.datetime(2026, 12, 2, 17, 45, tzinfo=UTC)
    assert d.describe().startswith("2026-12-02T17:45:00Z (now")
    # future events (a sample generated through the end of today) change nothing
    assert default_as_of(dt.datetime(2026, 12, 2, 23, 0, tzinfo=UTC), NOW).instant == d.instant
    assert default_as_of(None, NOW).instant == d.instant  # an empty store


def test_today_is_the_report_zones_today():
    last = dt.datetime(2026, 12, 1, 23, 30, tzinfo=UTC)  # Dec 2 in Berlin: today there
    assert default_as_of(last, NOW).last_event_day  # Dec 1 in UTC
    with report_zone("Europe/Berlin"):
        d = default_as_of(last, NOW)
        assert not d.last_event_day and d.day == dt.date(2026, 12, 2)
    with report_zone("America/New_York"):  # Dec 1, 18:30 there; today is Dec 2
        d = default_as_of(last, NOW)
        assert d.last_event_day and d.instant == dt.datetime(2026, 12, 2, 5, tzinfo=UTC)
