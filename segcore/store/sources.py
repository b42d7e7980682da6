"""Connected sources: a store's events or users read where they already are, not copied.

``<home>/sources.toml`` names, per table, one of

- a Parquet dataset: a file, a folder (hive-partitioned folders such as ``date=2026-06-01/``
  become columns) or a glob (``lake/events/**/*.parquet``);
- a table of a DuckDB database file;
- a Spark table or view (``spark_table = "db.events"``), read by the Spark engine only;

with the column mapping of ``segcore ingest`` (``map``: store column -> source column) and an
optional constant ``event`` name. The catalog (segments, channels, funnels) stays local::

    [events]
    parquet = "/lake/events/**/*.parquet"
    event = "purchase"            # optional: one event name for every row

    [events.map]
    user_id = "uid"
    ts = "event_time"

    [users]
    duckdb = "/warehouse/crm.duckdb"
    table = "main.customers"

    [users.map]
    user_id = "customer_id"

The source is read as it is at every query: ids follow the id rule of
:mod:`segcore.store.ids`, ``ts`` becomes a UTC timestamp (a naive one is taken as UTC). See
docs/engines.md, "Connected sources".
"""

from __future__ import annotations

import glob as globlib
import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import polars as pl

from segcore.errors import StoreError, UsageError
from segcore.store.files import atomic_path
from segcore.store.ids import id_text
from segcore.store.parquet_schema import file_schema, union_schema

if TYPE_CHECKING:  # sqlglot is imported where a connected source is read: not on every query
    from sqlglot import exp

SOURCES_FILE = "sources.toml"
KINDS = ("events", "users")
Kind = Literal["events", "users"]


@dataclass(frozen=True)
class Source:
    """Where one table (``events`` or ``users``) of a store is read from."""

    kind: Kind
    parquet: str | None = None  # a file, folder or glob
    duckdb: str | None = None  # a DuckDB database file ...
    table: str | None = None  # ... and a table in it
    spark_table: str | None = None  # a Spark table or view (the spark engine only)
    mapping: dict[str, str] = field(default_factory=dict)  # store column -> source column
    event: str | None = None  # one event name for every row (events only)

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise UsageError(f"a source is for events or users, not {self.kind!r}")
        given = [x for x in (self.parquet, self.duckdb, self.spark_table) if x is not None]
        if len(given) != 1:
            raise UsageError(
                f"{self.kind} source: give exactly one of parquet = PATH, duckdb = FILE "
                "(with table = NAME) or spark_table = NAME"
            )
        if self.duckdb is not None and not self.table:
            raise UsageError(f"{self.kind} source: name the table (table = NAME)")
        if self.table is not None and self.duckdb is None:
            raise UsageError(f"{self.kind} source: table = NAME goes with duckdb = FILE")
        for name in (self.table, self.spark_table):  # ok-loop: two names
            if name is not None:
                table_expr(name)  # a bad name is an error now
        if self.event is not None and self.kind != "events":
            raise UsageError("a constant event name applies to the events source only")
        for target, source in self.mapping.items():  # ok-loop: a few mapped columns
            if not target or not source:
                raise UsageError(f"{self.kind} source: bad mapping {target!r} = {source!r}")

    @property
    def where(self) -> str:
        """The source in words, for messages: ``Parquet 'lake/**/*.parquet'``."""
        if self.parquet is not None:
            return f"Parquet {self.parquet!r}"
        if self.spark_table is not None:
            return f"Spark table {self.spark_table!r}"
        return f"DuckDB table {self.table!r} of {self.duckdb!r}"

    def to_toml(self) -> str:
        """This source as a ``[kind]`` TOML section (strings as JSON, which TOML reads)."""
        lines = [f"[{self.kind}]"]
        if self.parquet is not None:
            lines.append(f"parquet = {json.dumps(self.parquet)}")
        if self.duckdb is not None:
            lines.append(f"duckdb = {json.dumps(self.duckdb)}")
            lines.append(f"table = {json.dumps(self.table)}")
        if self.spark_table is not None:
            lines.append(f"spark_table = {json.dumps(self.spark_table)}")
        if self.event is not None:
            lines.append(f"event = {json.dumps(self.event)}")
        if self.mapping:
            lines += ["", f"[{self.kind}.map]"]
            lines += [f"{json.dumps(t)} = {json.dumps(s)}" for t, s in self.mapping.items()]
        return "\n".join(lines) + "\n"


