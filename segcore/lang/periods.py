"""Periods of a report: days, weeks and calendar months of the report zone, and the one
bucketing of instants into them (:meth:`Period.index`, :meth:`Period.start`).

Every report that buckets instants into periods goes through here (the SQL engines through
``segcore.engine.sql.analytics.retention.period_index``, the same numbering). Periods are
those of the report zone in force (:func:`segcore.lang.dates.current_zone`): a day is a local
calendar day (23, 25 or, at Lord Howe, 23.5 / 24.5 hours on the days the clocks change), a
week starts on the zone's ``week_start`` (Monday unless configured) and a month is a local
calendar month; period starts are local dates.
"""

from __future__ import annotations

import datetime as dt
import enum

import polars as pl

from segcore.errors import UsageError
from segcore.lang.dates import current_zone


class Period(str, enum.Enum):
    """The step of a series: a day, a week (from the report zone's ``week_start``) or a
    calendar month, all of the report zone.

    Every report that buckets instants into periods goes through :meth:`index` (an
    instant -> the period's number) and :meth:`start` (a number -> the period's first
    day), which read the zone in force. Period numbers are consecutive integers:
    ``index + k`` is the k-th period after (week numbers depend on the week start).
    """

    DAY = "day"
    WEEK = "week"
    MONTH = "month"

    @classmethod
    def parse(cls, value: Period | str, allowed: tuple[str, ...] = ("day", "week")) -> Period:
        """``"day"``/``"week"`` (or ``allowed``, e.g. with ``"month"``) -> a Period; anything
        else is a UsageError."""
        try:
            period = cls(value)
        except ValueError:
            period = None
        if period is None or period.value not in allowed:
            raise UsageError(f"bad step {value!r}: use {' or '.join(allowed)}")
        return period

    def __str__(self) -> str:
        return self.value

    # ---------------------------------------------------------------- bucketing
    def index(self, ts: pl.Expr) -> pl.Expr:
        """The period number (Int32) of a UTC timestamp expression: the period of its date
        in the report zone."""
        return self.day_index(local_date(ts))

    def day_index(self, day: pl.Expr) -> pl.Expr:
        """The period number (Int32) of a Date expression (a local date)."""
        n = day.cast(pl.Int32)  # days since 1970-01-01 (a Thursday)
        if self is Period.DAY:
            return n
        if self is Period.WEEK:
            return (n + _week_shift()) // 7
        return day.dt.year().cast(pl.Int32) * 12 + day.dt.month().cast(pl.Int32) - 1

    def start(self, index: pl.Expr) -> pl.Expr:
        """The first day (Date) of the period numbered ``index``."""
        if self is Period.DAY:
            return index.cast(pl.Int32).cast(pl.Date)
        if self is Period.WEEK:
            return (index.cast(pl.Int32) * 7 - _week_shift()).cast(pl.Date)
        return pl.date(index // 12, index % 12 + 1, 1)

    def index_of(self, day: dt.date) -> int:
        """The period number of a (local) day (as :meth:`day_index`)."""
        n = (day - _EPOCH_DAY).days
        if self is Period.DAY:
            return n
        if self is Period.WEEK:
            return (n + _week_shift()) // 7
        return day.year * 12 + day.month - 1

    def start_of(self, index: int) -> dt.date:
        """The first day of the period numbered ``index`` (as :meth:`start`)."""
        if self is Period.DAY:
            return _EPOCH_DAY + dt.timedelta(days=index)
        if self is Period.WEEK:
            return _EPOCH_DAY + dt.timedelta(days=index * 7 - _week_shift())
        return dt.date(index // 12, index % 12 + 1, 1)

    def days_in(self, index: int) -> int:
        """How many days the period numbered ``index`` has."""
        return (self.start_of(index + 1) - self.start_of(index)).days


def week_shift(week_start: int) -> int:
    """Week numbers are ``(days since 1970-01-01 + shift) // 7``: 1970-01-01 is a Thursday
    (weekday 3), so weeks starting on weekday ``w`` (0 Monday) shift by ``3 - w``; week 0
    holds 1970-01-01 whatever the week start. The one week rule of every engine
    (:meth:`segcore.lang.dates.ReportZone.week_first` agrees)."""
    return 3 - week_start


def _week_shift() -> int:
    return week_shift(current_zone().week_start)


def local_date(ts: pl.Expr) -> pl.Expr:
    """The report zone's calendar date of a UTC timestamp expression."""
    zone = current_zone()
    if zone.is_utc:
        return ts.dt.date()
    return ts.dt.convert_time_zone(zone.name).dt.date()


def period_first(day: pl.Expr, every: str) -> pl.Expr:
    """The first day of the period (``day`` or ``week``) holding a date; weeks start on
    the report zone's week start (Monday unless configured)."""
    if every != "week":
        return day
    start = current_zone().week_start
    if start == 0:
        return day.dt.truncate("1w")
    back = (day.dt.weekday().cast(pl.Int64) - 1 - start) % 7
    return (day - pl.duration(days=back)).cast(pl.Date)


_EPOCH_DAY = dt.date(1970, 1, 1)
