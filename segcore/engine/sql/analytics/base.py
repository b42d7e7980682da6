"""Shared pieces of the SQL analytics: a compiler for a store, small SQL helpers."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlglot import exp

from segcore.engine.rules import schema_of, to_tree
from segcore.engine.sql.compiler import Compiler, ident
from segcore.engine.sql.dialects import check_dialect
from segcore.errors import RuleError
from segcore.lang.tree import Node
from segcore.store.events import EventStore


def compiler(store: EventStore, T: dt.datetime, dialect: str) -> Compiler:
    """A compiler for ``store`` at instant ``T`` (reading the store's Parquet files)."""
    return Compiler(store, T, check_dialect(dialect), schema_of(store, check_names=False))


def target_tree(store: EventStore, rule: Any, segment: str | None) -> Node | None:
    """The tree of a rule (None for a saved segment); RuleError unless exactly one is given."""
    if (rule is None) == (segment is None):
        raise RuleError("give either a rule or a segment name")
    return None if rule is None else to_tree(store, rule)


def table(name: str, alias: str | None = None) -> exp.Table:
    """A CTE as a table, optionally aliased."""
    t = exp.Table(this=exp.to_identifier(name))
    if alias:
        t.set("alias", exp.TableAlias(this=exp.to_identifier(alias)))
    return t


def count_star(alias: str) -> exp.Expression:
    return exp.alias_(exp.Count(this=exp.Star()), ident(alias))


def flag(cond: exp.Expression) -> exp.Expression:
    """1 where ``cond`` is TRUE, else 0 (NULL counts as FALSE)."""
    return exp.Case(ifs=[exp.If(this=cond, true=exp.Literal.number(1))],
                    default=exp.Literal.number(0))


def not_null(e: exp.Expression) -> exp.Expression:
    return exp.Not(this=exp.Is(this=e, expression=exp.null()))


def is_null(e: exp.Expression) -> exp.Expression:
    return exp.Is(this=e, expression=exp.null())


def union_all(parts: list[exp.Select]) -> exp.Expression:
    out: exp.Expression = parts[0]
    for p in parts[1:]:
        out = exp.union(out, p, distinct=False)
    return out


def aliased(source: exp.Expression, alias: str) -> exp.Expression:
    """A table or a query as a FROM item named ``alias``."""
    src = source.copy()
    if isinstance(src, exp.Table):
        src.set("alias", exp.TableAlias(this=exp.to_identifier(alias)))
        return src
    return exp.Subquery(this=src, alias=exp.TableAlias(this=exp.to_identifier(alias)))
