"""One small class per SQL dialect: literals, casts, functions and table sources.

:func:`dialect_of` gives the :class:`Dialect` of a name; the compiler and the SQL
analytics call its methods instead of branching on the dialect's name (as sqlglot
and ibis do). Everything returns sqlglot expression nodes; user text only ever
enters through ``exp.Literal.string`` or quoted identifiers, and sqlglot escapes it
for the dialect when the tree is printed.

Where a dialect needs a different formulation, the method's docstring says why
(docs/engines.md, Dialect notes, lists them).
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from sqlglot import exp

from segcore.errors import UsageError

DIALECTS = ("duckdb", "spark", "clickhouse", "bigquery", "snowflake", "postgres", "trino")

_GENERIC_TYPES = {
    "string": "VARCHAR",
    "int": "BIGINT",
    "float": "DOUBLE",
    "bool": "BOOLEAN",
    "date": "DATE",
    "timestamp": "TIMESTAMPTZ",
    "list": "ARRAY<VARCHAR>",
    "null": "VARCHAR",
}


def fn(name: str, *args: exp.Expression) -> exp.Expression:
    """A call of the engine's own function ``name``."""
    return exp.Anonymous(this=name, expressions=list(args))


def ts_text(value: dt.datetime) -> str:
    """``YYYY-MM-DD HH:MM:SS.ffffff`` of an instant in UTC."""
    if value.tzinfo is not None:
        value = value.astimezone(dt.timezone.utc).replace(tzinfo=None)
    return value.strftime("%Y-%m-%d %H:%M:%S.%f")


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


