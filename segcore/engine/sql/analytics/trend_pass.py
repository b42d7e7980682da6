"""Size over time in SQL in one pass over the events (the Polars trend's algorithm).

The window bounds ``lo_j``/``hi_j`` of a term never decrease with the point ``j``, so
an event at ``ts`` counts exactly for the points ``a <= j < b``, ``a`` (``b``) the
number of points whose ``hi_j`` (``lo_j``) is at or before ``ts``. Both are integers
computed from ``ts``: the bounds are the report zone's day (or week) grid shifted by a
constant (``within``, ``since => today() - 7``...) or a constant (``since => '2026-01-01'``),
and the count of grid instants at or before ``x`` is arithmetic on the local day number
of ``x`` (:func:`segcore.engine.sql.localday.local_day`: exact in zones whose days last
23 or 25 hours). Per term the events become rows ``(user, j, delta)``: ``+v`` at ``a``
and ``-v`` at ``b``, one column per term; grouped per ``(user, j)`` and summed per user
over ``j`` with a window function, each row is an interval of points where every term
(and the universe: users rows, first event) is constant. The rule is evaluated once per
interval with the compiler's expressions (attributes joined per user), and entries and
exits are the intervals whose membership differs from the user's previous interval;
members per point are their running sum over a small table of the points.

The terms share one scan of the events (each event carries every term's ``a``/``b``,
NULL where the term does not read it). Covered: ``did``, ``event_count``, ``event_sum``,
``event_avg`` with ``within``, ``since`` and ``until`` whose bounds follow the grid or are
constant, attributes, ``AND``/``OR``/``NOT`` and every value expression, a dynamic saved
segment as the target. Anything else
(sequences, ``in_segment``, ``first_seen``/``last_seen``, ``event_min``/``max``/
``distinct``/``periods``, ``now()``/``today()`` outside a window bound, bounds off the
grid, static segments) returns None here: the caller stacks one members query per point
(:func:`segcore.engine.sql.analytics.trend.stacked_members`).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlglot import exp

from segcore.engine.plan import (
    event_columns,
    needs_universe,
    resolve_segment,
    term_columns,
    tree_columns,
    window_bounds,
)
from segcore.engine.sql.analytics.base import aliased, flag, table, union_all
from segcore.engine.sql.compiler import Compiler, col, ident
from segcore.engine.sql.localday import local_day
from segcore.lang.dates import end_of_day, today_at
from segcore.lang.tree import AGGREGATES, Behavior, Call, InSegment, Node, Sequence, behaviours

ADDITIVE = ("did", "event_count", "event_sum", "event_avg")
_EPOCH_DAY = dt.date(1970, 1, 1)
_US = dt.timedelta(microseconds=1)
_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)


@dataclass(frozen=True)
class Grid:
    """The points' local dates as day numbers: ``day0 + step * j`` (T_j ends that day)."""

    day0: int
    step: int
    P: int


@dataclass(frozen=True)
class Counter:
    """``#{j : B_j <= x}`` for nondecreasing bounds ``B``: constant (``B_j = c``) or the
    grid shifted (``B_j = end_of_day(day_j + k) - c``)."""

    first: int
    last: int
    shift: int = 0  # c
    k: int | None = None  # None: constant bounds

    def sql(self, comp: Compiler, x: exp.Expression, grid: Grid) -> exp.Expression:
        P = exp.Literal.number(grid.P)
        if self.k is None:
            return exp.Case(ifs=[exp.If(this=exp.LT(this=x.copy(),
                                                      expression=exp.Literal.number(self.first)),
                                        true=exp.Literal.number(0))], default=P)
        lo = _EPOCH + (self.first + self.shift) * _US
        hi = _EPOCH + (self.last + self.shift + 1) * _US
        shifted = exp.Add(this=exp.paren(x.copy()), expression=exp.Literal.number(self.shift))
        day = local_day(comp.D, shifted, lo, hi)
        rel = exp.Sub(this=exp.paren(day),
                      expression=exp.Literal.number(grid.day0 + self.k + 1))
        n = exp.Add(this=comp.D.floor_div(exp.paren(rel), exp.Literal.number(grid.step)),
                    expression=exp.Literal.number(1))
        return exp.Case(ifs=[
            exp.If(this=exp.LT(this=x.copy(), expression=exp.Literal.number(self.first)),
                   true=exp.Literal.number(0)),
            exp.If(this=exp.GTE(this=x.copy(), expression=exp.Literal.number(self.last)),
                   true=P),
        ], default=n)


