"""Overlap in SQL: per membership pattern of 2-5 segments, the number of users.

Sizes, the union and the pairwise intersections follow from these rows
(``segcore.analytics.overlap.overlap_report`` shapes both engines' rows).
"""

from __future__ import annotations

import datetime as dt

from sqlglot import exp

from segcore.engine.rules import to_tree
from segcore.engine.sql.analytics.base import compiler, count_star, table, union_all
from segcore.engine.sql.compiler import col, ident
from segcore.store.events import EventStore


def overlap_select(store: EventStore, items: list[tuple[str, bool]], T: dt.datetime,
                   dialect: str) -> exp.Select:
    """Rows ``sc_f0..sc_fk`` (0/1: in item i) and ``n``; ``items`` are ``(text, saved)``:
    a saved segment's name, or rule text."""
    comp = compiler(store, T, dialect)
    k = len(items)
    parts = []
    for i, (text, saved) in enumerate(items):  # ok-loop: at most five segments
        cte = comp.segment(text) if saved else comp.members(to_tree(store, text))
        flags = [exp.alias_(exp.Literal.number(int(i == x)), ident(f"sc_f{x}")) for x in range(k)]
        parts.append(exp.select(col("user_id"), *flags).from_(table(cte)))
    stacked = comp.add_cte("stack", union_all(parts))
    keys = [col(f"sc_f{x}") for x in range(k)]
    per_user = (
        exp.select(col("user_id"),
                   *[exp.alias_(exp.Max(this=c.copy()), ident(c.name)) for c in keys])
        .from_(table(stacked))
        .group_by(col("user_id"))
    )
    return comp.finish(
        exp.select(*keys, count_star("n")).from_(per_user.subquery("p")).group_by(*keys)
    )
