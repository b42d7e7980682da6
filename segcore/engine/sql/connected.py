"""Connected sources (``<home>/sources.toml``) as SQL: one projection subquery per table.

:func:`source_relation` reads the source where it lives, with the engine's own reader,
and projects the columns the compiler asks for in the store's terms, the same as the
Polars engine's :func:`segcore.store.sources.shaped`:

- the column mapping (store column <- source column) and the constant event name;
- ``user_id`` / ``event_id`` under the id rule of :mod:`segcore.store.ids` (:func:`id_sql`);
- ``ts`` as a UTC timestamp, a naive one (or a date) taken as UTC (the engines run in UTC);
- every other column cast to its type in the store's schema (e.g. hive partition values).

What each engine reads (docs/engines.md, "Connected sources"):

- duckdb: Parquet through ``read_parquet(glob, hive_partitioning, union_by_name)``; a DuckDB
  table through ``ATTACH 'file' AS sc_db_<hash> (READ_ONLY)`` (:func:`attach_statements`,
  run by ``segcore.engine.sql.engines`` before the query);
- clickhouse: Parquet through ``file(glob, 'Parquet')``;
- spark: Parquet through ``parquet.`path``` (a folder: partition discovery), a Spark table.

A source an engine cannot read is one clear line naming the engine and the source kind.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import polars as pl
from sqlglot import exp

from segcore.engine.sql import dialects as D
from segcore.errors import UsageError
from segcore.store.ids import INTEGRAL_DECIMAL
from segcore.store.sources import Source, parquet_files, raw_schema, resolve_path, table_expr

#: DuckDB database files attached by the queries compiled in this process: alias -> path
ATTACHED: dict[str, str] = {}
_MAX_WHOLE = exp.Literal.number("9223372036854775808.0")  # 2**63, as the Polars rule


def _q(name: str) -> exp.Identifier:
    return exp.to_identifier(name, quoted=True)


def _s(text: str) -> exp.Literal:
    return exp.Literal.string(text)


def cannot_read(engine: str, source: Source) -> UsageError:
    """One line: ``engine`` has no reader for the kind of ``source``."""
    kind = ("a Parquet dataset" if source.parquet is not None
            else "a Spark table" if source.spark_table is not None else "a DuckDB database file")
    readers = {"a Parquet dataset": "polars, duckdb, clickhouse or spark",
               "a DuckDB database file": "polars or duckdb",
               "a Spark table": "spark"}[kind]
    return UsageError(
        f"the {engine} engine cannot read {kind} (the {source.kind} source, {source.where}): "
        f"the {readers} engine reads it"
    )


# --------------------------------------------------------------------------- readers
def _parquet_glob(home: Path, source: Source) -> str:
    """The source's path as one glob over its Parquet files (a folder: ``folder/**/*.parquet``)."""
    path = resolve_path(home, source.parquet or "")
    return str(Path(path) / "**" / "*.parquet") if Path(path).is_dir() else path


def _spark_path(home: Path, source: Source) -> str:
    """Spark discovers hive partitions under a folder: ``root/**/*.parquet`` is read as
    ``root`` (Hadoop globs do not recurse)."""
    path = resolve_path(home, source.parquet or "")
    root, sep, tail = path.partition("/**/")
    if sep and tail == "*.parquet" and "*" not in root and "?" not in root:
        return root
    return path


def attach_alias(path: str) -> str:
    """The alias a DuckDB database file is attached under (and remembered in ATTACHED)."""
    alias = "sc_db_" + hashlib.sha1(path.encode()).hexdigest()[:12]
    ATTACHED[alias] = path
    return alias


def attach_statements(sql: str) -> list[str]:
    """``ATTACH 'file' AS alias (READ_ONLY)`` (a sqlglot tree) for each database file a
    DuckDB query reads."""
    out = []
    for alias, path in ATTACHED.items():  # ok-loop: a few attached files
        if alias in sql:
            stmt = exp.Attach(this=exp.alias_(_s(path), alias), exists=False,
                              expressions=[exp.AttachOption(this=exp.var("READ_ONLY"))])
            out.append(stmt.sql(dialect="duckdb"))
    return out