def _us(t: dt.datetime) -> int:
    return (t - _EPOCH) // _US


def _grid(instants: list[dt.datetime]) -> Grid | None:
    """The points as a day (or week) grid of the report zone, None if they are not one."""
    days = [today_at(T) for T in instants]
    if any(end_of_day(d) != T for d, T in zip(days, instants, strict=True)):
        return None
    step = (days[1] - days[0]).days if len(days) > 1 else 1
    if step not in (1, 7) or any((b - a).days != step for a, b in zip(days, days[1:], strict=False)):
        return None
    return Grid((days[0] - _EPOCH_DAY).days, step, len(days))


def _counter(B: list[int], grid: Grid, T0: int) -> Counter | None:
    if any(b < a for a, b in zip(B, B[1:], strict=False)):
        return None
    if all(b == B[0] for b in B):
        return Counter(B[0], B[-1])
    for c in dict.fromkeys((T0 - B[0], 0)):  # ok-loop: two candidate shifts
        k = (today_at(_EPOCH + (B[0] + c + 1) * _US) - _EPOCH_DAY).days - grid.day0 - 1
        ok = all(
            _us(end_of_day(_EPOCH_DAY + dt.timedelta(days=grid.day0 + grid.step * j + k)))
            == b + c
            for j, b in enumerate(B)  # ok-loop: one check per point
        )
        if ok:
            return Counter(B[0], B[-1], c, k)
    return None


def _clock(node: Node | None) -> bool:
    return node is not None and any(
        isinstance(n, Call) and n.name in ("now", "today") for n in node.walk())


def _outside_terms(tree: Node) -> list[Node]:
    out, stack = [], [tree]
    while stack:
        n = stack.pop()
        out.append(n)
        if not isinstance(n, Behavior | Sequence):
            stack.extend(n.children())
    return out


@dataclass
class Plan:
    tree: Node
    grid: Grid
    terms: list[tuple[Behavior, Counter, Counter | None]]  # (term, hi counter, lo counter)
    universe: Counter


def plan(comp: Compiler, tree: Node | None, segment: str | None,
         instants: list[dt.datetime]) -> Plan | None:
    """The one-pass plan of a trend, None when it needs the stacked method."""
    if tree is None:
        seg = resolve_segment(comp.store, segment)
        if seg.tree is None:
            return None
        tree = seg.tree
    if any(isinstance(n, InSegment | Sequence) for n in _outside_terms(tree)):
        return None
    if any(isinstance(n, Call) and n.name in ("now", "today") for n in _outside_terms(tree)):
        return None
    grid = _grid(instants)
    if grid is None:
        return None
    T = [_us(t) for t in instants]
    terms = []
    for node in behaviours(tree):  # ok-loop: a few terms
        if not isinstance(node, Behavior) or node.func not in ADDITIVE or _clock(node.where):
            return None
        bounds = [window_bounds(node, t, comp.schema) for t in instants]  # ok-loop: per point
        los = [lo for lo, _ in bounds]
        hi = _counter([_us(h) for _, h in bounds], grid, T[0])
        if hi is None or (any(lo is None for lo in los) and any(lo is not None for lo in los)):
            return None
        lo = None if los[0] is None else _counter([_us(x) for x in los], grid, T[0])
        if los[0] is not None and lo is None:
            return None
        terms.append((node, hi, lo))
    universe = _counter(T, grid, T[0])
    assert universe is not None  # the grid itself
    return Plan(tree, grid, terms, universe)


# --------------------------------------------------------------------------- SQL
def _int(n: int) -> exp.Expression:
    return exp.Literal.number(n)


def _bigint(e: exp.Expression) -> exp.Expression:
    return exp.Cast(this=e, to=exp.DataType.build("BIGINT"))


