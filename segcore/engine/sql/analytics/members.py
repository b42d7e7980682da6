"""Members and member count of a rule or saved segment at one instant."""

from __future__ import annotations

from typing import Any

from sqlglot import exp

from segcore.engine.sql.analytics.base import compiler, count_star, table, target_tree
from segcore.lang.dates import resolve_as_of
from segcore.store.events import EventStore


def members_select(store: EventStore, rule: Any, segment: str | None, as_of: Any,
                   dialect: str) -> exp.Select:
    """``SELECT user_id ... ORDER BY user_id``: the members at ``as_of``."""
    tree = target_tree(store, rule, segment)
    comp = compiler(store, resolve_as_of(as_of), dialect)
    return comp.query(comp.target(tree, segment))


def count_select(store: EventStore, rule: Any, segment: str | None, as_of: Any,
                 dialect: str) -> exp.Select:
    """``SELECT COUNT(*) AS n``: the number of members at ``as_of``."""
    tree = target_tree(store, rule, segment)
    comp = compiler(store, resolve_as_of(as_of), dialect)
    cte = comp.target(tree, segment)
    return comp.finish(exp.select(count_star("n")).from_(table(cte)))