class Dialect:
    """The ANSI-ish defaults; subclasses override what their engine spells differently."""

    name = "generic"
    #: LIKE treats a backslash as an escape character by default
    like_backslash = False
    #: the engine can read the store's Parquet files itself (else: table names)
    reads_parquet = False
    #: lists cannot be NULL (ClickHouse): a NULL flag column travels beside each list
    null_flag_lists = False

    # ------------------------------------------------------------------ types
    def dtype(self, name: str) -> exp.DataType:
        """A sqlglot data type for a rule-language type name."""
        return exp.DataType.build(_GENERIC_TYPES[name])

    def typed_null(self, name: str) -> exp.Expression:
        """``CAST(NULL AS <type>)``."""
        return exp.Cast(this=exp.null(), to=self.dtype(name))

    def wide_int(self) -> exp.DataType:
        """A type where the sum, difference or product of two 64-bit integers is exact."""
        return exp.DataType.build("DECIMAL(38, 0)")

    # ------------------------------------------------------------------ time
    def timestamp_literal(self, value: dt.datetime) -> exp.Expression:
        """A UTC instant as a timestamp literal that does not depend on the session time zone."""
        return exp.Cast(this=exp.Literal.string(ts_text(value)), to=self.dtype("timestamp"))

    def date_literal(self, value: dt.date) -> exp.Expression:
        return exp.Cast(this=exp.Literal.string(value.isoformat()), to=self.dtype("date"))

    def date_to_timestamp(self, e: exp.Expression, zone: str = "UTC") -> exp.Expression:
        """A date value as the instant of its midnight in the report ``zone`` (an IANA
        name), with the dialect's own time-zone functions; UTC keeps the plain cast."""
        if zone == "UTC":
            return exp.Cast(this=e, to=self.dtype("timestamp"))
        return self.local_midnight(e, exp.Literal.string(zone))

    def local_midnight(self, e: exp.Expression, zone: exp.Expression) -> exp.Expression:
        """The instant of a date's midnight in ``zone`` (not UTC). DuckDB, Postgres:
        ``TIMESTAMP AT TIME ZONE z`` reads a wall time in z."""
        wall = exp.Cast(this=e, to=exp.DataType.build("TIMESTAMP"))
        return exp.Paren(this=exp.AtTimeZone(this=wall, zone=zone))

    def local_date(self, e: exp.Expression, zone: str = "UTC") -> exp.Expression:
        """The date of a timestamp (a UTC instant) in the report ``zone``: the day an event
        counts for in a report (docs/rules.md section 2). DuckDB, Postgres, Trino:
        ``TIMESTAMPTZ AT TIME ZONE z`` is the wall time there."""
        z = exp.Literal.string(zone)
        return exp.Cast(this=exp.Paren(this=exp.AtTimeZone(this=e, zone=z)),
                        to=exp.DataType.build("DATE"))

    def add_days(self, d: exp.Expression, n: exp.Expression) -> exp.Expression:
        """A date plus ``n`` days."""
        return exp.Cast(
            this=exp.DateAdd(this=d, expression=n, unit=exp.var("DAY")), to=self.dtype("date")
        )

    def epoch_us(self, e: exp.Expression) -> exp.Expression:
        """Microseconds since 1970-01-01 UTC of a timestamp (a BIGINT)."""
        return fn("UNIX_MICROS", e)

    def day_of(self, ts: exp.Expression) -> exp.Expression:
        """The UTC day number (days since 1970-01-01) of a timestamp: an exact integer
        division of :meth:`epoch_us`, the same on every engine (retention periods; a report
        zone's days: :mod:`segcore.engine.sql.localday`)."""
        us = self.epoch_us(ts)
        return self.floor_div(us, exp.Literal.number(86_400_000_000))

    # ------------------------------------------------------------------ numbers
    def int_div(self, a: exp.Expression, b: exp.Expression) -> exp.Expression:
        """Integer division of non-negative integers."""
        return exp.IntDiv(this=a, expression=b)

    def floor_div(self, a: exp.Expression, b: exp.Expression) -> exp.Expression:
        """Floor division of a (possibly negative) integer by a positive one, in integers:
        ``(a - ((a % b) + b) % b)`` is a multiple of ``b``, so any integer division is exact."""
        rem = exp.Mod(this=exp.paren(exp.Add(
            this=exp.paren(exp.Mod(this=exp.paren(a.copy()), expression=b.copy())),
            expression=b.copy())), expression=b.copy())
        down = exp.paren(exp.Sub(this=exp.paren(a), expression=exp.paren(rem)))
        return self.int_div(down, b)

    # ------------------------------------------------------------------ strings
    def lower(self, e: exp.Expression) -> exp.Expression:
        return exp.Lower(this=e)

    def upper(self, e: exp.Expression) -> exp.Expression:
        return exp.Upper(this=e)

    def str_length(self, e: exp.Expression) -> exp.Expression:
        """Number of characters (code points)."""
        return exp.Length(this=e)

    def contains(self, s: exp.Expression, sub: exp.Expression) -> exp.Expression:
        """Literal substring test (not a regex)."""
        return exp.GT(this=exp.StrPosition(this=s, substr=sub), expression=exp.Literal.number(0))

    def like_pattern(self, pattern: str) -> str:
        """A LIKE pattern in which a backslash is a plain character."""
        return pattern.replace("\\", "\\\\") if self.like_backslash else pattern

    # ------------------------------------------------------------------ lists
    def list_length(self, e: exp.Expression) -> exp.Expression:
        """Number of elements of a list (NULL list: NULL)."""
        return exp.ArraySize(this=e)

    def list_contains(self, lst: exp.Expression, v: exp.Expression) -> exp.Expression:
        """Whether list ``lst`` contains ``v`` (the engine's own function: the compiler adds
        the NULL rules of docs/rules.md around it)."""
        return exp.ArrayContains(this=lst, expression=v)

    def contains_is_null_aware(self) -> bool:
        """True when the engine's list test ignores NULL elements (no COALESCE needed)."""
        return False

    def explode(self, lst: exp.Expression) -> exp.Expression:
        """One row per element of a list, as a SELECT-list function."""
        return exp.Explode(this=lst)

    # ------------------------------------------------------------------ sources
    def parquet_table(self, files: list[Path]) -> exp.Expression:
        """One or more Parquet files as a table."""
        raise UsageError(
            f"the {self.name} dialect cannot read Parquet files directly: give table names "
            "(events_table=..., users_table=...)"
        )

    def settings(self, select: exp.Select) -> exp.Select:
        """Query-level settings the compiled query relies on."""
        return select

    def sql(self, e: exp.Expression) -> str:
        """The SQL text of a tree in this dialect."""
        return e.sql(dialect=self.name, pretty=True)