class _Columns:
    """The wide delta columns: per term a count ``sc_n{i}`` (and a sum ``sc_s{i}``), the
    universe's ``sc_u`` and the users row's ``sc_in``."""

    def __init__(self, comp: Compiler, p: Plan):
        self.names: list[tuple[str, exp.DataType]] = []
        big = exp.DataType.build("BIGINT")
        for i, (node, _, _) in enumerate(p.terms):
            self.names.append((f"sc_n{i}", big))
            if node.func in ("event_sum", "event_avg"):
                t = comp.schema.events.get(node.prop or "", "float")
                self.names.append((f"sc_s{i}", comp.D.dtype("int" if t == "int" else "float")))
        self.names += [("sc_u", big), ("sc_in", big)]

    def row(self, j: exp.Expression, values: dict[str, exp.Expression]) -> list[exp.Expression]:
        out = [col("user_id"), exp.alias_(_bigint(j), ident("sc_j"))]
        for name, typ in self.names:
            out.append(exp.alias_(exp.Cast(this=values.get(name, _int(0)), to=typ), ident(name)))
        return out


def _mask(comp: Compiler, p: Plan, i: int) -> exp.Expression:
    """The events term ``i`` reads at some point (name, time span, ``where``, a value)."""
    node, hi, lo = p.terms[i]
    where = []
    if node.event != "*":
        where.append(exp.EQ(this=col("event"), expression=exp.Literal.string(node.event)))
    if lo is not None:
        where.append(exp.GTE(this=col("ts"), expression=comp.D.timestamp_literal(
            _EPOCH + lo.first * _US)))
    where.append(exp.LT(this=col("ts"), expression=comp.D.timestamp_literal(
        _EPOCH + hi.last * _US)))
    if node.where is not None:
        where.append(exp.paren(comp.value(node.where, "event", {})))
    if node.func in ("event_sum", "event_avg"):
        where.append(exp.Not(this=exp.Is(this=col(node.prop), expression=exp.null())))
    return exp.paren(exp.and_(*where))


def _term_rows(comp: Compiler, p: Plan, cols: _Columns) -> exp.Select:
    """The deltas of every term from one scan of the events: per event and term ``i``
    its ``sc_a{i}``/``sc_b{i}`` (NULL where the term does not read it), grouped per user
    and ranges, then one row at ``a`` (+) and one at ``b`` (-) per term that reads it."""
    us = comp.D.epoch_us(col("ts"))
    masks = [_mask(comp, p, i) for i in range(len(p.terms))]
    ranged, keys, sums = [col("user_id")], [col("user_id")], []
    for i, (node, hi, lo) in enumerate(p.terms):  # ok-loop: a few terms
        def when(v: exp.Expression, i: int = i) -> exp.Expression:
            return exp.Case(ifs=[exp.If(this=masks[i].copy(), true=v)])
        b = lo.sql(comp, us, p.grid) if lo is not None else _int(p.grid.P)
        ranged += [exp.alias_(when(hi.sql(comp, us, p.grid)), ident(f"sc_a{i}")),
                   exp.alias_(when(b), ident(f"sc_b{i}"))]
        keys += [col(f"sc_a{i}"), col(f"sc_b{i}")]
        if node.func in ("event_sum", "event_avg"):
            ranged.append(exp.alias_(when(col(node.prop)), ident(f"sc_v{i}")))
            sums.append(exp.alias_(exp.Sum(this=col(f"sc_v{i}")), ident(f"sc_s{i}")))
    scan = exp.select(*ranged).from_(aliased(
        comp.events(set(event_columns([t for t, _, _ in p.terms]))), "e"))
    grouped = (exp.select(*keys, exp.alias_(exp.Count(this=exp.Star()), ident("sc_n")), *sums)
               .from_(scan.where(exp.or_(*[m.copy() for m in masks])).subquery("r"))
               .group_by(*[k.copy() for k in keys]))
    g = comp.add_cte("ranges", grouped)
    pairs = comp.add_cte("sides", union_all([
        exp.select(exp.alias_(_int(i), ident("sc_t")), exp.alias_(_int(side), ident("sc_side")))
        for i in range(len(p.terms)) for side in (0, 1)]))  # ok-loop: two rows per term

    def at(i: int, side: int) -> exp.Expression:
        return exp.and_(exp.EQ(this=col("sc_t"), expression=_int(i)),
                        exp.EQ(this=col("sc_side"), expression=_int(side)))

    def signed(c: str, i: int) -> exp.Expression:
        return exp.Case(ifs=[exp.If(this=at(i, 0), true=col(c)),
                             exp.If(this=at(i, 1), true=exp.Neg(this=col(c)))],
                        default=_int(0))

    values: dict[str, exp.Expression] = {}
    reads, ends = [], []
    for i, (node, _, _) in enumerate(p.terms):  # ok-loop: a few terms
        values[f"sc_n{i}"] = signed("sc_n", i)
        if node.func in ("event_sum", "event_avg"):
            values[f"sc_s{i}"] = signed(f"sc_s{i}", i)
        a, b = col(f"sc_a{i}"), col(f"sc_b{i}")
        reads.append(exp.and_(exp.EQ(this=col("sc_t"), expression=_int(i)),
                              exp.LT(this=a.copy(), expression=b.copy()),
                              exp.or_(exp.EQ(this=col("sc_side"), expression=_int(0)),
                                      exp.LT(this=b.copy(), expression=_int(p.grid.P)))))
        ends += [exp.If(this=at(i, 0), true=a), exp.If(this=at(i, 1), true=b)]
    return (
        exp.select(*cols.row(exp.Case(ifs=ends), values))
        .from_(table(g))
        .join(table(pairs), join_type="cross")
        .where(exp.or_(*[exp.paren(r) for r in reads]))
    )


