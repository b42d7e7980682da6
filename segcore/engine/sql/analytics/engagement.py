"""Engagement in SQL: members, and members with each engagement term, per instant.

The terms are rule-language behaviours (``did('*', within => '7 days')``...), built by
``segcore.analytics.engagement.engagement_terms`` for both engines, so their window
rules are the compiler's own.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlglot import exp

from segcore.engine.sql.analytics.base import compiler, table, target_tree, union_all
from segcore.engine.sql.compiler import ident
from segcore.lang.tree import Node
from segcore.store.events import EventStore


def engagement_select(store: EventStore, rule: Any, segment: str | None,
                      instants: list[dt.datetime], terms: dict[str, Node],
                      dialect: str) -> exp.Select:
    """Rows ``sc_j, members, <term>...`` (members with the term), one per instant."""
    tree = target_tree(store, rule, segment)
    comp = compiler(store, instants[0], dialect)
    rows = []
    for j, T in enumerate(instants):  # ok-loop: one query part per instant
        at = comp.at(T)
        m = at.target(tree, segment)
        sel = exp.select(
            exp.alias_(exp.Literal.number(j), ident("sc_j")),
            exp.alias_(exp.Count(this=exp.column("user_id", table="m")), ident("members")),
        ).from_(table(m, "m"))
        for i, (name, node) in enumerate(terms.items()):  # ok-loop: two or three terms
            alias = f"t{i}"
            sel = sel.select(
                exp.alias_(exp.Count(this=exp.column("user_id", table=alias)), ident(name)),
                copy=False,
            ).join(
                table(at.members(node), alias),
                on=exp.EQ(this=exp.column("user_id", table=alias),
                          expression=exp.column("user_id", table="m")),
                join_type="left", copy=False,
            )
        rows.append(sel)
    return comp.finish(exp.select(exp.Star()).from_(union_all(rows).subquery("e")))
