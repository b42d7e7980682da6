"""Retention, lifecycle and stickiness as sqlglot ASTs, run on DuckDB, ClickHouse or Spark.

Each compiles to one query returning the counts the Polars path also computes
(``segcore.analytics.retention``, where the tables are assembled from them): the
semantics are the module docstring of :mod:`segcore.analytics.retention`, and period
numbers are :meth:`segcore.lang.periods.Period.index`'s, written in SQL by
:func:`period_index` (the one bucketing of instants in SQL): periods of the report zone,
an event counting for its local date (the dialect's ``local_date``).

- retention: ``grp, c, k, n`` -- ``k = -1`` rows are the cohort sizes; otherwise the
  users of cohort ``c`` retained in ``c + k`` (``on_or_after``: by their latest k);
- lifecycle: ``p, status, n``;
- stickiness: ``p, n, users``.

Population and breakdown segments are the saved segments' members at the end of the
range, compiled by :class:`segcore.engine.sql.compiler.Compiler`. The ``*_counts``
functions run a query on an :class:`~segcore.engine.choice.Engine`; the ``*_users``
functions give the users behind one cell or bar. Cohorts by a segment entered stack the
segment's entries at the end of every day of the range (the trend's grid,
:func:`segcore.engine.sql.analytics.trend.entered_rows`: one pass over the events where
the segment's rule allows).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

import polars as pl
from sqlglot import exp

from segcore.analytics.retention import STATUSES
from segcore.analytics.trend import make_points
from segcore.engine.choice import Engine
from segcore.engine.sql.analytics.base import compiler, table, union_all
from segcore.engine.sql.analytics.trend import entered_rows
from segcore.engine.sql.compiler import col, ident
from segcore.engine.sql.dialects import dialect_of
from segcore.engine.sql.engines import engine_dialect, need, run_select
from segcore.errors import UsageError
from segcore.lang.dates import current_zone, end_of_day, parse_date
from segcore.lang.periods import Period, week_shift
from segcore.store.events import EventStore


# --------------------------------------------------------------------------- dialect bits
def _instant(value: dt.datetime, d: str) -> exp.Expression:
    return dialect_of(d).timestamp_literal(value)


def _int(n: int) -> exp.Expression:
    return exp.Literal.number(n) if n >= 0 else exp.Neg(this=exp.Literal.number(-n))


def period_index(ts: exp.Expression, every: Period, d: str) -> exp.Expression:
    """The period number of a UTC timestamp (:meth:`Period.index` in SQL): the period of its
    date in the report zone (the dialect's ``local_date``)."""
    zone = current_zone()
    sql = dialect_of(d)
    if zone.is_utc:
        day = sql.day_of(ts)  # floor division: exact before 1970 too
        date = ts
    else:
        date = sql.local_date(ts, zone.name)
        day = sql.day_of(sql.date_to_timestamp(date.copy()))  # its UTC midnight's day number
    if every is Period.DAY:
        return exp.paren(day)
    if every is Period.WEEK:
        shifted = exp.paren(exp.Add(this=exp.paren(day), expression=_int(week_shift(zone.week_start))))
        return sql.floor_div(shifted, _int(7))
    year = exp.Mul(this=exp.Year(this=date.copy()), expression=_int(12))
    return exp.paren(exp.Sub(this=exp.Add(this=year, expression=exp.Month(this=date)),
                             expression=_int(1)))


def _bounds(start: dt.date | str, end: dt.date | str) -> tuple[dt.datetime, dt.datetime]:
    first, last = parse_date(start, "start date"), parse_date(end, "end date")
    return end_of_day(first - dt.timedelta(days=1)), end_of_day(last)


def _midnight(day: dt.date) -> dt.datetime:
    return end_of_day(day - dt.timedelta(days=1))


class _Query:
    """The CTEs of one report over the store's events (members of segments at ``hi``)."""

    def __init__(self, store: EventStore, dialect: str, hi: dt.datetime):
        self.d = dialect
        self.comp = compiler(store, hi, dialect)

    def events(self, event: str, lo: dt.datetime | None, hi: dt.datetime | None) -> exp.Select:
        """``SELECT user_id, ts FROM events WHERE event = ... AND lo <= ts < hi``."""
        cond: exp.Expression = exp.EQ(this=col("event"), expression=exp.Literal.string(event))
        if lo is not None:
            cond = exp.and_(cond, exp.GTE(this=col("ts"), expression=_instant(lo, self.d)))
        if hi is not None:
            cond = exp.and_(cond, exp.LT(this=col("ts"), expression=_instant(hi, self.d)))
        source = self.comp.events().copy()
        alias = exp.TableAlias(this=exp.to_identifier("e"))
        if isinstance(source, exp.Table):
            source.set("alias", alias)
        else:
            source = exp.Subquery(this=source, alias=alias)
        return exp.select(col("user_id"), col("ts")).from_(source).where(cond)

    def cte(self, prefix: str, query: exp.Expression) -> str:
        return self.comp.add_cte(prefix, query)

    def in_population(self, segment: str | None) -> exp.Expression | None:
        """``user_id IN (members of segment)`` (None without a population)."""
        if not segment:
            return None
        members = exp.select(col("user_id")).from_(exp.to_identifier(self.comp.segment(segment)))
        return exp.In(this=col("user_id"), query=members.subquery(copy=False))

    def groups(self, segment: str | None, segments: Sequence[str] | None) -> str | None:
        """CTE ``grp, user_id`` of the breakdown segments (None without a breakdown)."""
        if not segments:
            return None
        parts = []
        for name in dict.fromkeys(segments):  # ok-loop: one SELECT per breakdown segment
            sel = exp.select(exp.alias_(exp.Literal.string(name), ident("grp")), col("user_id")) \
                .from_(exp.to_identifier(self.comp.segment(name)))
            pop = self.in_population(segment)
            parts.append(sel.where(pop) if pop is not None else sel)
        union = parts[0]
        for p in parts[1:]:
            union = exp.union(union, p, distinct=False)
        return self.cte("groups", union)

    def finish(self, sel: exp.Select) -> exp.Select:
        for name, q in self.comp.ctes:
            sel = sel.with_(exp.to_identifier(name), as_=q, copy=False)
        return dialect_of(self.d).settings(sel)


def _count_star() -> exp.Expression:
    return exp.Count(this=exp.Star())


# --------------------------------------------------------------------------- retention
def _entered_starts(q: _Query, segment: str, every: Period, start: dt.date | str,
                    end: dt.date | str, recurring: bool) -> exp.Select:
    """``user_id, c``: the periods in which users entered ``segment`` (a member at the end
    of a day of the range, not at the end of the day before: the trend's grid,
    :func:`entered_rows`); the first one unless ``recurring``."""
    pts = make_points(start, end, "day")
    entered = entered_rows(q.comp, None, segment, [pts.instant(j) for j in range(pts.P)])
    days = union_all([exp.select(exp.alias_(_int(j), ident("sc_j")),  # ok-loop: one row per day
                                 exp.alias_(_int(every.index_of(day)), ident("c")))
                      for j, day in enumerate(pts.dates, start=1)])
    came = (
        exp.select(exp.alias_(col("user_id", "a"), ident("user_id")),
                   exp.alias_(col("c", "p"), ident("c")))  # ClickHouse: names, not a.user_id
        .from_(table(entered, "a"))
        .join(table(q.cte("days", days), "p"), on=exp.EQ(this=col("sc_j", "a"),
                                                         expression=col("sc_j", "p")))
    )
    if recurring:
        return came.distinct()
    return exp.select(col("user_id"), exp.alias_(exp.Min(this=col("c")), ident("c"))) \
        .from_(came.subquery("n", copy=False)).group_by(col("user_id"))


def _retention_ctes(
    store: EventStore,
    dialect: str,
    *,
    start_event: str | None,
    return_event: str,
    every: Period,
    periods: int,
    start: dt.date | str,
    end: dt.date | str,
    entered: str | None = None,
    recurring: bool = False,
    on_or_after: bool = False,
    segment: str | None = None,
    segments: Sequence[str] | None = None,
) -> tuple[_Query, str, str]:
    """The report's CTEs: cohorts (``grp, user_id, c``) and returns (``grp, user_id, c, k``;
    ``on_or_after``: one row per user, their latest k capped at ``periods``)."""
    lo, hi = _bounds(start, end)
    q = _Query(store, dialect, hi)
    d = dialect
    ts = col("ts")
    if entered is not None:
        starts = _entered_starts(q, entered, every, start, end, recurring)
    elif recurring:
        starts = exp.select(col("user_id"), exp.alias_(period_index(ts, every, d), ident("c"))) \
            .from_(q.events(str(start_event), lo, hi).subquery("s", copy=False)).distinct()
    else:
        first = exp.Min(this=col("ts"))
        starts = (
            exp.select(col("user_id"), exp.alias_(period_index(first, every, d), ident("c")))
            .from_(q.events(str(start_event), None, hi).subquery("s", copy=False))
            .group_by(col("user_id"))
            .having(exp.GTE(this=first.copy(), expression=_instant(lo, d)))
        )
    pop = q.in_population(segment)
    if pop is not None:
        starts = exp.select(col("user_id"), col("c")).from_(starts.subquery("s0", copy=False)) \
            .where(pop)
    starts_cte = q.cte("starts", starts)
    groups = q.groups(segment, segments)
    if groups is None:
        cohorts = exp.select(exp.alias_(exp.Literal.string(""), ident("grp")), col("user_id"),
                             col("c")).from_(exp.to_identifier(starts_cte))
    else:
        cohorts = (
            exp.select(col("grp", "g"), col("user_id", "s"), col("c", "s"))
            .from_(table(starts_cte, "s"))
            .join(table(groups, "g"),
                  on=exp.EQ(this=col("user_id", "s"), expression=col("user_id", "g")))
        )
    cohorts_cte = q.cte("cohorts", cohorts)

    p0, p1 = every.index_of(parse_date(start, "start date")), every.index_of(parse_date(end, "end date"))
    r_lo = _midnight(every.start_of(p0))
    r_hi = None if on_or_after else _midnight(every.start_of(p1 + periods + 1))
    returns = exp.select(col("user_id"), exp.alias_(period_index(ts, every, d), ident("r"))) \
        .from_(q.events(return_event, r_lo, r_hi).subquery("x", copy=False)).distinct()
    returns_cte = q.cte("returns", returns)
    gap = exp.paren(exp.Sub(this=col("r", "x"), expression=col("c", "h")))
    cond = exp.GTE(this=col("r", "x"), expression=col("c", "h"))
    if not on_or_after:
        cond = exp.and_(cond, exp.LTE(this=gap.copy(), expression=_int(periods)))
    pairs = (
        exp.select(col("grp", "h"), col("user_id", "h"), col("c", "h"), exp.alias_(gap, ident("k")))
        .from_(table(cohorts_cte, "h"))
        .join(table(returns_cte, "x"),
              on=exp.EQ(this=col("user_id", "h"), expression=col("user_id", "x")))
        .where(cond)
    )
    pairs_cte = q.cte("pairs", pairs)
    if on_or_after:
        latest = (
            exp.select(col("grp"), col("user_id"), col("c"),
                       exp.alias_(exp.Least(this=exp.Max(this=col("k")),
                                            expressions=[_int(periods)]), ident("k")))
            .from_(exp.to_identifier(pairs_cte))
            .group_by(col("grp"), col("user_id"), col("c"))
        )
        pairs_cte = q.cte("latest", latest)
    return q, cohorts_cte, pairs_cte


def compile_retention(store: EventStore, dialect: str, **args) -> exp.Select:
    """The retention counts query (``grp, c, k, n``; ``k = -1``: cohort sizes);
    ``args``: :func:`segcore.analytics.retention.retention`'s."""
    q, cohorts_cte, pairs_cte = _retention_ctes(store, dialect, **args)
    counts = (
        exp.select(col("grp"), col("c"), col("k"),
                   exp.alias_(exp.Count(this=exp.Distinct(expressions=[col("user_id")])), ident("n")))
        .from_(exp.to_identifier(pairs_cte))
        .group_by(col("grp"), col("c"), col("k"))
    )
    sizes = (
        exp.select(col("grp"), col("c"), exp.alias_(_int(-1), ident("k")),
                   exp.alias_(exp.Count(this=exp.Distinct(expressions=[col("user_id")])), ident("n")))
        .from_(exp.to_identifier(cohorts_cte))
        .group_by(col("grp"), col("c"))
    )
    union = exp.union(sizes, counts, distinct=False)
    out = exp.select(col("grp"), col("c"), col("k"), col("n")).from_(union.subquery("u", copy=False))
    return q.finish(out)


def compile_retention_users(store: EventStore, dialect: str, *, cohort: dt.date | str,
                            k: int | None = None, group: str | None = None,
                            **args) -> exp.Select:
    """The users (sorted ``user_id``) of one cell: the cohort of the period holding
    ``cohort`` (of breakdown ``group``) retained in period ``k`` (None: the whole cohort),
    as :func:`segcore.analytics.retention.retention_users`."""
    every, periods, segments = args["every"], args["periods"], args.get("segments")
    c = every.index_of(parse_date(cohort, "cohort date"))
    if segments and group not in segments:
        raise UsageError(f"{group!r} is not one of the breakdown segments {list(segments)}")
    if k is not None and (not isinstance(k, int) or not 0 <= k <= periods):
        raise UsageError(f"k must be a period from 0 to {periods}, got {k!r}")
    q, cohorts_cte, pairs_cte = _retention_ctes(store, dialect, **args)
    cond = exp.and_(exp.EQ(this=col("c"), expression=_int(c)),
                    exp.EQ(this=col("grp"), expression=exp.Literal.string(group if segments else "")))
    if k is not None:
        op = exp.GTE if args.get("on_or_after") else exp.EQ
        cond = exp.and_(cond, op(this=col("k"), expression=_int(k)))
    source = cohorts_cte if k is None else pairs_cte
    return q.finish(_user_list(source, cond))


def _user_list(source: str, cond: exp.Expression) -> exp.Select:
    return exp.select(col("user_id")).from_(exp.to_identifier(source)).where(cond) \
        .distinct().order_by(col("user_id"))


def retention_counts(store: EventStore, engine: Engine,
                     **args) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Cohort sizes (``group, c, size``) and counts (``group, c, k, n``) computed by a SQL
    engine (``args``: :func:`compile_retention`'s)."""
    df = run_select(compile_retention(store, _dialect(engine), **args), engine).select(
        pl.col("grp").cast(pl.String).alias("group"), pl.col("c").cast(pl.Int32),
        pl.col("k").cast(pl.Int32), pl.col("n").cast(pl.Int64))
    sizes = df.filter(pl.col("k") == -1).select("group", "c", pl.col("n").alias("size"))
    return sizes, df.filter(pl.col("k") >= 0)


def retention_users(store: EventStore, engine: Engine, **args) -> pl.DataFrame:
    """The users of one cell (:func:`compile_retention_users`) computed by a SQL engine."""
    return _ids(run_select(compile_retention_users(store, _dialect(engine), **args), engine))


def _ids(df: pl.DataFrame) -> pl.DataFrame:
    return df.select(pl.col(df.columns[0]).cast(pl.String).alias("user_id")).sort("user_id")


def _dialect(engine: Engine) -> str:
    d = engine_dialect(engine)
    need(engine)
    return d


# --------------------------------------------------------------------------- lifecycle
def _lifecycle_rows(store: EventStore, dialect: str, *, event: str, every: Period,
                    start: dt.date | str, end: dt.date | str,
                    segment: str | None = None) -> tuple[_Query, str]:
    """The report's CTE of ``user_id, p, status``: each user's status in each period."""
    _, hi = _bounds(start, end)
    q = _Query(store, dialect, hi)
    d = dialect
    p0, p1 = every.index_of(parse_date(start, "start date")), every.index_of(parse_date(end, "end date"))
    act = exp.select(col("user_id"), exp.alias_(period_index(col("ts"), every, d), ident("p"))) \
        .from_(q.events(event, None, hi).subquery("e0", copy=False)).distinct()
    pop = q.in_population(segment)
    if pop is not None:
        act = exp.select(col("user_id"), col("p")).from_(act.subquery("a0", copy=False)).where(pop)
    act_cte = q.cte("active", act)

    def table(name: str, alias: str) -> exp.Table:
        return exp.Table(this=exp.to_identifier(name), alias=exp.TableAlias(this=ident(alias)))

    def same(x: str, y: str) -> exp.Expression:
        return exp.and_(exp.EQ(this=col("user_id", x), expression=col("user_id", y)),
                        exp.EQ(this=col("p", x), expression=col("p", y)))

    firsts = exp.select(col("user_id"), exp.alias_(exp.Min(this=col("p")), ident("f"))) \
        .from_(exp.to_identifier(act_cte)).group_by(col("user_id"))
    firsts_cte = q.cte("firsts", firsts)
    shifted = exp.select(col("user_id"), exp.alias_(exp.Add(this=col("p"), expression=_int(1)),
                                                    ident("p"))).from_(exp.to_identifier(act_cte))
    shifted_cte = q.cte("next", shifted)  # (user, p + 1): active in the period before
    status = exp.Case(
        ifs=[exp.If(this=exp.EQ(this=col("f", "f"), expression=col("p", "a")),
                    true=exp.Literal.string("new")),
             exp.If(this=exp.Is(this=col("user_id", "b"), expression=exp.null()),
                    true=exp.Literal.string("resurrecting"))],
        default=exp.Literal.string("returning"))
    active = (
        exp.select(exp.alias_(col("user_id", "a"), ident("user_id")),
                   exp.alias_(col("p", "a"), ident("p")),
                   exp.alias_(status, ident("status")))
        .from_(table(act_cte, "a"))
        .join(table(firsts_cte, "f"),
              on=exp.EQ(this=col("user_id", "a"), expression=col("user_id", "f")))
        .join(table(shifted_cte, "b"), on=same("a", "b"), join_type="left")
        .where(exp.Between(this=col("p", "a"), low=_int(p0), high=_int(p1)))
    )
    dormant = (
        exp.select(exp.alias_(col("user_id", "b"), ident("user_id")),
                   exp.alias_(col("p", "b"), ident("p")),
                   exp.alias_(exp.Literal.string("dormant"), ident("status")))
        .from_(table(shifted_cte, "b"))
        .join(table(act_cte, "a"), on=same("b", "a"), join_type="left")
        .where(exp.and_(exp.Between(this=col("p", "b"), low=_int(p0), high=_int(p1)),
                        exp.Is(this=col("user_id", "a"), expression=exp.null())))
    )
    return q, q.cte("statuses", exp.union(active, dormant, distinct=False))


def compile_lifecycle(store: EventStore, dialect: str, **args) -> exp.Select:
    """The lifecycle counts query (``p, status, n``)."""
    q, rows = _lifecycle_rows(store, dialect, **args)
    out = exp.select(col("p"), col("status"), exp.alias_(_count_star(), ident("n"))) \
        .from_(exp.to_identifier(rows)).group_by(col("p"), col("status"))
    return q.finish(out)


def compile_lifecycle_users(store: EventStore, dialect: str, *, period: dt.date | str,
                            status: str, **args) -> exp.Select:
    """The users (sorted ``user_id``) with ``status`` in the period holding ``period``."""
    if status not in STATUSES:
        raise UsageError(f"bad status {status!r}: use {', '.join(STATUSES)}")
    p = args["every"].index_of(parse_date(period, "period date"))
    q, rows = _lifecycle_rows(store, dialect, **args)
    return q.finish(_user_list(rows, exp.and_(
        exp.EQ(this=col("p"), expression=_int(p)),
        exp.EQ(this=col("status"), expression=exp.Literal.string(status)))))


def lifecycle_counts(store: EventStore, engine: Engine, **args) -> pl.DataFrame:
    """``p, status, n`` computed by a SQL engine."""
    return run_select(compile_lifecycle(store, _dialect(engine), **args), engine).select(
        pl.col("p").cast(pl.Int32), pl.col("status").cast(pl.String), pl.col("n").cast(pl.Int64))


def lifecycle_users(store: EventStore, engine: Engine, **args) -> pl.DataFrame:
    """The users of one lifecycle bar (:func:`compile_lifecycle_users`) by a SQL engine."""
    return _ids(run_select(compile_lifecycle_users(store, _dialect(engine), **args), engine))


# --------------------------------------------------------------------------- stickiness
def _active_days(store: EventStore, dialect: str, *, event: str, every: Period,
                 start: dt.date | str, end: dt.date | str,
                 segment: str | None = None) -> tuple[_Query, str]:
    """The report's CTE of ``user_id, p, n``: the number of distinct days of period ``p``
    the user did ``event``."""
    lo, hi = _bounds(start, end)
    q = _Query(store, dialect, hi)
    d = dialect
    days = exp.select(col("user_id"),
                      exp.alias_(period_index(col("ts"), Period.DAY, d), ident("d")),
                      exp.alias_(period_index(col("ts"), every, d), ident("p"))) \
        .from_(q.events(event, lo, hi).subquery("e0", copy=False)).distinct()
    pop = q.in_population(segment)
    if pop is not None:
        days = exp.select(col("user_id"), col("d"), col("p")) \
            .from_(days.subquery("d0", copy=False)).where(pop)
    days_cte = q.cte("days", days)
    per = exp.select(col("user_id"), col("p"), exp.alias_(_count_star(), ident("n"))) \
        .from_(exp.to_identifier(days_cte)).group_by(col("user_id"), col("p"))
    return q, q.cte("per_user", per)


def compile_stickiness(store: EventStore, dialect: str, **args) -> exp.Select:
    """The stickiness counts query (``p, n, users``)."""
    q, per_cte = _active_days(store, dialect, **args)
    out = exp.select(col("p"), col("n"), exp.alias_(_count_star(), ident("users"))) \
        .from_(exp.to_identifier(per_cte)).group_by(col("p"), col("n"))
    return q.finish(out)


def compile_stickiness_users(store: EventStore, dialect: str, *, period: dt.date | str,
                             days: int, **args) -> exp.Select:
    """The users (sorted ``user_id``) active on exactly ``days`` days of the period
    holding ``period``."""
    p = args["every"].index_of(parse_date(period, "period date"))
    q, per_cte = _active_days(store, dialect, **args)
    return q.finish(_user_list(per_cte, exp.and_(
        exp.EQ(this=col("p"), expression=_int(p)),
        exp.EQ(this=col("n"), expression=_int(int(days))))))


def stickiness_counts(store: EventStore, engine: Engine, **args) -> pl.DataFrame:
    """``p, n, users`` computed by a SQL engine."""
    return run_select(compile_stickiness(store, _dialect(engine), **args), engine).select(
        pl.col("p").cast(pl.Int32), pl.col("n").cast(pl.Int32), pl.col("users").cast(pl.Int64))


def stickiness_users(store: EventStore, engine: Engine, **args) -> pl.DataFrame:
    """The users of one stickiness bar (:func:`compile_stickiness_users`) by a SQL engine."""
    return _ids(run_select(compile_stickiness_users(store, _dialect(engine), **args), engine))