def _env(p: Plan) -> dict[Node, exp.Expression]:
    env: dict[Node, exp.Expression] = {}
    for i, (node, _, _) in enumerate(p.terms):
        n = col(f"sc_n{i}", "u")
        default = AGGREGATES[node.func][1]
        if node.func == "did":
            env[node] = exp.GT(this=n, expression=_int(0))
        elif node.func == "event_count":
            env[node] = n
        else:
            s = col(f"sc_s{i}", "u")
            if node.func == "event_avg":
                s = exp.Div(this=exp.Cast(this=s, to=exp.DataType.build("DOUBLE")),
                            expression=exp.Cast(this=n.copy(), to=exp.DataType.build("DOUBLE")))
            some = exp.GT(this=n.copy(), expression=_int(0))
            env[node] = exp.Case(
                ifs=[exp.If(this=some, true=s)],
                default=exp.null() if default is None else _int(default))
    return env


def _running(name: str, kind: type = exp.Sum, frame: str = "all") -> exp.Expression:
    spec = (exp.WindowSpec(kind="ROWS", start="UNBOUNDED", start_side="PRECEDING",
                           end="CURRENT ROW") if frame == "all"
            else exp.WindowSpec(kind="ROWS", start=_int(1), start_side="PRECEDING",
                                end=_int(1), end_side="PRECEDING"))
    return exp.Window(this=kind(this=col(name)), partition_by=[col("user_id")],
                      order=exp.Order(expressions=[exp.Ordered(this=col("sc_j"))]), spec=spec)


