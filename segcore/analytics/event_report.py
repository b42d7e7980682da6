"""Event reports (docs/analytics.md, Event reports): events and distinct users per day or week.

A report covers the instants ``[from, to)`` of a range of days (``to`` = end of the
last day). Periods are days of the report zone (:func:`segcore.lang.dates.current_zone`),
or weeks named by their first day (Monday unless configured; a week cut by the range
counts only its days inside the range). Every period of the range appears for
every chosen event (and group), with 0 when nothing happened.

Breakdowns (one at a time): ``segments`` (one row group per saved segment, members
at ``to``; a user in several segments counts in each) or ``by`` an event property
(the ``top`` values by number of events over the whole report, the rest as
``"other"``, NULL as ``"(none)"``). ``segment`` restricts to one segment's members.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

import polars as pl

from segcore.engine.polars.evaluate import event_filter, members
from segcore.engine.polars.expressions import local_day
from segcore.errors import UsageError
from segcore.lang.dates import current_zone, end_of_day, parse_date
from segcore.lang.periods import period_first
from segcore.store.events import EventStore

OTHER = "other"
NONE = "(none)"


def _members(store: EventStore, name: str, at: dt.datetime) -> pl.DataFrame:
    return members(store, None, as_of=at, segment=name).select("user_id").unique()


def _where(store: EventStore, where: str | pl.Expr) -> pl.Expr:
    if isinstance(where, pl.Expr):
        return where.fill_null(False)
    return event_filter(store, str(where)).fill_null(False)


def _calendar(first: dt.date, last: dt.date, every: str) -> pl.Series:
    if every == "week":
        zone = current_zone()
        first, last = zone.week_first(first), zone.week_first(last)
        return pl.date_range(first, last, "1w", eager=True).alias("period")
    if every == "day":
        return pl.date_range(first, last, "1d", eager=True).alias("period")
    raise UsageError(f"bad step {every!r}: use day or week")


def report_range(store: EventStore, events: Sequence[str] | str, start, end, every: str,
                 by: str | None, segments: Sequence[str] | None, top: int
                 ) -> tuple[list[str], dt.datetime, dt.datetime, pl.Series]:
    """The checked events, the instants ``[lo, hi)`` and the periods of a report."""
    if isinstance(events, str):
        events = [events]
    events = list(dict.fromkeys(events or []))
    if not events:
        raise UsageError("an event report needs at least one event")
    if start is None or end is None:
        raise UsageError("an event report needs a range: give start and end dates")
    if by is not None and segments:
        raise UsageError("break down by segments or by a property, not both")
    if not isinstance(top, int) or top < 1:
        raise UsageError(f"top must be a positive number, got {top!r}")
    known = set(store.event_names())
    for name in events:
        if name not in known:
            raise UsageError(f"unknown event {name!r}")
    schema = store.events_schema()
    if by is not None and (by not in schema or by in ("user_id", "ts")):
        raise UsageError(f"unknown event property {by!r} to break down by")
    first, last = parse_date(start, "start date"), parse_date(end, "end date")
    if last < first:
        raise UsageError(f"the range ends ({last}) before it starts ({first})")
    lo, hi = end_of_day(first - dt.timedelta(days=1)), end_of_day(last)
    periods = _calendar(first, last, every)

    return events, lo, hi, periods


def top_values(totals: pl.DataFrame, top: int) -> pl.DataFrame:
    """The rows of the ``top`` property values (``value`` as text, ``n`` events) kept by a
    ``by`` breakdown: most events first, then by value; NULL is never kept."""
    return (
        totals.filter(pl.col("value").is_not_null())
        .sort(["n", "value"], descending=[True, False])
        .head(top)
    )


def report_table(counts: pl.DataFrame, periods: pl.Series, events: list[str],
                 group: str | None, groups: list[str]) -> pl.DataFrame:
    """Every period x event (x group) with its counts (0 when none), in report order."""
    keys = ["period", "event"] + ([group] if group else [])
    grid = periods.to_frame().join(pl.DataFrame({"event": events}), how="cross")
    if group:
        grid = grid.join(pl.DataFrame({group: groups}, schema={group: pl.String}), how="cross")
    order = {"event": events, **({group: groups} if group else {})}
    counts = counts.with_columns(pl.col("events", "users").cast(pl.Int64))
    out = grid.join(counts, on=keys, how="left").with_columns(
        pl.col("events", "users").fill_null(0)
    )
    rank = [
        pl.col(c).replace_strict(v, list(range(len(v))), return_dtype=pl.Int64)
        for c, v in order.items()
    ]
    return out.sort([pl.col("period"), *rank]).select(*keys, "events", "users")


def event_report(
    store: EventStore,
    events: Sequence[str] | str,
    start: str | dt.date | None = None,
    end: str | dt.date | None = None,
    every: str = "day",
    segment: str | None = None,
    by: str | None = None,
    *,
    segments: Sequence[str] | None = None,
    top: int = 10,
    where: str | pl.Expr | None = None,
) -> pl.DataFrame:
    """Events and distinct users per period for the chosen events.

    Parameters
    ----------
    store
        The store (:class:`segcore.store.events.EventStore`).
    events
        Event names (at least one).
    start, end
        First and last day, both included (required).
    every
        ``"day"`` or ``"week"`` (periods named by their Monday).
    segment
        Restrict to the members of this saved segment at the end of ``end``.
    by
        Break down by this event property: top ``top`` values, the rest ``"other"``,
        NULL ``"(none)"`` (column ``value``).
    segments
        Break down by these saved segments (column ``segment``).
    top
        Number of property values kept by ``by``.
    where
        A filter over event columns in the rule language (or a Polars expression).

    Returns
    -------
    polars.DataFrame
        ``period, event, [segment | value], events, users`` sorted by period, event
        and group.
    """
    events, lo, hi, periods = report_range(store, events, start, end, every, by, segments, top)
    lf = store.scan_events().filter(
        (pl.col("ts") >= lo) & (pl.col("ts") < hi) & pl.col("event").is_in(events)
    )
    if where is not None:
        lf = lf.filter(_where(store, where))
    if segment:
        lf = lf.join(_members(store, segment, hi).lazy(), on="user_id", how="semi")
    lf = lf.with_columns(period_first(local_day(pl.col("ts")), every).alias("period"))

    group: str | None = None
    groups: list[str] = []
    if segments:
        group = "segment"
        groups = list(dict.fromkeys(segments))
        table = pl.concat(
            [
                _members(store, name, hi).with_columns(pl.lit(name).alias("segment"))
                for name in groups
            ]
        )
        lf = lf.join(table.lazy(), on="user_id", how="inner")
    elif by is not None:
        group = "value"
        raw = pl.col(by).cast(pl.String)
        totals = lf.group_by(raw.alias("value")).agg(pl.len().alias("n")).collect()
        kept = top_values(totals, top)["value"].to_list()
        lf = lf.with_columns(
            pl.when(raw.is_null())
            .then(pl.lit(NONE))
            .when(raw.is_in(kept))
            .then(raw)
            .otherwise(pl.lit(OTHER))
            .alias("value")
        )
        present = lf.select(pl.col("value").unique()).collect()["value"].to_list()
        groups = kept + [g for g in (OTHER, NONE) if g in present and g not in kept]

    keys = ["period", "event"] + ([group] if group else [])
    counts = (
        lf.group_by(keys)
        .agg(
            pl.len().cast(pl.Int64).alias("events"),
            pl.col("user_id").n_unique().cast(pl.Int64).alias("users"),
        )
        .collect()
    )

    return report_table(counts, periods, events, group, groups)
