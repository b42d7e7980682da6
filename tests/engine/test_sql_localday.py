"""The report zone's clock changes as ``segcore.engine.sql.localday`` finds them, and the
local day numbers it compiles, at the microseconds around local midnights."""

from __future__ import annotations

import datetime as dt

import duckdb
import pytest
from sqlglot import exp

from segcore.engine.sql.dialects import dialect_of
from segcore.engine.sql.localday import local_day, offsets
from segcore.lang.dates import ReportZone

UTC = dt.UTC
H = 3_600_000_000


def at(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text).replace(tzinfo=UTC)


def us(text: str) -> int:
    return (at(text) - dt.datetime(1970, 1, 1, tzinfo=UTC)) // dt.timedelta(microseconds=1)


@pytest.mark.parametrize(("zone", "want"), [
    ("America/New_York", [("2026-01-01T00:00:00", -5 * H), ("2026-03-08T07:00:00", -4 * H),
                          ("2026-11-01T06:00:00", -5 * H)]),
    ("Europe/Berlin", [("2026-01-01T00:00:00", H), ("2026-03-29T01:00:00", 2 * H),
                       ("2026-10-25T01:00:00", H)]),
    ("Asia/Kolkata", [("2026-01-01T00:00:00", 11 * H // 2)]),
    ("Australia/Lord_Howe", [("2026-01-01T00:00:00", 11 * H),
                             ("2026-04-04T15:00:00", 21 * H // 2),
                             ("2026-10-03T15:30:00", 11 * H)]),
])
def test_offsets_of_2026(zone, want):
    got = offsets(ReportZone(zone), at("2026-01-01T00:00:00"), at("2027-01-01T00:00:00"))
    assert got == [(us(t), off) for t, off in want]


def test_local_day_numbers_at_the_edges():
    zone, lo, hi = ReportZone("America/New_York"), at("2026-03-07T05:00:00"), at("2026-03-10T04:00:00")
    probes = {  # UTC instant -> local date
        "2026-03-08T04:59:59.999999": "2026-03-07", "2026-03-08T05:00:00": "2026-03-08",
        "2026-03-08T07:00:00": "2026-03-08", "2026-03-09T03:59:59.999999": "2026-03-08",
        "2026-03-09T04:00:00": "2026-03-09",
    }
    D = dialect_of("duckdb")
    x = exp.column("x")
    day = D.sql(local_day(D, x, lo, hi, zone))
    con = duckdb.connect()
    for t, want in probes.items():  # ok-loop: five probes
        got = con.execute(f"SELECT {day} FROM (SELECT {us(t)}::BIGINT AS x)").fetchone()[0]
        assert dt.date(1970, 1, 1) + dt.timedelta(days=int(got)) == dt.date.fromisoformat(want), t