def changes(comp: Compiler, p: Plan) -> str:
    """CTE ``user_id, sc_j, sc_en, sc_ex``: per user, the points where the membership
    changes (entered: 1 in ``sc_en``; exited: 1 in ``sc_ex``)."""
    cols = _Columns(comp, p)
    parts = [_term_rows(comp, p, cols)] if p.terms else []
    universe = needs_universe(p.tree, comp.schema, comp.T, term_columns(p.tree))
    attrs = sorted(tree_columns(p.tree) - {"user_id"})
    if universe:  # in the universe from the first event on
        first = (exp.select(col("user_id"), exp.alias_(exp.Min(this=col("ts")), ident("sc_t")))
                 .from_(aliased(comp.events(), "e"))
                 .where(exp.LT(this=col("ts"), expression=comp.D.timestamp_literal(
                     _EPOCH + p.universe.last * _US)))
                 .group_by(col("user_id")))
        j = p.universe.sql(comp, comp.D.epoch_us(col("sc_t")), p.grid)
        parts.append(exp.select(*cols.row(j, {"sc_u": _int(1)})).from_(first.subquery("f")))
    if universe or attrs or not parts:  # a users row: a candidate at every point
        parts.append(exp.select(*cols.row(_int(0), {"sc_in": _int(1)}))
                     .from_(aliased(comp.users(), "x")))
    deltas = comp.add_cte("deltas", union_all(parts))
    sums = [exp.alias_(exp.Sum(this=col(n)), ident(n)) for n, _ in cols.names]
    per_point = (exp.select(col("user_id"), col("sc_j"), *sums)
                 .from_(table(deltas)).group_by(col("user_id"), col("sc_j")))
    running = exp.select(col("user_id"), col("sc_j"),
                         *[exp.alias_(_running(n), ident(n)) for n, _ in cols.names])
    intervals = comp.add_cte("intervals", running.from_(per_point.subquery("d")))
    cond = comp.value(p.tree, "user", _env(p))
    if universe:
        cond = exp.and_(exp.paren(cond), exp.GT(
            this=exp.paren(exp.Add(this=col("sc_u", "u"), expression=col("sc_in", "u"))),
            expression=_int(0)))
    proj = [exp.alias_(col("user_id", "u"), ident("user_id")),
            exp.alias_(col("sc_j", "u"), ident("sc_j")), exp.alias_(flag(cond), ident("sc_m"))]
    if attrs or (comp.D.null_flag_lists and any(
            isinstance(n, Call) and n.name in ("has", "length") for n in p.tree.walk())):
        member = comp.with_attributes(intervals, attrs, proj)
    else:
        member = exp.select(*proj).from_(table(intervals, "u"))
    m = comp.add_cte("member", member)
    prev = exp.Coalesce(this=_running("sc_m", exp.Max, "prev"), expressions=[_int(0)])
    diff = exp.select(col("user_id"), col("sc_j"), col("sc_m"),
                      exp.alias_(prev, ident("sc_p"))).from_(table(m))
    out = exp.select(
        col("user_id"), col("sc_j"),
        exp.alias_(flag(exp.and_(exp.EQ(this=col("sc_m"), expression=_int(1)),
                                 exp.EQ(this=col("sc_p"), expression=_int(0)))), ident("sc_en")),
        exp.alias_(flag(exp.and_(exp.EQ(this=col("sc_m"), expression=_int(0)),
                                 exp.EQ(this=col("sc_p"), expression=_int(1)))), ident("sc_ex")),
    ).from_(diff.subquery("c")).where(exp.NEQ(this=col("sc_m"), expression=col("sc_p")))
    return comp.add_cte("changes", out)


def points_select(comp: Compiler, p: Plan) -> exp.Select:
    """Rows ``sc_j, members, entered, exited`` for every point ``j = 1..n``."""
    ch = changes(comp, p)
    per = (exp.select(col("sc_j"), exp.alias_(exp.Sum(this=col("sc_en")), ident("en")),
                      exp.alias_(exp.Sum(this=col("sc_ex")), ident("ex")))
           .from_(table(ch)).group_by(col("sc_j")))
    pts = comp.add_cte("grid", union_all([
        exp.select(exp.alias_(_bigint(_int(j)), ident("sc_j")))  # ok-loop: one row per point
        for j in range(p.grid.P)]))
    en = exp.Coalesce(this=col("en", "c"), expressions=[_int(0)])
    ex = exp.Coalesce(this=col("ex", "c"), expressions=[_int(0)])
    members = exp.Window(
        this=exp.Sum(this=exp.Sub(this=en.copy(), expression=ex.copy())),
        order=exp.Order(expressions=[exp.Ordered(this=col("sc_j", "g"))]),
        spec=exp.WindowSpec(kind="ROWS", start="UNBOUNDED", start_side="PRECEDING",
                            end="CURRENT ROW"))
    joined = (
        exp.select(exp.alias_(col("sc_j", "g"), ident("sc_j")),
                   exp.alias_(members, ident("members")),
                   exp.alias_(en, ident("entered")), exp.alias_(ex, ident("exited")))
        .from_(table(pts, "g"))
        .join(per.subquery("c"), on=exp.EQ(this=col("sc_j", "g"), expression=col("sc_j", "c")),
              join_type="left")
    )
    return (exp.select(col("sc_j"), col("members"), col("entered"), col("exited"))
            .from_(joined.subquery("w"))
            .where(exp.GTE(this=col("sc_j"), expression=_int(1))))


def entries(comp: Compiler, p: Plan) -> str:
    """CTE ``user_id, sc_j``: the users who entered at point ``j >= 1``."""
    ch = changes(comp, p)
    return comp.add_cte("entries", exp.select(col("user_id"), col("sc_j")).from_(table(ch))
                        .where(exp.and_(exp.EQ(this=col("sc_en"), expression=_int(1)),
                                        exp.GTE(this=col("sc_j"), expression=_int(1)))))
