"""Small per-dialect pieces of SQL: literals, casts, functions and table sources.

Everything here returns sqlglot expression nodes; user text only ever enters
through ``exp.Literal.string`` or quoted identifiers, and sqlglot escapes it for
the dialect when the tree is printed.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from sqlglot import exp

from segcore.errors import UsageError

DIALECTS = ("duckdb", "spark", "clickhouse", "bigquery", "snowflake", "postgres", "trino")

# dialects whose LIKE treats a backslash as an escape character by default
_LIKE_BACKSLASH = ("spark", "clickhouse", "postgres", "bigquery")


def check_dialect(dialect: str) -> str:
    """The lower-cased dialect name, or UsageError listing the supported ones."""
    d = str(dialect).lower()
    if d not in DIALECTS:
        raise UsageError(f"unknown SQL dialect {dialect!r} (expected one of {', '.join(DIALECTS)})")
    return d


def dtype(name: str, d: str) -> exp.DataType:
    """A sqlglot data type for a rule-language type name in dialect ``d``."""
    if d == "clickhouse":
        ch = {
            "string": "Nullable(String)",
            "int": "Nullable(Int64)",
            "float": "Nullable(Float64)",
            "bool": "Nullable(Bool)",
            "date": "Nullable(Date32)",
            "timestamp": "Nullable(DateTime64(6, 'UTC'))",
            "list": "Array(String)",
            "null": "Nullable(String)",
        }[name]
        return exp.DataType.build(ch, dialect="clickhouse")
    generic = {
        "string": "VARCHAR",
        "int": "BIGINT",
        "float": "DOUBLE",
        "bool": "BOOLEAN",
        "date": "DATE",
        "timestamp": "TIMESTAMPTZ",
        "list": "ARRAY<VARCHAR>",
        "null": "VARCHAR",
    }[name]
    return exp.DataType.build(generic)


def typed_null(name: str, d: str) -> exp.Expression:
    """``CAST(NULL AS <type>)`` (ClickHouse lists: ``[]``, with a NULL flag beside it)."""
    if name == "list" and d == "clickhouse":
        return _fn("emptyArrayString")
    return exp.Cast(this=exp.null(), to=dtype(name, d))


def _fn(name: str, *args: exp.Expression) -> exp.Expression:
    return exp.Anonymous(this=name, expressions=list(args))


def ts_text(value: dt.datetime) -> str:
    """``YYYY-MM-DD HH:MM:SS.ffffff`` of an instant in UTC."""
    if value.tzinfo is not None:
        value = value.astimezone(dt.timezone.utc).replace(tzinfo=None)
    return value.strftime("%Y-%m-%d %H:%M:%S.%f")


def timestamp_literal(value: dt.datetime, d: str) -> exp.Expression:
    """A UTC instant as a timestamp literal that does not depend on the session time zone."""
    text = ts_text(value)
    if d == "clickhouse":
        return _fn(
            "toDateTime64",
            exp.Literal.string(text),
            exp.Literal.number(6),
            exp.Literal.string("UTC"),
        )
    if d in ("duckdb", "spark", "postgres", "snowflake"):
        text += "+00:00"
    elif d == "trino":
        text += " UTC"
    return exp.Cast(this=exp.Literal.string(text), to=dtype("timestamp", d))


def date_literal(value: dt.date, d: str) -> exp.Expression:
    """A date literal."""
    if d == "clickhouse":
        return _fn("toDate32", exp.Literal.string(value.isoformat()))
    return exp.Cast(this=exp.Literal.string(value.isoformat()), to=dtype("date", d))


def date_to_timestamp(e: exp.Expression, d: str, zone: str = "UTC") -> exp.Expression:
    """A date value as the instant of its midnight in the report ``zone`` (an IANA name),
    with the dialect's own time-zone functions; UTC keeps the plain cast."""
    z = exp.Literal.string(zone)
    if d == "clickhouse":
        return _fn("toDateTime64", e, exp.Literal.number(6), z)
    if zone == "UTC":
        return exp.Cast(this=e, to=dtype("timestamp", d))
    wall = exp.Cast(this=e, to=exp.DataType.build("TIMESTAMP"))  # local midnight, no zone
    if d in ("duckdb", "postgres"):  # timestamp AT TIME ZONE z: that wall time in z
        return exp.Paren(this=exp.AtTimeZone(this=wall, zone=z))
    if d == "spark":  # the session time zone is UTC (segcore.engine.sql.engines)
        return _fn("to_utc_timestamp", wall, z)
    if d == "trino":
        return _fn("with_timezone", wall, z)
    if d == "bigquery":
        return _fn("TIMESTAMP", _fn("DATETIME", e), z)
    if d == "snowflake":
        zero = exp.Literal.number(0)
        parts = [_fn(f, e) for f in ("YEAR", "MONTH", "DAY")]
        return _fn("TIMESTAMP_TZ_FROM_PARTS", *parts, zero, zero, zero, zero, z)
    raise UsageError(f"the {d} dialect has no time-zone conversion here")