def reader(home: Path, source: Source, dialect: D.Dialect) -> exp.Expression:
    """The source as a table of the engine (``cannot_read`` where it has no reader)."""
    name = dialect.name
    if source.parquet is not None:
        parquet_files(home, source)  # none is one clear error
        if isinstance(dialect, D.DuckDB):
            opts = [exp.EQ(this=exp.column(o), expression=exp.true())
                    for o in ("hive_partitioning", "union_by_name")]
            return exp.Table(this=D.fn("read_parquet", _s(_parquet_glob(home, source)), *opts))
        if isinstance(dialect, D.ClickHouse):
            return exp.Table(this=D.fn("file", _s(_parquet_glob(home, source)), _s("Parquet")))
        if isinstance(dialect, D.Spark):
            return exp.Table(this=_q(_spark_path(home, source)), db=exp.to_identifier("parquet"))
    elif source.duckdb is not None:
        if isinstance(dialect, D.DuckDB):
            path = resolve_path(home, source.duckdb)
            if not Path(path).is_file():
                raise UsageError(f"the {source.kind} source: DuckDB file {path!r} not found")
            t = table_expr(source.table or "")
            return exp.Table(this=t.this, db=t.args.get("db") or exp.to_identifier("main"),
                             catalog=exp.to_identifier(attach_alias(path)))
    elif isinstance(dialect, D.Spark):
        return table_expr(source.spark_table or "")
    raise cannot_read(name, source)


# --------------------------------------------------------------------------- columns
def id_sql(e: exp.Expression, dtype: pl.DataType, dialect: D.Dialect) -> exp.Expression:
    """``e`` as id text under the rule of :mod:`segcore.store.ids` (NULL for no id)."""
    text_type = dialect.dtype("string")
    if dtype.is_float():
        whole = exp.and_(
            exp.EQ(this=e.copy(), expression=exp.Floor(this=e.copy())),
            exp.LT(this=exp.Abs(this=e.copy()), expression=_MAX_WHOLE.copy()),
        )
        as_int = exp.Cast(this=exp.Cast(this=e.copy(), to=dialect.dtype("int")), to=text_type)
        text: exp.Expression = exp.Case(ifs=[exp.If(this=whole, true=as_int)],
                                        default=exp.Cast(this=e.copy(), to=text_type))
    else:
        text = exp.Cast(this=e.copy(), to=text_type)
    for pattern in (r"^\s+", r"\s+$"):  # ok-loop: strip both ends
        text = exp.RegexpReplace(this=text, expression=_s(pattern), replacement=_s(""))
    integral = exp.RegexpLike(this=text.copy(), expression=_s(INTEGRAL_DECIMAL))
    dropped = exp.RegexpReplace(this=text.copy(), expression=_s(r"\.0*$"), replacement=_s(""))
    text = exp.Case(ifs=[exp.If(this=integral, true=dropped)], default=text)
    return exp.Nullif(this=text, expression=_s(""))


def ts_sql(e: exp.Expression, dtype: pl.DataType, dialect: D.Dialect) -> exp.Expression:
    """``e`` as a UTC timestamp: an aware one converted, a naive one or a date taken as UTC
    (the session time zone of every engine is UTC), text parsed."""
    if dtype == pl.String and isinstance(dialect, D.ClickHouse):
        return D.fn("parseDateTime64BestEffortOrNull", e, exp.Literal.number(6), _s("UTC"))
    if not (isinstance(dtype, pl.Datetime) or dtype in (pl.Date, pl.String)):
        raise UsageError(f"the events source's ts column is {dtype}: expected a timestamp")
    return exp.Cast(this=e, to=dialect.dtype("timestamp"))


def source_relation(home: Path, source: Source, dialect: D.Dialect, columns: dict[str, str],
                    raw: dict[str, pl.DataType] | None = None) -> exp.Select:
    """``SELECT <columns in the store's terms> FROM <the source>`` (``columns``: name ->
    rule type, as the compiler asks for them; ``raw``: the source's own columns, if known)."""
    table = reader(home, source, dialect)
    raw = raw_schema(home, source) if raw is None else raw
    origin = {c: c for c in raw if c not in set(source.mapping.values()) - set(source.mapping)}
    origin.update(source.mapping)  # store column -> source column
    out = []
    for name, typ in columns.items():  # ok-loop: the columns a query reads
        src = origin.get(name)
        if name == "event" and source.event is not None:
            value: exp.Expression = exp.Cast(this=_s(source.event), to=dialect.dtype("string"))
        elif src is None or src not in raw:
            value = dialect.typed_null(typ)
        elif name in ("user_id", "event_id"):
            value = id_sql(exp.column(_q(src)), raw[src], dialect)
        elif name == "ts" and source.kind == "events":
            value = ts_sql(exp.column(_q(src)), raw[src], dialect)
        elif typ == "list":
            value = exp.column(_q(src))
        else:
            value = exp.Cast(this=exp.column(_q(src)), to=dialect.dtype(typ))
        out.append(exp.alias_(value, _q(name)))
    return exp.select(*out).from_(table)


__all__ = ["ATTACHED", "attach_statements", "cannot_read", "id_sql", "reader",
           "source_relation", "ts_sql"]