class DuckDB(Dialect):
    name = "duckdb"
    reads_parquet = True

    def dtype(self, name: str) -> exp.DataType:
        return exp.DataType.build(_GENERIC_TYPES[name], dialect="duckdb")

    def timestamp_literal(self, value: dt.datetime) -> exp.Expression:
        return exp.Cast(
            this=exp.Literal.string(ts_text(value) + "+00:00"), to=self.dtype("timestamp")
        )

    def add_days(self, d: exp.Expression, n: exp.Expression) -> exp.Expression:
        return exp.paren(exp.Add(this=d, expression=n), copy=False)

    def epoch_us(self, e: exp.Expression) -> exp.Expression:
        return fn("epoch_us", e)

    def floor_div(self, a: exp.Expression, b: exp.Expression) -> exp.Expression:
        """DuckDB's ``//`` on integers floors (exact, no float)."""
        return exp.IntDiv(this=exp.paren(a), expression=b)

    def list_length(self, e: exp.Expression) -> exp.Expression:
        return fn("len", e)

    def list_contains(self, lst: exp.Expression, v: exp.Expression) -> exp.Expression:
        return fn("list_contains", lst, v)

    def contains_is_null_aware(self) -> bool:
        return True

    def contains(self, s: exp.Expression, sub: exp.Expression) -> exp.Expression:
        return fn("contains", s, sub)

    def explode(self, lst: exp.Expression) -> exp.Expression:
        return fn("unnest", lst)

    def parquet_table(self, files: list[Path]) -> exp.Expression:
        """DuckDB: one ``read_parquet`` over the list, columns unified by name."""
        arr = exp.Array(expressions=[exp.Literal.string(str(f)) for f in files])
        flag = exp.EQ(this=exp.column("union_by_name"), expression=exp.true())
        return exp.Table(this=fn("read_parquet", arr, flag))


