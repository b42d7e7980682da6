"""Funnels on the SQL engines (docs/analytics.md, Funnels; docs/engines.md, Funnels).

Every query is a sqlglot tree built from the funnel's spec; step and exclusion
``where`` filters and the population segment come from the rule compiler
(:class:`segcore.engine.sql.compiler.Compiler`). Three formulations, all giving the
Polars funnel's numbers exactly:

- *Latest start* (ordered funnels of distinct step events without exclusions, the
  usual case, ``--strict`` and ``--hold`` included): per step one window
  ``MAX(L) OVER (PARTITION BY user ORDER BY t RANGE BETWEEN UNBOUNDED PRECEDING AND
  CURRENT ROW)`` over the previous step's qualifying events and this step's events,
  as ``segcore.analytics.funnel.latest_start_users``; conversion over time takes the
  mirror pass ``MIN(E) OVER (... AND UNBOUNDED FOLLOWING)``
  (``earliest_completions``). ``strict`` moves the frame edge to 1 (us) away.
- *windowFunnel* (ClickHouse, the same funnels when not strict): the users who
  dropped off after a step are those whose ``windowFunnel(W)`` level is that step;
  its definition is segcore's there (docs/analytics.md).
- *Selected rows* (every other funnel: a step event used twice, exclusions, any order,
  strict order, deduplication): the engine selects the funnel's rows (range, event
  names, population segment, each step's and exclusion's filter as a boolean column)
  and the Polars chain builder of ``segcore.analytics.funnel`` runs over them, so the
  semantics stay in one place.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from typing import Any

import polars as pl
from sqlglot import exp

from segcore.analytics import funnel as fn
from segcore.engine.choice import Engine
from segcore.engine.rules import schema_of
from segcore.engine.sql import dialects as D
from segcore.engine.sql.compiler import Compiler, col
from segcore.engine.sql.engines import engine_dialect, run_members, run_select
from segcore.engine.sql.localday import epoch_us, local_day
from segcore.errors import UsageError
from segcore.lang.dates import resolve_as_of
from segcore.lang.parser import parse_event_filter
from segcore.lang.tree import Col
from segcore.store.events import EventStore

T = "sc_t"  # event time, microseconds since 1970 UTC


def _num(v: int) -> exp.Expression:
    return exp.Literal.number(v)


def _all(parts: list[exp.Expression]) -> exp.Expression:
    out = exp.paren(parts[0], copy=False)
    for p in parts[1:]:
        out = exp.And(this=out, expression=exp.paren(p, copy=False))
    return out


def _sub(query: exp.Expression, alias: str) -> exp.Expression:
    if isinstance(query, exp.Table):
        q = query.copy()
        q.set("alias", exp.TableAlias(this=exp.to_identifier(alias)))
        return q
    return exp.Subquery(this=query, alias=exp.TableAlias(this=exp.to_identifier(alias)))


def step_flag(i: int) -> str:
    """Column of the selected rows: the row matches step ``i`` (0-based)."""
    return f"sc_w{i}"


def exclusion_flag(n: int) -> str:
    """Column of the selected rows: the row matches exclusion ``n`` (0-based)."""
    return f"sc_x{n}"


class FunnelCompiler:
    """The SQL of one funnel (``spec``) on one dialect, optionally within the members
    of saved segment ``segment`` (at the end of the range, as the Polars funnel)."""

    def __init__(
        self, store: EventStore, spec: fn.FunnelSpec, dialect: str, segment: str | None = None
    ):
        self.store, self.spec, self.d = store, spec, dialect
        self.D = D.dialect_of(dialect)
        self.props: set[str] = set()  # event columns the filters read
        schema = schema_of(store, check_names=False)
        self.schema = schema
        self.comp = Compiler(store, spec.end, dialect, schema)
        # where filters are read at "now", as segcore.engine.polars.evaluate.event_filter
        self.now = Compiler(store, resolve_as_of(None), dialect, schema)
        self.members = self.comp.segment(segment) if segment else None
        self.steps = [
            self._match(s.event, s.where, f"step {i + 1}") for i, s in enumerate(spec.steps)
        ]
        if spec.hold is not None:
            held = exp.Not(this=exp.Is(this=col(spec.hold), expression=exp.Null()))
            self.steps = [_all([m, held]) for m in self.steps]
        self.exclusions = [
            self._match(x.event, x.where, f"exclusion {n + 1}")
            for n, x in enumerate(spec.exclusions)
        ]
        self.window_us = spec.window_us
        self.rows_cte = ""  # the CTE of the rows with their step (set by the queries)
        self.lo, self.hi = epoch_us(spec.start), epoch_us(spec.end)

    # ------------------------------------------------------------------ pieces
    def _match(self, event: str, where: Any, label: str) -> exp.Expression:
        parts: list[exp.Expression] = [
            exp.EQ(this=col("event"), expression=exp.Literal.string(event))
        ]
        if where is not None:
            if not isinstance(where, str):
                raise UsageError(f"{label}: SQL engines take where filters as rule text")
            node = parse_event_filter(where, self.schema)
            self.props.update(n.name for n in node.walk() if isinstance(n, Col))
            cond = self.now.value(node, "event", {})
            parts.append(exp.Coalesce(this=exp.paren(cond, copy=False), expressions=[exp.false()]))
        return _all(parts)

    def _group(self) -> list[str]:
        return ["user_id", *([self.spec.hold] if self.spec.hold else [])]

    def _events(self, names: list[str] | None) -> exp.Select:
        """``user_id, event, sc_t`` (+ hold and filter columns) of the funnel's rows:
        ``from <= ts < to + window``, ``names`` only, members of the segment only."""
        props = set(self.props) | ({self.spec.hold} if self.spec.hold else set())
        props -= {"user_id", "event", "ts"}
        src = self.comp.events(props)
        hi = self.spec.end + self.spec.window
        where = [
            exp.GTE(this=col("ts"), expression=self.D.timestamp_literal(self.spec.start)),
            exp.LT(this=col("ts"), expression=self.D.timestamp_literal(hi)),
        ]
        if names is not None:
            where.append(
                exp.In(this=col("event"), expressions=[exp.Literal.string(n) for n in names])
            )
        if self.members is not None:
            ids = exp.select(col("user_id")).from_(exp.to_identifier(self.members))
            where.append(exp.In(this=col("user_id"), query=ids.subquery(copy=False)))
        cols = [col(c) for c in ["user_id", "event", *sorted(props)]]
        return (
            exp.select(*cols, exp.alias_(self.D.epoch_us(col("ts")), T))
            .from_(_sub(src, "e"))
            .where(_all(where))
        )

    def _names(self) -> list[str]:
        spec = self.spec
        return sorted({s.event for s in spec.steps} | {x.event for x in spec.exclusions})

    def _final(self, sel: exp.Select) -> exp.Select:
        for name, q in self.comp.ctes:
            sel = sel.with_(exp.to_identifier(name), as_=q, copy=False)
        return self.D.settings(sel)

    # ------------------------------------------------------------------ queries
    def rows(self) -> exp.Select:
        """The funnel's rows: ``user_id, event, sc_t`` (+ hold), and per step and
        exclusion a boolean ``sc_w<i>`` / ``sc_x<n>`` (NULL filters are FALSE). Every
        event of the range under strict order (any event may interrupt a chain)."""
        names = None if self.spec.strict_order else self._names()
        base = self._events(names)
        flags = [exp.alias_(m, step_flag(i)) for i, m in enumerate(self.steps)]
        flags += [exp.alias_(m, exclusion_flag(n)) for n, m in enumerate(self.exclusions)]
        keep = [*self._group(), "event", T]
        return self._final(exp.select(*[col(c) for c in keep], *flags).from_(_sub(base, "r")))

    def _steps_of_rows(self) -> exp.Select:
        """``group, sc_t, sc_s`` (the step a row matches; distinct step events)."""
        ifs = [exp.If(this=m, true=_num(i)) for i, m in enumerate(self.steps)]
        s = exp.Case(ifs=ifs)
        inner = exp.select(*[col(c) for c in self._group()], col(T), exp.alias_(s, "sc_s"))
        inner = inner.from_(_sub(self._events([s.event for s in self.spec.steps]), "r"))
        return (
            exp.select("*")
            .from_(_sub(inner, "q"))
            .where(exp.Not(this=exp.Is(this=exp.column("sc_s"), expression=exp.Null())))
        )

    def _frame(self, backward: bool) -> exp.WindowSpec:
        near = 1 if self.spec.strict else 0
        if backward:
            end = "CURRENT ROW" if not near else _num(1)
            return exp.WindowSpec(
                kind="RANGE",
                start="UNBOUNDED",
                start_side="PRECEDING",
                end=end,
                end_side=None if not near else "PRECEDING",
            )
        start = "CURRENT ROW" if not near else _num(1)
        return exp.WindowSpec(
            kind="RANGE",
            start=start,
            start_side=None if not near else "FOLLOWING",
            end="UNBOUNDED",
            end_side="FOLLOWING",
        )

    def _carry(self, agg: type, prev: str, step: int, key: str, backward: bool) -> exp.Select:
        """Rows of step ``step`` with ``key`` carried from the rows of CTE ``prev``: the
        MAX (backward) / MIN (forward) of ``key`` over the group's rows of ``prev`` at
        or before / at or after them (strict: excluding the same instant)."""
        group = self._group()
        typed_null = self.D.typed_null("int")
        mine = exp.select(
            *[col(c) for c in group],
            col(T),
            exp.alias_(typed_null, key),
            exp.alias_(_num(1), "sc_own"),
        )
        mine = mine.from_(exp.to_identifier(self.rows_cte)).where(
            exp.EQ(this=exp.column("sc_s"), expression=_num(step))
        )
        theirs = exp.select(
            *[col(c) for c in group], col(T), col(key), exp.alias_(_num(0), "sc_own")
        ).from_(exp.to_identifier(prev))
        both = exp.union(theirs, mine, distinct=False)
        win = exp.Window(
            this=agg(this=col(key)),
            partition_by=[col(c) for c in group],
            order=exp.Order(expressions=[exp.Ordered(this=col(T), nulls_first=False)]),
            spec=self._frame(backward),
        )
        sel = exp.select(
            *[col(c) for c in group], col(T), exp.alias_(win, key), exp.column("sc_own")
        ).from_(_sub(both, "b"))
        return (
            exp.select(*[col(c) for c in group], col(T), col(key))
            .from_(_sub(sel, "w"))
            .where(exp.EQ(this=exp.column("sc_own"), expression=_num(1)))
        )

    def _cte(self, prefix: str, q: exp.Expression) -> str:
        return self.comp.add_cte(prefix, q)

    def latest_start(self) -> exp.Select:
        """``sc_step, user_id, sc_d``: per step (0-based) and user reaching it, the
        shortest time to convert in us (``latest_start_users``)."""
        self.rows_cte = self._cte("frows", self._steps_of_rows())
        L = "sc_l"
        first = exp.select(*[col(c) for c in self._group()], col(T), exp.alias_(col(T), L)).from_(
            exp.to_identifier(self.rows_cte)
        )
        first = first.where(
            _all(
                [
                    exp.EQ(this=exp.column("sc_s"), expression=_num(0)),
                    exp.GTE(this=col(T), expression=_num(self.lo)),
                    exp.LT(this=col(T), expression=_num(self.hi)),
                ]
            )
        )
        ctes = [self._cte("fstep", first)]
        for i in range(1, len(self.spec.steps)):
            q = self._carry(exp.Max, ctes[-1], i, L, backward=True)
            gap = exp.Sub(this=col(T), expression=col(L))
            q = (
                exp.select("*")
                .from_(_sub(q, "c"))
                .where(exp.LTE(this=gap, expression=_num(self.window_us)))
            )
            ctes.append(self._cte("fstep", q))
        parts = []
        for i, name in enumerate(ctes):
            d = exp.Min(this=exp.Sub(this=col(T), expression=col(L)))
            parts.append(
                exp.select(exp.alias_(_num(i), "sc_step"), col("user_id"), exp.alias_(d, "sc_d"))
                .from_(exp.to_identifier(name))
                .group_by(col("user_id"))
            )
        out = parts[0]
        for p in parts[1:]:
            out = exp.union(out, p, distinct=False)
        return self._final(exp.select("*").from_(_sub(out, "u")))

    def completions(self) -> exp.Select:
        """``user_id, sc_t0, sc_done``: per user and day of the report zone with a start,
        its first start (us) and 1 when one of its starts that day completes
        (``earliest_completions``); the caller names the period from ``sc_t0``."""
        self.rows_cte = self._cte("frows", self._steps_of_rows())
        E = "sc_e"
        k = len(self.spec.steps)
        last = exp.select(*[col(c) for c in self._group()], col(T), exp.alias_(col(T), E))
        last = last.from_(exp.to_identifier(self.rows_cte)).where(
            exp.EQ(this=exp.column("sc_s"), expression=_num(k - 1))
        )
        if k == 1:
            last = last.where(
                _all(
                    [
                        exp.GTE(this=col(T), expression=_num(self.lo)),
                        exp.LT(this=col(T), expression=_num(self.hi)),
                    ]
                )
            )
        cur = self._cte("fnext", last)
        for i in range(k - 2, -1, -1):
            q = self._carry(exp.Min, cur, i, E, backward=False)
            if i:  # an event from which nothing completes cannot help an earlier step
                q = (
                    exp.select("*")
                    .from_(_sub(q, "c"))
                    .where(exp.Not(this=exp.Is(this=col(E), expression=exp.Null())))
                )
            else:
                q = (
                    exp.select("*")
                    .from_(_sub(q, "c"))
                    .where(
                        _all(
                            [
                                exp.GTE(this=col(T), expression=_num(self.lo)),
                                exp.LT(this=col(T), expression=_num(self.hi)),
                            ]
                        )
                    )
                )
            cur = self._cte("fnext", q)
        done = exp.Case(
            ifs=[
                exp.If(
                    this=exp.LTE(
                        this=exp.Sub(this=col(E), expression=col(T)),
                        expression=_num(self.window_us),
                    ),
                    true=_num(1),
                )
            ],
            default=_num(0),
        )
        day = local_day(self.D, col(T), self.spec.start, self.spec.end)
        sel = exp.select(
            col("user_id"),
            exp.alias_(exp.Min(this=col(T)), "sc_t0"),
            exp.alias_(exp.Max(this=done), "sc_done"),
        )
        sel = sel.from_(exp.to_identifier(cur)).group_by(col("user_id"), day)
        return self._final(sel)

    def window_funnel(self) -> exp.Select:
        """ClickHouse: ``user_id, sc_level``, the ``windowFunnel(W)`` level per user."""
        if self.d != "clickhouse":
            raise UsageError("windowFunnel is ClickHouse's")
        in_range = exp.LT(this=col(T), expression=_num(self.hi))
        conds = [_all([self.steps[0].copy(), in_range]), *[m.copy() for m in self.steps[1:]]]
        t = exp.Cast(this=col(T), to=exp.DataType.build("UInt64", dialect="clickhouse"))
        level = exp.ParameterizedAgg(
            this="windowFunnel", expressions=[_num(self.window_us)], params=[t, *conds]
        )
        base = self._events([s.event for s in self.spec.steps])
        inner = exp.select(col("user_id"), exp.alias_(level, "sc_level"))
        inner = inner.from_(_sub(base, "r")).group_by(*[col(c) for c in self._group()])
        sel = exp.select(
            col("user_id"), exp.alias_(exp.Max(this=exp.column("sc_level")), "sc_level")
        )
        return self._final(sel.from_(_sub(inner, "l")).group_by(col("user_id")))


# ---------------------------------------------------------------------- running
def fetch(query: exp.Select, engine: Engine) -> pl.DataFrame:
    """Run a query on ``engine`` (DuckDB, chdb or Spark, in UTC): its rows as Polars."""
    return run_select(query, engine)


class _SelectedRows:
    """The rows an engine selected, read by the Polars chain builder as a store."""

    def __init__(self, rows: pl.DataFrame, store: EventStore):
        self.rows = rows.with_columns(
            pl.from_epoch(pl.col(T).cast(pl.Int64), time_unit="us")
            .dt.replace_time_zone("UTC")
            .alias("ts"),
            pl.col("user_id").cast(pl.String),
            pl.col("^sc_[wx][0-9]+$").cast(pl.Boolean),
        ).drop(T)
        self.store = store

    def events_frame(self, columns, events=None, since=None, until=None) -> pl.LazyFrame:
        lf = self.rows.lazy()
        if events is not None:
            lf = lf.filter(pl.col("event").is_in(sorted(set(events))))
        if since is not None:
            lf = lf.filter(pl.col("ts") >= pl.lit(since, dtype=pl.Datetime("us", "UTC")))
        if until is not None:
            lf = lf.filter(pl.col("ts") < pl.lit(until, dtype=pl.Datetime("us", "UTC")))
        return lf.select(list(dict.fromkeys(columns)))


def _flagged(spec: fn.FunnelSpec) -> fn.FunnelSpec:
    """``spec`` with each filter replaced by its selected-rows flag column."""
    steps = tuple(fn.FunnelStep(s.event, pl.col(step_flag(i))) for i, s in enumerate(spec.steps))
    excl = tuple(
        dataclasses.replace(x, where=pl.col(exclusion_flag(n)))
        for n, x in enumerate(spec.exclusions)
    )
    return dataclasses.replace(spec, steps=steps, exclusions=excl)


class SqlFunnel(fn.PolarsFunnel):
    """The funnel backend of a SQL engine (see the module docstring)."""

    def __init__(self, store: EventStore, engine: Engine):
        super().__init__(store)
        self.engine = engine
        self.dialect = engine_dialect(engine.name)

    def compiler(self, spec: fn.FunnelSpec, segment: str | None) -> FunnelCompiler:
        return FunnelCompiler(self.store, spec, self.dialect, segment)

    def members(self, name: str, at: dt.datetime) -> pl.DataFrame:
        return run_members(
            self.store,
            segment=name,
            as_of=at,
            engine=self.engine.name,
            spark_master=self.engine.master,
        )

    def selected(self, spec: fn.FunnelSpec, segment: str | None) -> _SelectedRows:
        return _SelectedRows(fetch(self.compiler(spec, segment).rows(), self.engine), self.store)

    def reached(self, spec, segment, method="auto") -> list[pl.DataFrame]:
        if method != "chains" and fn.uses_latest_start(spec):
            got = fetch(self.compiler(spec, segment).latest_start(), self.engine)
            got = got.select(
                pl.col("sc_step").cast(pl.Int64),
                pl.col("user_id").cast(pl.String),
                (pl.col("sc_d").cast(pl.Int64) / fn.US).alias("seconds"),
            )
            return [
                got.filter(pl.col("sc_step") == i).select("user_id", "seconds")
                for i in range(len(spec.steps))
            ]
        rows = self.selected(spec, segment)
        return fn.step_users(fn.chains(rows, _flagged(spec)))

    def starts(self, spec, segment, method="auto") -> tuple[pl.DataFrame, pl.DataFrame]:
        if method != "chains" and fn.uses_latest_start(spec):
            got = fetch(self.compiler(spec, segment).completions(), self.engine)
            got = got.select(
                pl.col("user_id").cast(pl.String).alias("u"),
                pl.col("sc_t0").cast(pl.Int64).alias("t0"),
                pl.col("sc_done").cast(pl.Int64),
            )
            return got, got.filter(pl.col("sc_done") == 1)
        frames = fn.chains(self.selected(spec, segment), _flagged(spec)).frames
        return frames[0], frames[-1]

    def dropoffs(self, spec, segment, after_step) -> pl.DataFrame | None:
        if self.dialect != "clickhouse" or spec.strict or not fn.uses_latest_start(spec):
            return None  # windowFunnel's definition is segcore's only there
        got = fetch(self.compiler(spec, segment).window_funnel(), self.engine)
        return got.filter(pl.col("sc_level") == after_step).select(
            pl.col("user_id").cast(pl.String)
        )


def funnel_backend(store: EventStore, engine: Engine | str | None) -> fn.PolarsFunnel:
    """The funnel backend of ``engine`` (Polars for ``polars``)."""
    e = Engine.parse(engine)
    return fn.PolarsFunnel(store) if e.is_polars else SqlFunnel(store, e)