def table_expr(name: str) -> exp.Table:
    """``table``, ``schema.table`` or ``catalog.schema.table`` as a sqlglot table."""
    from sqlglot import exp

    parts = name.split(".")
    if not 1 <= len(parts) <= 3 or not all(p.strip() for p in parts):
        raise UsageError(
            f"bad table name {name!r}: expected table, schema.table or catalog.schema.table"
        )
    idents = [exp.to_identifier(p.strip()) for p in parts]
    return exp.Table(**dict(zip(("this", "db", "catalog"), reversed(idents), strict=False)))


# ---------------------------------------------------------------------- the config file
def sources_path(home: Path) -> Path:
    return Path(home) / SOURCES_FILE


def _parse(kind: str, raw: dict[str, Any], where: Path) -> Source:
    known = {"parquet", "duckdb", "table", "spark_table", "map", "event"}
    unknown = sorted(set(raw) - known)
    if unknown:
        raise UsageError(f"{where}: unknown setting(s) in [{kind}]: {', '.join(unknown)}")
    mapping = raw.get("map", {})
    if not isinstance(mapping, dict) or not all(
        isinstance(v, str) for v in mapping.values()
    ):
        raise UsageError(f"{where}: [{kind}.map] holds store column = \"source column\" pairs")
    return Source(
        kind,  # type: ignore[arg-type]
        parquet=raw.get("parquet"),
        duckdb=raw.get("duckdb"),
        table=raw.get("table"),
        spark_table=raw.get("spark_table"),
        mapping=dict(mapping),
        event=raw.get("event"),
    )


def read_sources(home: Path) -> dict[str, Source]:
    """The connected sources of the store at ``home`` (``{}`` without ``sources.toml``)."""
    path = sources_path(home)
    try:
        text = path.read_text(encoding="utf-8")
    except (FileNotFoundError, NotADirectoryError):  # no file, or no store folder at all
        return {}
    import tomllib  # only a store with connected sources has the file

    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise UsageError(f"{path}: not valid TOML: {exc}") from None
    unknown = sorted(set(raw) - set(KINDS))
    if unknown:
        raise UsageError(f"{path}: unknown section(s) {', '.join(unknown)} (events, users)")
    return {kind: _parse(kind, raw[kind], path) for kind in KINDS if kind in raw}


def write_source(home: Path, source: Source | None, kind: Kind) -> None:
    """Set (or with ``source=None`` remove) the source of ``kind`` in ``sources.toml``."""
    sources = read_sources(home)
    if source is None:
        sources.pop(kind, None)
    else:
        sources[kind] = source
    path = sources_path(home)
    if not sources:
        path.unlink(missing_ok=True)
        return
    Path(home).mkdir(parents=True, exist_ok=True)
    body = "\n".join(sources[k].to_toml() for k in KINDS if k in sources)
    with atomic_path(path, left="the sources are unchanged") as tmp:
        tmp.write_text("# segcore connected sources (segcore connect)\n\n" + body,
                       encoding="utf-8")


def connect(home: Path, source: Source) -> dict[str, pl.DataType]:
    """Check that ``source`` reads (its files, the mapping, the required columns), then
    save it in ``sources.toml``; returns its columns as the store will see them.

    A Spark table is checked in the process's Spark session (:func:`spark_frame`)."""
    schema = dict(source_schema(home, source))
    write_source(home, source, source.kind)
    return schema


# ---------------------------------------------------------------------- reading
def resolve_path(home: Path, path: str) -> str:
    """A source's path (file, folder or glob) as an absolute path: relative to ``home``."""
    p = Path(path).expanduser()
    return str(p if p.is_absolute() else Path(home) / p)


def parquet_files(home: Path, source: Source) -> list[Path]:
    """The Parquet files a source's path, folder or glob stands for (sorted)."""
    path = resolve_path(home, source.parquet or "")
    if Path(path).is_dir():
        files = sorted(Path(path).rglob("*.parquet"))
    elif globlib.has_magic(path):
        files = sorted(Path(p) for p in globlib.glob(path, recursive=True) if Path(p).is_file())
    else:
        files = [Path(path)] if Path(path).is_file() else []
    files = [f for f in files if not any(part.startswith(".") for part in f.parts)]
    if not files:
        raise StoreError(f"the {source.kind} source {source.where} matches no Parquet file")
    return files


