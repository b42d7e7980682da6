"""Reachability in SQL: per combination of channel flags, the number of members.

Every per-channel count, ``any``, ``none`` and the combinations follow from these
rows (``segcore.analytics.reach.reach_report`` shapes both engines' rows).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlglot import exp

from segcore.engine.plan import tree_columns
from segcore.engine.sql.analytics.base import compiler, count_star, flag, table, target_tree
from segcore.engine.sql.compiler import col, ident
from segcore.lang.tree import Node
from segcore.store.events import EventStore


def _flags(comp, trees: dict[str, Node]) -> list[exp.Expression]:
    return [
        exp.alias_(flag(exp.paren(comp.value(t, "user", {}))), ident(f"sc_c{i}"))
        for i, t in enumerate(trees.values())
    ]


def reach_select(store: EventStore, rule: Any, segment: str | None, T: dt.datetime,
                 channels: dict[str, Node], dialect: str) -> exp.Select:
    """Rows ``sc_c0..sc_ck`` (0/1 per valid channel, in order) and ``n`` (members)."""
    tree = target_tree(store, rule, segment)
    comp = compiler(store, T, dialect)
    m = comp.target(tree, segment)
    if not channels:
        return comp.finish(exp.select(count_star("n")).from_(table(m)))
    attrs = sorted(set().union(*(tree_columns(t) for t in channels.values()))
                   & set(comp.schema.users) - {"user_id"})
    inner = comp.with_attributes(m, attrs, _flags(comp, channels))
    keys = [col(f"sc_c{i}") for i in range(len(channels))]
    return comp.finish(
        exp.select(*keys, count_star("n")).from_(inner.subquery("f")).group_by(*keys)
    )


def reachable_select(store: EventStore, rule: Any, segment: str | None, T: dt.datetime,
                     channel: Node, contact: list[str], dialect: str) -> exp.Select:
    """The members a channel reaches: ``user_id`` and the ``contact`` columns."""
    tree = target_tree(store, rule, segment)
    comp = compiler(store, T, dialect)
    m = comp.target(tree, segment)
    attrs = sorted((tree_columns(channel) | set(contact)) - {"user_id"})
    sel = comp.with_attributes(
        m, attrs,
        [exp.alias_(exp.column("user_id", table="u"), ident("user_id")),
         *[exp.alias_(exp.column(c, table="a", quoted=True), ident(c)) for c in contact]],
    )
    sel = sel.where(exp.Coalesce(this=exp.paren(comp.value(channel, "user", {})),
                                 expressions=[exp.false()]))
    return comp.finish(sel.order_by(exp.column("user_id", table="u")))
