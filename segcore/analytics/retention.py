"""Retention, lifecycle and stickiness (docs/analytics.md, Retention), with Polars lazy plans.

Periods are days, weeks (named by their first day, the report zone's week start) or
calendar months of the report zone, numbered by :meth:`segcore.lang.periods.Period.index`
(the one bucketing of instants into periods: an event counts for its local date).
A range covers the instants ``[from, to)`` of its days; the periods of the range are
every period that has a day in it.

Retention
    A *cohort* is the set of users who did the start event in a period of the range:
    for the first time ever (``recurring=False``: each user is in at most one cohort,
    the period of their first start event, which must fall in the range), or in that
    period (``recurring=True``: one cohort per period the user did it in). With
    ``entered=<segment>`` the cohorts are the periods in which users *entered* the
    saved segment (not a member at the end of the previous day, a member at the end of
    a day of the period; the trend's membership grid, ``segcore.analytics.trend``):
    the first such period of the range, or each (``recurring``).
    A cohort's user is *retained in period k* (k = 0..N, period 0 being the cohort's
    own) when they did the return event at any instant of the k-th period after the
    cohort's; with ``on_or_after`` when they did it in period k or any later one
    (without an end). ``segment`` keeps only its members (at the end of the range);
    ``segments`` gives one table per saved segment (a user in several counts in each).

Lifecycle (as PostHog defines it), per period p of the range, for users who did the event:
    *new*: active in p and never before; *returning*: active in p and in p - 1;
    *resurrecting*: active in p, not in p - 1, active before; *dormant*: active in
    p - 1, not in p (reported negative). The whole history before the range counts.

Stickiness, per period of the range: how many users did the event on exactly 1, 2, ...
    n distinct days of it (days inside the range).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

import numpy as np
import polars as pl

from segcore.analytics.trend import make_points, target_grid
from segcore.engine.polars.evaluate import members
from segcore.errors import UsageError
from segcore.lang.dates import end_of_day, parse_date
from segcore.lang.periods import Period
from segcore.store.events import EventStore

STATUSES = ("new", "returning", "resurrecting", "dormant")
NO_GROUP = ""  # the group column's value when there is no breakdown


# --------------------------------------------------------------------------- shared pieces
def bounds(start: dt.date | str, end: dt.date | str) -> tuple[dt.datetime, dt.datetime]:
    """The instants ``[lo, hi)`` of the days ``start..end``."""
    first, last = parse_date(start, "start date"), parse_date(end, "end date")
    if last < first:
        raise UsageError(f"the range ends ({last}) before it starts ({first})")
    return end_of_day(first - dt.timedelta(days=1)), end_of_day(last)


def period_numbers(every: Period, start: dt.date | str, end: dt.date | str) -> tuple[int, int]:
    """The first and last period numbers of the range."""
    first, last = parse_date(start, "start date"), parse_date(end, "end date")
    return every.index_of(first), every.index_of(last)


def check_event(store: EventStore, name: str | None, what: str) -> str:
    """``name`` if the store has that event (a UsageError otherwise)."""
    if not isinstance(name, str) or not name:
        raise UsageError(f"give the {what}")
    if name not in set(store.event_names()):
        raise UsageError(f"unknown {what} {name!r}")
    return name


def segment_users(store: EventStore, name: str, at: dt.datetime) -> pl.LazyFrame:
    """The members (``user_id``) of a saved segment at ``at``."""
    return members(store, None, as_of=at, segment=name).select("user_id").unique().lazy()


def groups(
    store: EventStore, segment: str | None, segments: Sequence[str] | None, at: dt.datetime
) -> pl.LazyFrame | None:
    """``group, user_id`` of the population (``segment``) and breakdown (``segments``) at
    ``at``; None when every user counts in one group."""
    if not segment and not segments:
        return None
    if segments:
        table = pl.concat(
            [segment_users(store, s, at).with_columns(pl.lit(s).alias("group"))
             for s in dict.fromkeys(segments)]
        )
    else:
        table = pl.LazyFrame({"group": [NO_GROUP]}).join(
            segment_users(store, str(segment), at), how="cross")
    if segment and segments:
        table = table.join(segment_users(store, segment, at), on="user_id", how="semi")
    return table.select("group", "user_id")


def _in_groups(lf: pl.LazyFrame, table: pl.LazyFrame | None) -> pl.LazyFrame:
    if table is None:
        return lf.with_columns(pl.lit(NO_GROUP).alias("group"))
    return lf.join(table, on="user_id", how="inner")


def _events(store: EventStore, event: str, lo: dt.datetime | None, hi: dt.datetime | None) -> pl.LazyFrame:
    cond = pl.col("event") == event
    if lo is not None:
        cond &= pl.col("ts") >= lo
    if hi is not None:
        cond &= pl.col("ts") < hi
    return store.scan_events().filter(cond).select("user_id", "ts")


def group_names(segments: Sequence[str] | None) -> list[str]:
    """The group values of a report: the breakdown segments, or the one unnamed group."""
    return list(dict.fromkeys(segments)) if segments else [NO_GROUP]


def _grid(groups_: list[str], col: str, values: list[int]) -> pl.DataFrame:
    return pl.DataFrame({"group": groups_}, schema={"group": pl.String}).join(
        pl.DataFrame({col: values}, schema={col: pl.Int32}), how="cross")


# --------------------------------------------------------------------------- retention
def entered_days(store: EventStore, segment: str, start: dt.date | str,
                 end: dt.date | str) -> pl.DataFrame:
    """``user_id, day``: the days of ``start..end`` at whose end the user was a member of
    ``segment`` and at the end of the day before was not (the trend's grid)."""
    pts = make_points(start, end, "day")
    g = target_grid(store, None, segment, pts)
    came = g.M[:, 1:] & ~g.M[:, :-1]  # users x days
    user, day = np.nonzero(came)
    return pl.DataFrame({
        "user_id": g.ids.gather(pl.Series(user, dtype=pl.UInt32)),
        "day": pl.Series(list(pts.dates), dtype=pl.Date).gather(pl.Series(day, dtype=pl.UInt32)),
    })


def cohort_users(
    store: EventStore,
    *,
    every: Period,
    start: dt.date | str,
    end: dt.date | str,
    start_event: str | None = None,
    entered: str | None = None,
    recurring: bool = False,
    segment: str | None = None,
    segments: Sequence[str] | None = None,
) -> pl.LazyFrame:
    """``group, user_id, c``: the users of each cohort (``c``: the cohort's period number)."""
    lo, hi = bounds(start, end)
    if entered is not None:
        days = entered_days(store, entered, start, end).lazy()
        moments = days.select("user_id", every.day_index(pl.col("day")).alias("c"))
    else:
        ev = _events(store, str(start_event), None if not recurring else lo, hi)
        if recurring:
            moments = ev.select("user_id", every.index(pl.col("ts")).alias("c"))
        else:
            first = ev.group_by("user_id").agg(pl.col("ts").min()).filter(pl.col("ts") >= lo)
            moments = first.select("user_id", every.index(pl.col("ts")).alias("c"))
    if entered is not None and not recurring:
        moments = moments.group_by("user_id").agg(pl.col("c").min())
    moments = moments.unique()
    return _in_groups(moments, groups(store, segment, segments, hi)).select("group", "user_id", "c")


def retention_cells(
    store: EventStore,
    cohorts: pl.LazyFrame,
    *,
    return_event: str,
    every: Period,
    periods: int,
    start: dt.date | str,
    end: dt.date | str,
    on_or_after: bool = False,
) -> pl.LazyFrame:
    """``group, user_id, c, k``: the cohort users with a return in period ``c + k``.

    ``on_or_after``: one row per cohort user who came back at all, ``k`` = the latest
    period of return counted from the cohort's, capped at ``periods`` (so the user is
    retained "on or after" every k up to it).
    """
    p0, p1 = period_numbers(every, start, end)
    lo = _midnight(every.start_of(p0))
    hi = None if on_or_after else _midnight(every.start_of(p1 + periods + 1))
    ev = _events(store, return_event, lo, hi)
    returns = ev.select("user_id", every.index(pl.col("ts")).alias("r")).unique()
    pairs = cohorts.join(returns, on="user_id", how="inner").with_columns(
        (pl.col("r") - pl.col("c")).alias("k")).filter(pl.col("k") >= 0)
    if on_or_after:
        return pairs.group_by("group", "user_id", "c").agg(
            pl.col("k").max().clip(upper_bound=periods))
    return pairs.filter(pl.col("k") <= periods).select("group", "user_id", "c", "k").unique()


def _midnight(day: dt.date) -> dt.datetime:
    return end_of_day(day - dt.timedelta(days=1))


def retention_table(
    sizes: pl.DataFrame,
    counts: pl.DataFrame,
    *,
    every: Period,
    start: dt.date | str,
    end: dt.date | str,
    periods: int,
    on_or_after: bool,
    segments: Sequence[str] | None = None,
) -> pl.DataFrame:
    """The cohort table from cohort sizes (``group, c, size``) and return counts
    (``group, c, k, n``): ``[segment,] cohort, size, k, retained`` for every period of
    the range (empty cohorts included) and k = 0..``periods``.

    ``on_or_after``: ``counts`` count users by their latest k, summed here from k up.
    """
    p0, p1 = period_numbers(every, start, end)
    names = group_names(segments)
    cells = _grid(names, "c", list(range(p0, p1 + 1))).join(
        pl.DataFrame({"k": list(range(periods + 1))}, schema={"k": pl.Int32}), how="cross")
    sizes = sizes.select("group", pl.col("c").cast(pl.Int32), pl.col("size").cast(pl.Int64))
    counts = counts.select("group", pl.col("c").cast(pl.Int32), pl.col("k").cast(pl.Int32),
                           pl.col("n").cast(pl.Int64))
    out = (
        cells.join(sizes, on=["group", "c"], how="left")
        .join(counts, on=["group", "c", "k"], how="left")
        .with_columns(pl.col("size", "n").fill_null(0))
        .sort("group", "c", "k")
    )
    if on_or_after:
        out = out.with_columns(pl.col("n").reverse().cum_sum().reverse().over("group", "c"))
    rank = pl.col("group").replace_strict(names, list(range(len(names))), return_dtype=pl.Int32)
    out = out.sort(rank, "c", "k").select(
        pl.col("group").alias("segment"),
        every.start(pl.col("c")).alias("cohort"),
        "size",
        "k",
        pl.col("n").alias("retained"),
    )
    return out if segments else out.drop("segment")


def retention(
    store: EventStore,
    *,
    return_event: str,
    every: Period | str,
    periods: int,
    start: dt.date | str,
    end: dt.date | str,
    start_event: str | None = None,
    entered: str | None = None,
    recurring: bool = False,
    on_or_after: bool = False,
    segment: str | None = None,
    segments: Sequence[str] | None = None,
) -> pl.DataFrame:
    """The cohort table ``[segment,] cohort, size, k, retained`` (see the module docstring).

    >>> retention(store, start_event="signup", return_event="login", every="week",
    ...           periods=4, start="2026-06-01", end="2026-06-30")   # doctest: +SKIP
    """
    every = Period.parse(every, ("day", "week", "month"))
    cohorts = cohort_users(store, every=every, start=start, end=end, start_event=start_event,
                           entered=entered, recurring=recurring, segment=segment,
                           segments=segments).collect().lazy()
    cells = retention_cells(store, cohorts, return_event=return_event, every=every,
                            periods=periods, start=start, end=end, on_or_after=on_or_after)
    sizes = cohorts.group_by("group", "c").agg(pl.len().alias("size")).collect()
    counts = cells.group_by("group", "c", "k").agg(pl.len().alias("n")).collect()
    return retention_table(sizes, counts, every=every, start=start, end=end, periods=periods,
                           on_or_after=on_or_after, segments=segments)


def retention_users(
    store: EventStore,
    *,
    cohort: dt.date | str,
    k: int | None = None,
    group: str | None = None,
    return_event: str,
    every: Period | str,
    periods: int,
    start: dt.date | str,
    end: dt.date | str,
    start_event: str | None = None,
    entered: str | None = None,
    recurring: bool = False,
    on_or_after: bool = False,
    segment: str | None = None,
    segments: Sequence[str] | None = None,
) -> pl.DataFrame:
    """The users (sorted ``user_id``) of one cell: the cohort of the period holding
    ``cohort`` (of breakdown segment ``group``), retained in period ``k`` (None: all the
    cohort's users)."""
    every = Period.parse(every, ("day", "week", "month"))
    c = every.index_of(parse_date(cohort, "cohort date"))
    name = NO_GROUP if not segments else group
    if segments and group not in segments:
        raise UsageError(f"{group!r} is not one of the breakdown segments {list(segments)}")
    cohorts = cohort_users(store, every=every, start=start, end=end, start_event=start_event,
                           entered=entered, recurring=recurring, segment=segment,
                           segments=segments).filter((pl.col("c") == c) & (pl.col("group") == name))
    if k is None:
        users = cohorts
    else:
        if not isinstance(k, int) or not 0 <= k <= periods:
            raise UsageError(f"k must be a period from 0 to {periods}, got {k!r}")
        cells = retention_cells(store, cohorts.collect().lazy(), return_event=return_event,
                                every=every, periods=periods, start=start, end=end,
                                on_or_after=on_or_after)
        users = cells.filter(pl.col("k") >= k if on_or_after else pl.col("k") == k)
    return users.select("user_id").unique().sort("user_id").collect()


# --------------------------------------------------------------------------- lifecycle
def lifecycle_users_frame(
    store: EventStore,
    event: str,
    *,
    every: Period,
    start: dt.date | str,
    end: dt.date | str,
    segment: str | None = None,
) -> pl.LazyFrame:
    """``user_id, p, status``: each user's status in each period of the range."""
    lo, hi = bounds(start, end)
    p0, p1 = period_numbers(every, start, end)
    act = _events(store, event, None, hi).select("user_id", every.index(pl.col("ts")).alias("p"))
    if segment:
        act = act.join(segment_users(store, segment, hi), on="user_id", how="semi")
    act = act.unique().collect().lazy()
    first = act.group_by("user_id").agg(pl.col("p").min().alias("f"))
    before = act.select("user_id", (pl.col("p") + 1).alias("p"), pl.lit(True).alias("prev"))
    active = (
        act.filter(pl.col("p").is_between(p0, p1))
        .join(first, on="user_id", how="inner")
        .join(before, on=["user_id", "p"], how="left")
        .select(
            "user_id",
            "p",
            pl.when(pl.col("f") == pl.col("p")).then(pl.lit("new"))
            .when(pl.col("prev").fill_null(False)).then(pl.lit("returning"))
            .otherwise(pl.lit("resurrecting")).alias("status"),
        )
    )
    dormant = (
        act.filter(pl.col("p").is_between(p0 - 1, p1 - 1))
        .select("user_id", (pl.col("p") + 1).alias("p"))
        .join(act, on=["user_id", "p"], how="anti")
        .with_columns(pl.lit("dormant").alias("status"))
    )
    return pl.concat([active, dormant])


def lifecycle_table(counts: pl.DataFrame, *, every: Period, start: dt.date | str,
                    end: dt.date | str) -> pl.DataFrame:
    """``period, new, returning, resurrecting, dormant`` (dormant negative) from counts
    ``p, status, n``; every period of the range appears."""
    p0, p1 = period_numbers(every, start, end)
    wide = (
        pl.DataFrame({"p": list(range(p0, p1 + 1))}, schema={"p": pl.Int32})
        .join(pl.DataFrame({"status": list(STATUSES)}), how="cross")
        .join(counts.select(pl.col("p").cast(pl.Int32), "status", pl.col("n").cast(pl.Int64)),
              on=["p", "status"], how="left")
        .with_columns(pl.col("n").fill_null(0))
        .pivot("status", index="p", values="n")
        .sort("p")
    )
    return wide.select(
        every.start(pl.col("p")).alias("period"),
        *[pl.col(s).cast(pl.Int64) for s in STATUSES[:3]],
        (-pl.col("dormant")).cast(pl.Int64).alias("dormant"),
    )


def lifecycle(store: EventStore, event: str, *, every: Period | str, start: dt.date | str,
              end: dt.date | str, segment: str | None = None) -> pl.DataFrame:
    """``period, new, returning, resurrecting, dormant`` per period of the range."""
    every = Period.parse(every, ("day", "week", "month"))
    rows = lifecycle_users_frame(store, event, every=every, start=start, end=end, segment=segment)
    counts = rows.group_by("p", "status").agg(pl.len().alias("n")).collect()
    return lifecycle_table(counts, every=every, start=start, end=end)


def lifecycle_users(store: EventStore, event: str, *, period: dt.date | str, status: str,
                    every: Period | str, start: dt.date | str, end: dt.date | str,
                    segment: str | None = None) -> pl.DataFrame:
    """The users (sorted ``user_id``) of one bar: ``status`` in the period holding ``period``."""
    every = Period.parse(every, ("day", "week", "month"))
    if status not in STATUSES:
        raise UsageError(f"bad status {status!r}: use {', '.join(STATUSES)}")
    p = every.index_of(parse_date(period, "period date"))
    rows = lifecycle_users_frame(store, event, every=every, start=start, end=end, segment=segment)
    return (rows.filter((pl.col("p") == p) & (pl.col("status") == status))
            .select("user_id").sort("user_id").collect())


# --------------------------------------------------------------------------- stickiness
def active_days(store: EventStore, event: str, *, every: Period, start: dt.date | str,
                end: dt.date | str, segment: str | None = None) -> pl.LazyFrame:
    """``user_id, p, n``: the number of distinct days of period ``p`` the user did ``event``."""
    lo, hi = bounds(start, end)
    ev = _events(store, event, lo, hi)
    if segment:
        ev = ev.join(segment_users(store, segment, hi), on="user_id", how="semi")
    days = ev.select("user_id", Period.DAY.index(pl.col("ts")).alias("d"),
                     every.index(pl.col("ts")).alias("p")).unique()
    return days.group_by("user_id", "p").agg(pl.len().alias("n"))


def stickiness_table(counts: pl.DataFrame, *, every: Period, start: dt.date | str,
                     end: dt.date | str) -> pl.DataFrame:
    """``period, days, users`` for every period of the range and days = 1..the period's
    length, from counts ``p, n, users``."""
    p0, p1 = period_numbers(every, start, end)
    ps = list(range(p0, p1 + 1))
    grid = pl.DataFrame({"p": ps, "len": [every.days_in(p) for p in ps]},  # ok-loop: periods
                        schema={"p": pl.Int32, "len": pl.Int32})
    grid = grid.with_columns(pl.int_ranges(1, pl.col("len") + 1, dtype=pl.Int32).alias("n")) \
        .explode("n")
    return (
        grid.join(counts.select(pl.col("p").cast(pl.Int32), pl.col("n").cast(pl.Int32),
                                pl.col("users").cast(pl.Int64)), on=["p", "n"], how="left")
        .with_columns(pl.col("users").fill_null(0))
        .sort("p", "n")
        .select(every.start(pl.col("p")).alias("period"), pl.col("n").alias("days"), "users")
    )


def stickiness(store: EventStore, event: str, *, every: Period | str, start: dt.date | str,
               end: dt.date | str, segment: str | None = None) -> pl.DataFrame:
    """``period, days, users``: users active on exactly ``days`` days of each period."""
    every = Period.parse(every, ("day", "week", "month"))
    per = active_days(store, event, every=every, start=start, end=end, segment=segment)
    counts = per.group_by("p", "n").agg(pl.len().alias("users")).collect()
    return stickiness_table(counts, every=every, start=start, end=end)


def stickiness_users(store: EventStore, event: str, *, period: dt.date | str, days: int,
                     every: Period | str, start: dt.date | str, end: dt.date | str,
                     segment: str | None = None) -> pl.DataFrame:
    """The users (sorted ``user_id``) active on exactly ``days`` days of the period holding
    ``period``."""
    every = Period.parse(every, ("day", "week", "month"))
    p = every.index_of(parse_date(period, "period date"))
    per = active_days(store, event, every=every, start=start, end=end, segment=segment)
    return (per.filter((pl.col("p") == p) & (pl.col("n") == days))
            .select("user_id").sort("user_id").collect())
