"""The report zone's calendar day of an instant in SQL, in exact integers.

Within a report's instants ``[lo, hi)`` the zone's UTC offset changes only at its clock
changes. :func:`offsets` finds them (Python's zoneinfo, the table the report's range
bounds come from, :class:`segcore.lang.dates.ReportZone`) and :func:`local_day` compiles
the day number (days since 1970-01-01) of the local date of ``us`` (microseconds since
1970 UTC) as ``floor((us + offset(us)) / 1 day)``, the offset a ``CASE`` over those
changes: integer arithmetic, the same answer on every engine, no session zone involved.
Event-report periods and funnel entry days use it (docs/engines.md, Time zones).
"""

from __future__ import annotations

import datetime as dt
import math

from sqlglot import exp

from segcore.engine.sql.dialects import Dialect
from segcore.lang.dates import UTC, ReportZone, current_zone, to_utc

DAY_US = 86_400_000_000
_EPOCH = dt.datetime(1970, 1, 1, tzinfo=UTC)
_STEP = dt.timedelta(hours=6)  # no zone changes its offset twice within 6 hours


def epoch_us(x: dt.datetime) -> int:
    """Microseconds since 1970-01-01 UTC of an instant (naive: UTC)."""
    return (to_utc(x) - _EPOCH) // dt.timedelta(microseconds=1)


def _at(seconds: int) -> dt.datetime:
    return _EPOCH + dt.timedelta(seconds=seconds)


def _offset(zone: ReportZone, t: dt.datetime) -> dt.timedelta:
    off = t.astimezone(zone.tzinfo).utcoffset()
    return off if off is not None else dt.timedelta()


def offsets(zone: ReportZone, lo: dt.datetime, hi: dt.datetime) -> list[tuple[int, int]]:
    """``(from_us, offset_us)`` pairs: the zone's UTC offset from each instant on, the
    first at ``lo``, then one per clock change in ``(lo, hi)`` (to the second)."""
    lo, hi = to_utc(lo), to_utc(hi)
    cur = _offset(zone, lo)
    out = [(epoch_us(lo), cur // dt.timedelta(microseconds=1))]
    t = lo
    while t < hi:  # ok-loop: a few steps per day of the range, not per row
        nxt = min(t + _STEP, hi)
        if _offset(zone, nxt) != cur:
            # offset(a) == cur != offset(b), in whole seconds (clocks change on a second)
            a, b = math.floor(t.timestamp()), math.ceil(nxt.timestamp())
            while b - a > 1:  # ok-loop: ~15 halvings per clock change
                mid = (a + b) // 2
                a, b = (mid, b) if _offset(zone, _at(mid)) == cur else (a, mid)
            cur = _offset(zone, _at(b))
            out.append((b * 1_000_000, cur // dt.timedelta(microseconds=1)))
        t = nxt
    return out


def local_day(D: Dialect, us: exp.Expression, lo: dt.datetime, hi: dt.datetime,
              zone: ReportZone | None = None) -> exp.Expression:
    """The day number of the local date (report ``zone``, default the one in force) of
    ``us``, valid for ``lo <= us < hi``."""
    zone = zone or current_zone()
    if zone.is_utc:
        return D.floor_div(us, exp.Literal.number(DAY_US))
    spans = offsets(zone, lo, hi)
    shift: exp.Expression = exp.Literal.number(spans[-1][1])
    if len(spans) > 1:
        shift = exp.Case(
            ifs=[exp.If(this=exp.LT(this=us.copy(), expression=exp.Literal.number(start)),
                        true=exp.Literal.number(off))
                 for (_, off), (start, _) in zip(spans, spans[1:], strict=False)],
            default=shift,
        )
    wall = exp.Add(this=exp.paren(us.copy()), expression=exp.paren(shift))
    return D.floor_div(wall, exp.Literal.number(DAY_US))