class ClickHouse(Dialect):
    """ClickHouse: Nullable types, no NULL arrays (a NULL flag beside each list),
    ``join_use_nulls`` for outer joins, its own UTF-8 string functions."""

    name = "clickhouse"
    like_backslash = True
    reads_parquet = True
    null_flag_lists = True
    _TYPES = {
        "string": "Nullable(String)",
        "int": "Nullable(Int64)",
        "float": "Nullable(Float64)",
        "bool": "Nullable(Bool)",
        "date": "Nullable(Date32)",
        "timestamp": "Nullable(DateTime64(6, 'UTC'))",
        "list": "Array(String)",
        "null": "Nullable(String)",
    }

    def dtype(self, name: str) -> exp.DataType:
        return exp.DataType.build(self._TYPES[name], dialect="clickhouse")

    def typed_null(self, name: str) -> exp.Expression:
        """Lists: ``[]`` (with a NULL flag beside it)."""
        if name == "list":
            return fn("emptyArrayString")
        return super().typed_null(name)

    def wide_int(self) -> exp.DataType:
        """Int128 (ClickHouse's decimal casts throw on overflow)."""
        return exp.DataType.build("INT128")

    def timestamp_literal(self, value: dt.datetime) -> exp.Expression:
        return fn(
            "toDateTime64",
            exp.Literal.string(ts_text(value)),
            exp.Literal.number(6),
            exp.Literal.string("UTC"),
        )

    def date_literal(self, value: dt.date) -> exp.Expression:
        return fn("toDate32", exp.Literal.string(value.isoformat()))

    def date_to_timestamp(self, e: exp.Expression, zone: str = "UTC") -> exp.Expression:
        return fn("toDateTime64", e, exp.Literal.number(6), exp.Literal.string(zone))

    def local_date(self, e: exp.Expression, zone: str = "UTC") -> exp.Expression:
        return fn("toDate32", fn("toTimeZone", e, exp.Literal.string(zone)))

    def add_days(self, d: exp.Expression, n: exp.Expression) -> exp.Expression:
        return fn("addDays", d, n)

    def epoch_us(self, e: exp.Expression) -> exp.Expression:
        return fn("toUnixTimestamp64Micro", e)

    def int_div(self, a: exp.Expression, b: exp.Expression) -> exp.Expression:
        return fn("intDiv", a, b)

    def lower(self, e: exp.Expression) -> exp.Expression:
        return fn("lowerUTF8", e)

    def upper(self, e: exp.Expression) -> exp.Expression:
        return fn("upperUTF8", e)

    def str_length(self, e: exp.Expression) -> exp.Expression:
        return fn("lengthUTF8", e)

    def list_contains(self, lst: exp.Expression, v: exp.Expression) -> exp.Expression:
        return fn("has", lst, v)

    def contains_is_null_aware(self) -> bool:
        return True

    def explode(self, lst: exp.Expression) -> exp.Expression:
        return fn("arrayJoin", lst)

    def parquet_table(self, files: list[Path]) -> exp.Expression:
        """``file(path, 'Parquet')``; one file per table (the compiler unions them)."""
        assert len(files) == 1
        # file() expands * ? {a,b} {N..M} in a path; '?' matches any one character (the
        # metacharacter itself included), so a store under a folder named x{1,2} is read
        path = str(files[0]).translate({ord(c): "?" for c in "{}*?"})
        return exp.Table(this=fn("file", exp.Literal.string(path), exp.Literal.string("Parquet")))

    def settings(self, select: exp.Select) -> exp.Select:
        """Outer joins give NULL (``join_use_nulls``), and the session is in UTC."""
        select.set(
            "settings",
            [
                exp.EQ(this=exp.var("join_use_nulls"), expression=exp.Literal.number(1)),
                exp.EQ(this=exp.var("session_timezone"), expression=exp.Literal.string("UTC")),
            ],
        )
        return select


class Spark(Dialect):
    name = "spark"
    like_backslash = True
    reads_parquet = True

    def timestamp_literal(self, value: dt.datetime) -> exp.Expression:
        return exp.Cast(
            this=exp.Literal.string(ts_text(value) + "+00:00"), to=self.dtype("timestamp")
        )

    def local_midnight(self, e: exp.Expression, zone: exp.Expression) -> exp.Expression:
        """The session time zone is UTC (segcore.engine.sql.engines)."""
        return fn("to_utc_timestamp", exp.Cast(this=e, to=exp.DataType.build("TIMESTAMP")), zone)

    def local_date(self, e: exp.Expression, zone: str = "UTC") -> exp.Expression:
        return fn("to_date", fn("from_utc_timestamp", e, exp.Literal.string(zone)))

    def add_days(self, d: exp.Expression, n: exp.Expression) -> exp.Expression:
        return fn("date_add", d, exp.Cast(this=n, to=exp.DataType.build("INT")))

    def list_length(self, e: exp.Expression) -> exp.Expression:
        """``size(NULL)`` is -1 when ANSI mode is off: NULL stays NULL."""
        return exp.Case(
            ifs=[exp.If(this=exp.Is(this=e.copy(), expression=exp.null()), true=exp.null())],
            default=exp.ArraySize(this=e),
        )

    def parquet_table(self, files: list[Path]) -> exp.Expression:
        """``parquet.`path```; one file per table (the compiler unions them)."""
        assert len(files) == 1
        return exp.Table(
            this=exp.to_identifier(str(files[0]), quoted=True), db=exp.to_identifier("parquet")
        )


