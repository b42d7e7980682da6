"""SQL compilation of rules and saved segments (sqlglot), and in-process SQL engines.

>>> from segcore import Store                                           # doctest: +SKIP
>>> print(compile_sql(Store("data"), "did('charged', within => '30 days')",
...                   dialect="spark", as_of="2026-06-30"))              # doctest: +SKIP
"""

from __future__ import annotations

from typing import Any

from sqlglot import exp

from segcore.engine.sql.dialects import DIALECTS, check_dialect
from segcore.store.events import EventStore

__all__ = ["DIALECTS", "compile_sql", "compile_tree"]


def compile_tree(
    store: EventStore,
    rule: Any = None,
    dialect: str = "duckdb",
    as_of: Any = None,
    *,
    segment: str | None = None,
    events_table: str | None = None,
    users_table: str | None = None,
    tz: str | None = None,
) -> exp.Select:
    """The members query as a sqlglot ``exp.Select`` (see :func:`compile_sql`)."""
    from segcore.lang.dates import report_zone

    if tz is not None:
        with report_zone(tz):
            return compile_tree(store, rule, dialect, as_of, segment=segment,
                                events_table=events_table, users_table=users_table)
    from segcore.engine.rules import schema_of, to_tree
    from segcore.engine.sql.compiler import Compiler
    from segcore.errors import RuleError
    from segcore.lang.dates import resolve_as_of

    d = check_dialect(dialect)
    if (rule is None) == (segment is None):
        raise RuleError("give either a rule or a segment name")
    T = resolve_as_of(as_of)
    schema = schema_of(store, check_names=False)
    comp = Compiler(store, T, d, schema, events_table=events_table, users_table=users_table)
    if segment is not None:
        cte = comp.segment(segment)
    else:
        cte = comp.members(to_tree(store, rule))
    return comp.query(cte)


def compile_sql(
    store: EventStore,
    rule: Any = None,
    dialect: str = "duckdb",
    as_of: Any = None,
    *,
    segment: str | None = None,
    events_table: str | None = None,
    users_table: str | None = None,
    tz: str | None = None,
) -> str:
    """One SQL query returning the members (column ``user_id``) of a rule or segment at T.

    Parameters
    ----------
    store
        The :class:`segcore.Store` (schema, Parquet files, saved segments).
    rule, segment
        Rule text / condition tree / its JSON, or the name of a saved segment (one of them).
    dialect
        One of ``DIALECTS``: duckdb, spark, clickhouse, bigquery, snowflake, postgres, trino.
    as_of
        The instant T (a date means the end of that day in the report zone; None: now).
    tz
        The report time zone (IANA name) of ``today()``, date as-ofs and dates compared
        with instants (local midnights, written with the dialect's own time-zone
        functions); None: the zone in force (:func:`segcore.lang.dates.current_zone`).
    events_table, users_table
        Table names (``schema.table``) to read instead of the store's Parquet files.
        Dialects that cannot read Parquet files default to ``events`` and ``users``.
    """
    q = compile_tree(
        store,
        rule,
        dialect,
        as_of,
        segment=segment,
        events_table=events_table,
        users_table=users_table,
        tz=tz,
    )
    return q.sql(dialect=check_dialect(dialect), pretty=True)
