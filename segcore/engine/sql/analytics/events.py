"""Event reports in SQL: events and distinct users per period, event and group.

Periods are day numbers of the report zone's calendar days
(:func:`segcore.engine.sql.localday.local_day`: exact integers from the epoch
microseconds) or the day number of the week's first day (the zone's ``week_start``,
Monday unless configured); the runner turns them into dates. A ``by`` breakdown takes two queries: the property's totals (the runner
keeps the top values, as the Polars report does), then the counts with each row's
value mapped to the index of its kept value (-1: NULL, -2: other), so values of
any type compare as typed literals, never as text.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlglot import exp

from segcore.engine.rules import schema_of
from segcore.engine.sql.analytics.base import aliased, compiler, count_star, table, union_all
from segcore.engine.sql.compiler import Compiler, col, ident
from segcore.engine.sql.localday import local_day
from segcore.lang.dates import current_zone
from segcore.lang.parser import parse_event_filter
from segcore.store.events import EventStore

NULL_GROUP, OTHER_GROUP = -1, -2


def _events(comp: Compiler, events: list[str], lo: dt.datetime, hi: dt.datetime,
            where: str | None, by: str | None, segment: str | None) -> exp.Select:
    """The report's events: ``user_id, event, sc_day[, sc_raw]`` in ``[lo, hi)``."""
    schema = comp.schema
    node = None if where is None else parse_event_filter(str(where), schema)
    props = set() if node is None else {c for c in _columns(node) if c in schema.events}
    if by is not None:
        props.add(by)
    cond = [
        exp.GTE(this=col("ts"), expression=comp.D.timestamp_literal(lo)),
        exp.LT(this=col("ts"), expression=comp.D.timestamp_literal(hi)),
        exp.In(this=col("event"), expressions=[exp.Literal.string(e) for e in events]),
    ]
    if node is not None:
        cond.append(exp.Coalesce(this=exp.paren(comp.value(node, "event", {})),
                                 expressions=[exp.false()]))
    if segment:
        ids = exp.select(col("user_id")).from_(table(comp.segment(segment)))
        cond.append(exp.In(this=col("user_id"), query=ids.subquery()))
    day = local_day(comp.D, comp.D.epoch_us(col("ts")), lo, hi)
    cols = [col("user_id"), col("event"), exp.alias_(day, ident("sc_day"))]
    if by is not None:
        cols.append(exp.alias_(col(by), ident("sc_raw")))
    return exp.select(*cols).from_(aliased(comp.events(props), "e")).where(exp.and_(*cond))


def _columns(node: Any) -> set[str]:
    from segcore.lang.tree import Col

    return {n.name for n in node.walk() if isinstance(n, Col)}


def _period(every: str) -> exp.Expression:
    """The first day of the period holding ``sc_day``, as ``period_first`` (weeks start
    on the report zone's ``week_start``: 0 Monday .. 6 Sunday)."""
    day = col("sc_day")
    if every != "week":
        return day
    # first day of the week: day - ((day + 3 - week_start) mod 7); 1970-01-01 was a
    # Thursday (weekday 3), so day's weekday is (day + 3) mod 7
    shift = 3 - current_zone().week_start
    mod = exp.Mod(this=exp.paren(exp.Add(this=day.copy(), expression=exp.Literal.number(shift))),
                  expression=exp.Literal.number(7))
    pos = exp.Mod(this=exp.paren(exp.Add(this=mod, expression=exp.Literal.number(7))),
                  expression=exp.Literal.number(7))
    return exp.Sub(this=day, expression=exp.paren(pos))


def totals_select(store: EventStore, events: list[str], lo: dt.datetime, hi: dt.datetime,
                  by: str, where: str | None, segment: str | None, dialect: str) -> exp.Select:
    """Rows ``sc_raw, n``: events per value of property ``by`` (NULL included)."""
    comp = compiler(store, hi, dialect)
    ev = comp.add_cte("ev", _events(comp, events, lo, hi, where, by, segment))
    return comp.finish(
        exp.select(col("sc_raw"), count_star("n")).from_(table(ev)).group_by(col("sc_raw"))
    )


def report_select(store: EventStore, events: list[str], lo: dt.datetime, hi: dt.datetime,
                  every: str, *, where: str | None = None, segment: str | None = None,
                  segments: list[str] | None = None, by: str | None = None,
                  kept: list[Any] | None = None, dialect: str = "duckdb") -> exp.Select:
    """Rows ``sc_period, event, [sc_group,] events, users`` (only groups with events).

    ``sc_group`` is the segment's name (``segments``) or, with ``by``, the index of the
    row's value in ``kept`` (``NULL_GROUP``/``OTHER_GROUP``)."""
    comp = compiler(store, hi, dialect)
    ev = comp.add_cte("ev", _events(comp, events, lo, hi, where, by, segment))
    keys: list[exp.Expression] = [exp.alias_(_period(every), ident("sc_period")), col("event")]
    src: exp.Expression = table(ev, "x")
    sel = exp.select()
    if segments:
        parts = [
            exp.select(exp.alias_(exp.Literal.string(s), ident("sc_group")), col("user_id"))
            .from_(table(comp.segment(s)))
            for s in segments
        ]
        groups = comp.add_cte("groups", union_all(parts))
        sel = sel.from_(src).join(
            table(groups, "g"),
            on=exp.EQ(this=exp.column("user_id", table="g"),
                      expression=exp.column("user_id", table="x")),
        )
        keys.append(exp.column("sc_group", table="g"))
    elif by is not None:
        typ = schema_of(store, check_names=False).events.get(by, "string")
        raw = exp.column("sc_raw", table="x")
        ifs = [exp.If(this=exp.Is(this=raw.copy(), expression=exp.null()),
                      true=exp.Literal.number(NULL_GROUP))]
        ifs += [exp.If(this=exp.EQ(this=raw.copy(), expression=comp.literal(v, typ)),
                       true=exp.Literal.number(i)) for i, v in enumerate(kept or [])]
        keys.append(exp.alias_(exp.Case(ifs=ifs, default=exp.Literal.number(OTHER_GROUP)),
                               ident("sc_group")))
        sel = sel.from_(src)
    else:
        sel = sel.from_(src)
    inner = sel.select(*keys, exp.alias_(exp.column("user_id", table="x"), ident("user_id")),
                       copy=False)
    names = [k.alias_or_name for k in keys]
    outer = exp.select(
        *[col(n) for n in names],
        count_star("events"),
        exp.alias_(exp.Count(this=exp.Distinct(expressions=[col("user_id")])), ident("users")),
    ).from_(inner.subquery("r")).group_by(*[col(n) for n in names])
    return comp.finish(outer)
