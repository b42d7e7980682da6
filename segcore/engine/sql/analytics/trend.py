"""Size over time in SQL: members, entered and exited at every point, and the ids.

Rules of the common kinds (``did``/``event_count``/``event_sum``/``event_avg`` terms on
the points' day grid, attributes, any boolean or comparison combination) take one pass
over the events (:mod:`segcore.engine.sql.analytics.trend_pass`). Otherwise (sequences,
``in_segment``, the other aggregates, ``now()``/``today()`` outside a window bound,
static segments) the members at each instant ``T_0..T_n`` (``segcore.analytics.trend.make_points``)
are compiled once per instant into one query (``Compiler.at``) and stacked as
``(sc_j, user_id)``; a FULL JOIN of that stack with itself shifted by one point
gives, per point, the members, the users present now but not before (entered)
and before but not now (exited). Exact on every engine; the cost grows with the
number of points (docs/engines.md).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlglot import exp

from segcore.engine.sql.analytics import trend_pass
from segcore.engine.sql.analytics.base import (
    compiler,
    flag,
    is_null,
    not_null,
    table,
    target_tree,
    union_all,
)
from segcore.engine.sql.compiler import Compiler, col, ident
from segcore.errors import UsageError
from segcore.store.events import EventStore


def stacked_members(comp: Compiler, tree: Any, segment: str | None,
                    instants: list[dt.datetime]) -> str:
    """CTE of ``sc_j, sc_next (= sc_j + 1), user_id``: the members at each instant."""
    parts = []
    for j, T in enumerate(instants):  # ok-loop: one members query per point
        cte = comp.at(T).target(tree, segment)
        parts.append(exp.select(
            exp.alias_(exp.Literal.number(j), ident("sc_j")),
            exp.alias_(exp.Literal.number(j + 1), ident("sc_next")),
            col("user_id"),
        ).from_(table(cte)))
    return comp.add_cte("points", union_all(parts))


def entered_rows(comp: Compiler, tree: Any, segment: str | None,
                 instants: list[dt.datetime]) -> str:
    """CTE of ``sc_j, user_id``: the users who entered at point ``j >= 1`` (members at
    ``instants[j]``, not at ``instants[j - 1]``), in one pass where the rule allows."""
    one_pass = trend_pass.plan(comp, tree, segment, instants)
    if one_pass is not None:
        return trend_pass.entries(comp, one_pass)
    stack = stacked_members(comp, tree, segment, instants)
    came = (
        exp.select(exp.alias_(col("sc_j", "a"), ident("sc_j")),
                   exp.alias_(col("user_id", "a"), ident("user_id")))
        .from_(table(stack, "a"))
        .join(table(stack, "b"), on=exp.and_(
            exp.EQ(this=col("user_id", "a"), expression=col("user_id", "b")),
            exp.EQ(this=col("sc_j", "a"), expression=col("sc_next", "b"))), join_type="left")
        .where(exp.and_(is_null(col("user_id", "b")),
                        exp.GTE(this=col("sc_j", "a"), expression=exp.Literal.number(1))))
    )
    return comp.add_cte("entered", came)


def trend_select(store: EventStore, rule: Any, segment: str | None,
                 instants: list[dt.datetime], dialect: str) -> exp.Select:
    """Rows ``sc_j, members, entered, exited`` for the points ``j = 1..n`` that have any
    (``instants[0]`` is ``T_0``, one step before the first point)."""
    tree = target_tree(store, rule, segment)
    comp = compiler(store, instants[0], dialect)
    one_pass = trend_pass.plan(comp, tree, segment, instants)
    if one_pass is not None:
        return comp.finish(trend_pass.points_select(comp, one_pass))
    pts = stacked_members(comp, tree, segment, instants)
    now, prev = exp.column("user_id", table="a"), exp.column("user_id", table="b")
    j = exp.Coalesce(this=exp.column("sc_j", table="a"),
                     expressions=[exp.column("sc_next", table="b")])
    on = exp.and_(
        exp.EQ(this=exp.column("user_id", table="a"), expression=exp.column("user_id", table="b")),
        exp.EQ(this=exp.column("sc_j", table="a"), expression=exp.column("sc_next", table="b")),
    )
    inner = (
        exp.select(
            exp.alias_(j, ident("sc_j")),
            exp.alias_(flag(not_null(now.copy())), ident("m")),
            exp.alias_(flag(exp.and_(not_null(now.copy()), is_null(prev.copy()))), ident("en")),
            exp.alias_(flag(exp.and_(is_null(now.copy()), not_null(prev.copy()))), ident("ex")),
        )
        .from_(table(pts, "a"))
        .join(table(pts, "b"), on=on, join_type="full")
    )
    outer = (
        exp.select(
            col("sc_j"),
            exp.alias_(exp.Sum(this=col("m")), ident("members")),
            exp.alias_(exp.Sum(this=col("en")), ident("entered")),
            exp.alias_(exp.Sum(this=col("ex")), ident("exited")),
        )
        .from_(inner.subquery("c"))
        .where(exp.and_(
            exp.GTE(this=col("sc_j"), expression=exp.Literal.number(1)),
            exp.LT(this=col("sc_j"), expression=exp.Literal.number(len(instants))),
        ))
        .group_by(col("sc_j"))
    )
    return comp.finish(outer)


def changes_select(store: EventStore, rule: Any, segment: str | None, prev: dt.datetime,
                   now: dt.datetime, which: str, dialect: str) -> exp.Select:
    """The users who ``entered`` (members at ``now``, not at ``prev``), ``exited`` (the
    reverse) or the ``members`` at ``now``, sorted."""
    if which not in ("entered", "exited", "members"):
        raise UsageError(f"bad list {which!r}: use entered, exited or members")
    tree = target_tree(store, rule, segment)
    comp = compiler(store, now, dialect)
    cur = comp.target(tree, segment)
    if which == "members":
        return comp.query(cur)
    old = comp.at(prev).target(tree, segment)
    keep, drop = (cur, old) if which == "entered" else (old, cur)
    sel = (
        exp.select(exp.column("user_id", table="k"))
        .from_(table(keep, "k"))
        .join(table(drop, "x"),
              on=exp.EQ(this=exp.column("user_id", table="x"),
                        expression=exp.column("user_id", table="k")),
              join_type="left")
        .where(is_null(exp.column("user_id", table="x")))
        .order_by(exp.column("user_id", table="k"))
    )
    return comp.finish(sel)