def local_date(e: exp.Expression, d: str, zone: str = "UTC") -> exp.Expression:
    """The date of a timestamp (a UTC instant) in the report ``zone``: the day an event
    counts for in a report (docs/rules.md section 2), with the dialect's own functions.
    The SQL reports read the zone from :func:`segcore.lang.dates.current_zone`."""
    z = exp.Literal.string(zone)
    date = exp.DataType.build("DATE")
    if d == "clickhouse":
        return _fn("toDate32", _fn("toTimeZone", e, z))
    if d == "spark":  # the session time zone is UTC
        return _fn("to_date", _fn("from_utc_timestamp", e, z))
    if d == "bigquery":
        return _fn("DATE", e, z)
    if d == "snowflake":
        return exp.Cast(this=_fn("CONVERT_TIMEZONE", z, e), to=date)
    # DuckDB, Postgres, Trino: TIMESTAMPTZ AT TIME ZONE z is the wall time there
    return exp.Cast(this=exp.Paren(this=exp.AtTimeZone(this=e, zone=z)), to=date)


def interval(us: int) -> exp.Expression:
    """An interval of ``us`` microseconds, in the largest unit that divides it."""
    for unit, size in (
        ("DAY", 86_400_000_000),
        ("HOUR", 3_600_000_000),
        ("MINUTE", 60_000_000),
        ("SECOND", 1_000_000),
    ):
        if us % size == 0:
            return exp.Interval(this=exp.Literal.string(str(us // size)), unit=exp.var(unit))
    return exp.Interval(this=exp.Literal.string(str(us)), unit=exp.var("MICROSECOND"))


def epoch_us(e: exp.Expression, d: str) -> exp.Expression:
    """Microseconds since 1970-01-01 UTC of a timestamp (a BIGINT)."""
    if d == "duckdb":
        return _fn("epoch_us", e)
    if d == "clickhouse":
        return _fn("toUnixTimestamp64Micro", e)
    if d == "snowflake":
        return _fn("DATE_PART", exp.var("EPOCH_MICROSECOND"), e)
    if d == "postgres":
        ext = exp.Extract(this=exp.var("EPOCH"), expression=e)
        return exp.Cast(
            this=exp.Mul(this=ext, expression=exp.Literal.number(1_000_000)),
            to=exp.DataType.build("BIGINT"),
        )
    if d == "trino":
        secs = _fn("to_unixtime", e)
        return exp.Cast(
            this=exp.Round(this=exp.Mul(this=secs, expression=exp.Literal.number(1_000_000))),
            to=exp.DataType.build("BIGINT"),
        )
    return _fn("UNIX_MICROS", e)  # spark, bigquery


def int_div(a: exp.Expression, b: exp.Expression, d: str) -> exp.Expression:
    """Integer division of non-negative integers."""
    if d == "clickhouse":
        return _fn("intDiv", a, b)
    return exp.IntDiv(this=a, expression=b)


def lower(e: exp.Expression, d: str) -> exp.Expression:
    return _fn("lowerUTF8", e) if d == "clickhouse" else exp.Lower(this=e)


def upper(e: exp.Expression, d: str) -> exp.Expression:
    return _fn("upperUTF8", e) if d == "clickhouse" else exp.Upper(this=e)


def str_length(e: exp.Expression, d: str) -> exp.Expression:
    """Number of characters (code points)."""
    return _fn("lengthUTF8", e) if d == "clickhouse" else exp.Length(this=e)


def list_length(e: exp.Expression, d: str) -> exp.Expression:
    """Number of elements of a list (NULL list: NULL)."""
    if d == "duckdb":
        return _fn("len", e)
    size = exp.ArraySize(this=e)
    if d == "spark":  # size(NULL) is -1 when ANSI mode is off
        return exp.Case(
            ifs=[exp.If(this=exp.Is(this=e.copy(), expression=exp.null()), true=exp.null())],
            default=size,
        )
    return size


def list_contains(lst: exp.Expression, v: exp.Expression, d: str) -> exp.Expression:
    """Whether list ``lst`` contains ``v`` (the engine's own function: the compiler adds
    the NULL rules of docs/rules.md around it)."""
    if d == "duckdb":
        return _fn("list_contains", lst, v)
    if d == "clickhouse":
        return _fn("has", lst, v)
    if d == "bigquery":
        return exp.In(this=v, unnest=exp.Unnest(expressions=[lst]))
    return exp.ArrayContains(this=lst, expression=v)


def contains(s: exp.Expression, sub: exp.Expression, d: str) -> exp.Expression:
    """Literal substring test (not a regex)."""
    if d == "duckdb":
        return _fn("contains", s, sub)
    return exp.GT(this=exp.StrPosition(this=s, substr=sub), expression=exp.Literal.number(0))


def like_pattern(pattern: str, d: str) -> str:
    """A LIKE pattern in which a backslash is a plain character in dialect ``d``."""
    return pattern.replace("\\", "\\\\") if d in _LIKE_BACKSLASH else pattern


def table_name(name: str) -> exp.Table:
    """A (possibly dotted) table name as a table node, quoting each part when needed."""
    parts = [p for p in str(name).split(".")]
    if not parts or any(not p for p in parts) or len(parts) > 3:
        raise UsageError(
            f"bad table name {name!r}: expected table, schema.table or catalog.schema.table"
        )
    idents = [exp.to_identifier(p) for p in parts]
    kw = dict(zip(("this", "db", "catalog"), reversed(idents), strict=False))
    return exp.Table(**kw)


def parquet_table(files: list[Path], d: str) -> exp.Expression:
    """One or more Parquet files as a table (DuckDB: one read_parquet over the list)."""
    if d == "duckdb":
        arr = exp.Array(expressions=[exp.Literal.string(str(f)) for f in files])
        flag = exp.EQ(this=exp.column("union_by_name"), expression=exp.true())
        return exp.Table(this=_fn("read_parquet", arr, flag))
    if d == "clickhouse":
        assert len(files) == 1
        # file() expands * ? {a,b} {N..M} in a path; '?' matches any one character (the
        # metacharacter itself included), so a store under a folder named x{1,2} is read
        path = str(files[0]).translate({ord(c): "?" for c in "{}*?"})
        return exp.Table(this=_fn("file", exp.Literal.string(path), exp.Literal.string("Parquet")))
    if d == "spark":
        assert len(files) == 1
        return exp.Table(
            this=exp.to_identifier(str(files[0]), quoted=True), db=exp.to_identifier("parquet")
        )
    raise UsageError(
        f"the {d} dialect cannot read Parquet files directly: give table names "
        "(events_table=..., users_table=...)"
    )


def settings(select: exp.Select, d: str) -> exp.Select:
    """Query-level settings the compiled query relies on (ClickHouse: outer joins give NULL)."""
    if d == "clickhouse":
        select.set(
            "settings",
            [
                exp.EQ(this=exp.var("join_use_nulls"), expression=exp.Literal.number(1)),
                exp.EQ(this=exp.var("session_timezone"), expression=exp.Literal.string("UTC")),
            ],
        )
    return select
