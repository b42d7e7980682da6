"""Periods of a report: days, ISO weeks and calendar months, and the one bucketing of
instants into them (:meth:`Period.index`, :meth:`Period.start`).

Every report that buckets instants into periods goes through here (the SQL engines through
``segcore.engine.sql.retention.period_index``, the same numbering), so a report time zone has one
place to plug in. Today periods are UTC days.
"""

from __future__ import annotations

import datetime as dt
import enum

import polars as pl

from segcore.errors import UsageError


class Period(str, enum.Enum):
    """The step of a series: a day, an ISO week (Monday to Sunday) or a calendar month.

    Every report that buckets instants into periods goes through :meth:`index` (an
    instant -> the period's number) and :meth:`start` (a number -> the period's first
    day), so the report time zone has one place to plug in. Period numbers are
    consecutive integers: ``index + k`` is the k-th period after.
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
        """The period number (Int32) of a UTC timestamp (or Date) expression."""
        day = ts.dt.date().cast(pl.Int32)  # days since 1970-01-01 (a Thursday)
        if self is Period.DAY:
            return day
        if self is Period.WEEK:
            return (day + 3) // 7  # weeks from Monday 1969-12-29
        return ts.dt.year().cast(pl.Int32) * 12 + ts.dt.month().cast(pl.Int32) - 1

    def start(self, index: pl.Expr) -> pl.Expr:
        """The first day (Date) of the period numbered ``index``."""
        if self is Period.DAY:
            return index.cast(pl.Int32).cast(pl.Date)
        if self is Period.WEEK:
            return (index.cast(pl.Int32) * 7 - 3).cast(pl.Date)
        return pl.date(index // 12, index % 12 + 1, 1)

    def index_of(self, day: dt.date) -> int:
        """The period number of a day (as :meth:`index`)."""
        n = (day - _EPOCH_DAY).days
        if self is Period.DAY:
            return n
        if self is Period.WEEK:
            return (n + 3) // 7
        return day.year * 12 + day.month - 1

    def start_of(self, index: int) -> dt.date:
        """The first day of the period numbered ``index`` (as :meth:`start`)."""
        if self is Period.DAY:
            return _EPOCH_DAY + dt.timedelta(days=index)
        if self is Period.WEEK:
            return _EPOCH_DAY + dt.timedelta(days=index * 7 - 3)
        return dt.date(index // 12, index % 12 + 1, 1)

    def days_in(self, index: int) -> int:
        """How many days the period numbered ``index`` has."""
        return (self.start_of(index + 1) - self.start_of(index)).days


_EPOCH_DAY = dt.date(1970, 1, 1)