def _union_schema(files: list[Path]) -> pl.Schema | None:
    """The columns of all ``files``, or None when every file has the first one's columns:
    a column added by a later file is seen by rules, as DuckDB's ``union_by_name`` and
    Spark's ``mergeSchema`` see it."""
    union = union_schema(files)
    return pl.Schema(union) if len(union) > len(file_schema(files[0])) else None


def _raw_parquet(home: Path, source: Source) -> pl.LazyFrame:
    files = parquet_files(home, source)  # none is one clear error
    path = resolve_path(home, source.parquet or "")
    try:
        schema = _union_schema(files)
        return pl.scan_parquet(path, hive_partitioning=True, missing_columns="insert",
                               extra_columns="ignore", schema=schema)
    except Exception as exc:
        raise StoreError(f"cannot read the {source.kind} source {source.where}: {exc}") from None


def _raw_duckdb(home: Path, source: Source, limit: int | None = None) -> pl.LazyFrame:
    try:
        import duckdb
    except ImportError:
        raise UsageError("a DuckDB source needs the duckdb package: pip install duckdb") from None
    path = resolve_path(home, source.duckdb or "")
    if not Path(path).is_file():
        raise StoreError(f"the {source.kind} source: DuckDB file {path!r} not found")
    from sqlglot import exp

    select = exp.select(exp.Star()).from_(table_expr(source.table or ""))
    query = (select if limit is None else select.limit(limit)).sql(dialect="duckdb")
    try:
        con = duckdb.connect(path, read_only=True)
        try:
            return pl.from_arrow(con.sql(query).to_arrow_table()).lazy()  # type: ignore[union-attr]
        finally:
            con.close()
    except Exception as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise StoreError(f"cannot read the {source.kind} source {source.where}: {first}") from None


def spark_only(source: Source) -> UsageError:
    """The line for an engine other than Spark meeting a Spark table."""
    return UsageError(
        f"the {source.kind} source is the {source.where}: only the spark engine reads it "
        "(--engine spark, with --spark-master or SEGCORE_SPARK_MASTER)"
    )


def _on_spark(source: Source, query: exp.Select) -> pl.DataFrame:
    """``query`` run in the process's running Spark session: the spark engine starts it
    before it compiles (``segcore.engine.sql.engines.prepare``)."""
    try:
        from pyspark import SparkContext
        from pyspark.sql import SparkSession
    except ImportError:
        raise UsageError("a Spark table source needs the pyspark package: pip install "
                         "pyspark") from None
    spark = SparkSession.getActiveSession()
    if spark is None and SparkContext._active_spark_context is not None:
        spark = SparkSession.builder.getOrCreate()  # the running context's session
    if spark is None:
        raise spark_only(source)
    try:
        arrow = spark.sql(query.sql(dialect="spark")).toArrow()
    except Exception as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise StoreError(f"cannot read the {source.kind} source {source.where}: "
                         f"{first[:300]}") from None
    frame = pl.from_arrow(arrow)
    return frame.to_frame() if isinstance(frame, pl.Series) else frame


def spark_frame(source: Source) -> pl.LazyFrame:
    """The Spark table's columns (no rows), read in the running Spark session."""
    from sqlglot import exp

    table = table_expr(source.spark_table or "")
    return _on_spark(source, exp.select(exp.Star()).from_(table).limit(0)).lazy()


def spark_event_counts(source: Source) -> pl.DataFrame:
    """``event, count`` of an events Spark table (unsorted), counted by Spark."""
    from sqlglot import exp

    name = exp.to_identifier(source.mapping.get("event", "event"), quoted=True)
    event = exp.Literal.string(source.event) if source.event is not None else exp.column(name)
    query = exp.select(
        exp.alias_(exp.Cast(this=event, to=exp.DataType.build("STRING")), "event"),
        exp.alias_(exp.Count(this=exp.Star()), "count"),
    ).from_(table_expr(source.spark_table or "")).group_by(exp.Literal.number(1))
    return _on_spark(source, query).select(pl.col("event").cast(pl.String),
                                           pl.col("count").cast(pl.UInt32))


def raw_scan(home: Path, source: Source) -> pl.LazyFrame:
    """The source's rows with its own column names (no mapping); a Spark table is
    read by the spark engine only (one clear line)."""
    if source.parquet is not None:
        return _raw_parquet(home, source)
    if source.spark_table is not None:
        raise spark_only(source)
    return _raw_duckdb(home, source)