class BigQuery(Dialect):
    name = "bigquery"
    like_backslash = True

    def local_midnight(self, e: exp.Expression, zone: exp.Expression) -> exp.Expression:
        return fn("TIMESTAMP", fn("DATETIME", e), zone)

    def local_date(self, e: exp.Expression, zone: str = "UTC") -> exp.Expression:
        return fn("DATE", e, exp.Literal.string(zone))

    def list_contains(self, lst: exp.Expression, v: exp.Expression) -> exp.Expression:
        return exp.In(this=v, unnest=exp.Unnest(expressions=[lst]))


class Snowflake(Dialect):
    name = "snowflake"

    def timestamp_literal(self, value: dt.datetime) -> exp.Expression:
        return exp.Cast(
            this=exp.Literal.string(ts_text(value) + "+00:00"), to=self.dtype("timestamp")
        )

    def local_midnight(self, e: exp.Expression, zone: exp.Expression) -> exp.Expression:
        zero = exp.Literal.number(0)
        parts = [fn(f, e) for f in ("YEAR", "MONTH", "DAY")]
        return fn("TIMESTAMP_TZ_FROM_PARTS", *parts, zero, zero, zero, zero, zone)

    def local_date(self, e: exp.Expression, zone: str = "UTC") -> exp.Expression:
        return exp.Cast(this=fn("CONVERT_TIMEZONE", exp.Literal.string(zone), e),
                        to=exp.DataType.build("DATE"))

    def epoch_us(self, e: exp.Expression) -> exp.Expression:
        return fn("DATE_PART", exp.var("EPOCH_MICROSECOND"), e)


class Postgres(Dialect):
    name = "postgres"
    like_backslash = True

    def timestamp_literal(self, value: dt.datetime) -> exp.Expression:
        return exp.Cast(
            this=exp.Literal.string(ts_text(value) + "+00:00"), to=self.dtype("timestamp")
        )

    def epoch_us(self, e: exp.Expression) -> exp.Expression:
        ext = exp.Extract(this=exp.var("EPOCH"), expression=e)
        return exp.Cast(
            this=exp.Mul(this=ext, expression=exp.Literal.number(1_000_000)),
            to=exp.DataType.build("BIGINT"),
        )


class Trino(Dialect):
    name = "trino"

    def timestamp_literal(self, value: dt.datetime) -> exp.Expression:
        return exp.Cast(
            this=exp.Literal.string(ts_text(value) + " UTC"), to=self.dtype("timestamp")
        )

    def local_midnight(self, e: exp.Expression, zone: exp.Expression) -> exp.Expression:
        return fn("with_timezone", exp.Cast(this=e, to=exp.DataType.build("TIMESTAMP")), zone)

    def epoch_us(self, e: exp.Expression) -> exp.Expression:
        secs = fn("to_unixtime", e)
        return exp.Cast(
            this=exp.Round(this=exp.Mul(this=secs, expression=exp.Literal.number(1_000_000))),
            to=exp.DataType.build("BIGINT"),
        )


_CLASSES: tuple[type[Dialect], ...] = (
    DuckDB, Spark, ClickHouse, BigQuery, Snowflake, Postgres, Trino,
)
_BY_NAME = {c.name: c() for c in _CLASSES}


def check_dialect(dialect: str) -> str:
    """The lower-cased dialect name, or UsageError listing the supported ones."""
    d = str(dialect).lower()
    if d not in _BY_NAME:
        raise UsageError(f"unknown SQL dialect {dialect!r} (expected one of {', '.join(DIALECTS)})")
    return d


def dialect_of(dialect: str | Dialect) -> Dialect:
    """The :class:`Dialect` of a name (UsageError for an unknown one)."""
    if isinstance(dialect, Dialect):
        return dialect
    return _BY_NAME[check_dialect(dialect)]
