"""Audience profile in SQL: per attribute, members and all users per value.

The universe at T (``Compiler.universe``) joined to the users' attributes and to
the members gives one row per user; each attribute is then counted per value
(lists: per distinct tag of a user, plus the users with no tag under a NULL
tag). ``segcore.analytics.profile.profile_report`` turns these counts into the
same report as the Polars profile (top values, histogram bins, months, means
and medians: means are sums of value x count, so they may differ from the
Polars mean in the last bits).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlglot import exp

from segcore.engine.sql.analytics.base import (
    compiler,
    count_star,
    flag,
    not_null,
    table,
    target_tree,
    union_all,
)
from segcore.engine.sql.compiler import col, ident
from segcore.store.events import EventStore

SEG, ALL = "__seg", "__all"


def _base(store: EventStore, rule: Any, segment: str | None, T: dt.datetime,
          attrs: list[str], dialect: str, empty_list: str | None = None):
    """A compiler and the CTE of ``user_id, sc_in, <attrs>`` over the universe at T
    (with ``empty_list``: ``sc_empty``, 1 where that list is NULL or empty)."""
    tree = target_tree(store, rule, segment)
    comp = compiler(store, T, dialect)
    m = comp.target(tree, segment)
    extra = []
    if empty_list is not None:
        lst = exp.column(empty_list, table="a", quoted=True)
        length = exp.Coalesce(this=comp.D.list_length(lst.copy()),
                              expressions=[exp.Literal.number(0)])
        extra.append(exp.alias_(flag(exp.or_(
            exp.Is(this=lst, expression=exp.null()),
            exp.EQ(this=length, expression=exp.Literal.number(0)))), ident("sc_empty")))
    rows = comp.with_attributes(
        comp.universe(), attrs,
        [exp.alias_(exp.column("user_id", table="u"), ident("user_id")),
         exp.alias_(flag(not_null(exp.column("user_id", table="s"))), ident("sc_in")),
         *[exp.alias_(exp.column(a, table="a", quoted=True), ident(a)) for a in attrs],
         *extra],
    ).join(table(m, "s"), on=exp.EQ(this=exp.column("user_id", table="s"),
                                    expression=exp.column("user_id", table="u")),
           join_type="left")
    return comp, comp.add_cte("rows", rows)


def _sums() -> list[exp.Expression]:
    return [exp.alias_(exp.Sum(this=col("sc_in")), ident(SEG)), count_star(ALL)]


def counts_select(store: EventStore, rule: Any, segment: str | None, T: dt.datetime,
                  dialect: str) -> exp.Select:
    """One row ``__seg, __all``: members and users in the universe."""
    comp, rows = _base(store, rule, segment, T, [], dialect)
    return comp.finish(exp.select(*_sums()).from_(table(rows)))


def values_select(store: EventStore, rule: Any, segment: str | None, T: dt.datetime,
                  attr: str, dialect: str) -> exp.Select:
    """Rows ``<attr>, __seg, __all`` per value of a (non-list) attribute, NULL included."""
    comp, rows = _base(store, rule, segment, T, [attr], dialect)
    return comp.finish(exp.select(col(attr), *_sums()).from_(table(rows)).group_by(col(attr)))


def tags_select(store: EventStore, rule: Any, segment: str | None, T: dt.datetime,
                attr: str, dialect: str) -> exp.Select:
    """Rows ``<attr>, __seg, __all`` per tag of a list attribute (a user counts once per
    distinct tag), and a NULL tag for the users with a NULL or empty list."""
    comp, rows = _base(store, rule, segment, T, [attr], dialect, empty_list=attr)
    tags = (
        exp.select(col("user_id"), col("sc_in"),
                   exp.alias_(comp.D.explode(col(attr)), ident("sc_tag")))
        .from_(table(rows))
    )
    distinct = (
        exp.select(col("user_id"), col("sc_in"), col("sc_tag"))
        .from_(tags.subquery("t")).where(not_null(col("sc_tag"))).distinct()
    )
    per_tag = (
        exp.select(exp.alias_(col("sc_tag"), ident(attr)), *_sums())
        .from_(distinct.subquery("d")).group_by(col("sc_tag"))
    )
    empty = exp.EQ(this=col("sc_empty"), expression=exp.Literal.number(1))
    none = exp.select(
        exp.alias_(exp.Cast(this=exp.null(), to=comp.D.dtype("string")), ident(attr)), *_sums()
    ).from_(table(rows)).where(empty)
    return comp.finish(exp.select(exp.Star()).from_(union_all([per_tag, none]).subquery("g")))