def raw_schema(home: Path, source: Source) -> dict[str, pl.DataType]:
    """The source's own columns and types, read without its rows."""
    if source.spark_table is not None:
        return dict(spark_frame(source).collect_schema())
    if source.duckdb is not None:
        limited = Source(source.kind, duckdb=source.duckdb, table=source.table)
        return dict(_raw_duckdb(home, limited, limit=0).collect_schema())
    return dict(raw_scan(home, source).collect_schema())


def source_schema(home: Path, source: Source) -> pl.Schema:
    """The source's columns as the store sees them (the mapping and the id/ts rules)."""
    if source.spark_table is not None:
        return shaped(spark_frame(source), source).collect_schema()
    return scan_source(home, source).collect_schema()


def _ts(dtype: pl.DataType) -> pl.Expr:
    c = pl.col("ts")
    if isinstance(dtype, pl.Datetime):
        c = c.dt.convert_time_zone("UTC") if dtype.time_zone else c.dt.replace_time_zone("UTC")
    elif dtype == pl.Date:
        c = c.cast(pl.Datetime("us")).dt.replace_time_zone("UTC")
    elif dtype == pl.String:
        c = c.str.to_datetime(time_unit="us", time_zone="UTC")
    else:
        raise StoreError(f"the events source's ts column is {dtype}: expected a timestamp")
    return c.cast(pl.Datetime("us", "UTC")).alias("ts")


def shaped(frame: pl.LazyFrame, source: Source) -> pl.LazyFrame:
    """The source's rows in the store's columns: the mapping, the constant event name, the
    id rule on ``user_id`` / ``event_id``, ``ts`` in UTC microseconds, categories as text."""
    try:
        schema = frame.collect_schema()
    except Exception as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise StoreError(f"cannot read the {source.kind} source {source.where}: {first}") from None
    for target, col in source.mapping.items():  # ok-loop: a few mapped columns
        if col not in schema:
            raise StoreError(
                f"the {source.kind} source {source.where} has no column {col!r} (mapped to "
                f"{target}); its columns are: {', '.join(schema.names())}"
            )
    copies = [pl.col(s).alias(t) for t, s in source.mapping.items()]  # as ingest's --map
    gone = [s for s in set(source.mapping.values()) if s not in source.mapping]
    frame = frame.with_columns(copies).drop(gone)
    if source.event is not None:
        frame = frame.with_columns(pl.lit(source.event, dtype=pl.String).alias("event"))
    schema = frame.collect_schema()
    needed = ["user_id", "event", "ts"] if source.kind == "events" else ["user_id"]
    missing = [c for c in needed if c not in schema]
    if missing:
        raise StoreError(
            f"the {source.kind} source {source.where} has no column {missing[0]!r}: map one "
            f"(segcore connect {source.kind} ... --map {missing[0]}=COLUMN)"
        )
    fixes = [id_text(pl.col(c), schema[c]).alias(c) for c in ("user_id", "event_id")
             if c in schema]
    if "event" in schema:
        fixes.append(pl.col("event").cast(pl.String))
    if "ts" in schema and source.kind == "events":
        fixes.append(_ts(schema["ts"]))
    fixes += [pl.col(c).cast(pl.String) for c, t in schema.items()
              if t == pl.Categorical or isinstance(t, pl.Enum)]
    return frame.with_columns(fixes)


def scan_source(home: Path, source: Source) -> pl.LazyFrame:
    """The source as a LazyFrame in the store's columns (see :func:`shaped`)."""
    return shaped(raw_scan(home, source), source)


def source_version(home: Path, source: Source) -> str:
    """A short hash that changes when the source's files or its settings change."""
    if source.parquet is not None:
        files = parquet_files(home, source)
    elif source.duckdb is not None:
        files = [Path(resolve_path(home, source.duckdb))]
    else:  # a Spark table: only its settings (Spark reads it afresh at every query)
        files = []
    key = [source.to_toml()]
    for f in files:  # ok-loop: one stat per file
        try:
            st = f.stat()
        except FileNotFoundError:
            continue
        key.append(f"{f}:{st.st_size}:{st.st_mtime_ns}")
    return hashlib.sha1("\n".join(key).encode()).hexdigest()[:16]


__all__ = [
    "KINDS",
    "connect",
    "SOURCES_FILE",
    "Source",
    "parquet_files",
    "raw_scan",
    "raw_schema",
    "resolve_path",
    "source_schema",
    "spark_event_counts",
    "spark_frame",
    "spark_only",
    "read_sources",
    "scan_source",
    "shaped",
    "source_version",
    "table_expr",
    "write_source",
]
