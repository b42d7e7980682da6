"""Connected sources: a store's events or users read where they already are, not copied.

``<home>/sources.toml`` names, per table, one of

- a Parquet dataset: a file, a folder (hive-partitioned folders such as ``date=2026-06-01/``
  become columns) or a glob (``lake/events/**/*.parquet``);
- a table of a DuckDB database file;

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
from typing import Any, Literal

import polars as pl
import tomllib
from sqlglot import exp

from segcore.errors import StoreError, UsageError
from segcore.store.files import atomic_path
from segcore.store.ids import id_text

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
    mapping: dict[str, str] = field(default_factory=dict)  # store column -> source column
    event: str | None = None  # one event name for every row (events only)

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise UsageError(f"a source is for events or users, not {self.kind!r}")
        if (self.parquet is None) == (self.duckdb is None):
            raise UsageError(
                f"{self.kind} source: give exactly one of parquet = PATH or duckdb = FILE "
                "(with table = NAME)"
            )
        if self.duckdb is not None and not self.table:
            raise UsageError(f"{self.kind} source: name the table (table = NAME)")
        if self.table is not None:
            table_expr(self.table)  # a bad name is an error now
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
        return f"DuckDB table {self.table!r} of {self.duckdb!r}"

    def to_toml(self) -> str:
        """This source as a ``[kind]`` TOML section (strings as JSON, which TOML reads)."""
        lines = [f"[{self.kind}]"]
        if self.parquet is not None:
            lines.append(f"parquet = {json.dumps(self.parquet)}")
        if self.duckdb is not None:
            lines.append(f"duckdb = {json.dumps(self.duckdb)}")
            lines.append(f"table = {json.dumps(self.table)}")
        if self.event is not None:
            lines.append(f"event = {json.dumps(self.event)}")
        if self.mapping:
            lines += ["", f"[{self.kind}.map]"]
            lines += [f"{json.dumps(t)} = {json.dumps(s)}" for t, s in self.mapping.items()]
        return "\n".join(lines) + "\n"


def table_expr(name: str) -> exp.Table:
    """``table``, ``schema.table`` or ``catalog.schema.table`` as a sqlglot table."""
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
    known = {"parquet", "duckdb", "table", "map", "event"}
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
    save it in ``sources.toml``; returns its columns as the store will see them."""
    schema = dict(scan_source(home, source).collect_schema())
    write_source(home, source, source.kind)
    return schema


# ---------------------------------------------------------------------- reading
def _resolve(home: Path, path: str) -> str:
    p = Path(path).expanduser()
    return str(p if p.is_absolute() else Path(home) / p)


def parquet_files(home: Path, source: Source) -> list[Path]:
    """The Parquet files a source's path, folder or glob stands for (sorted)."""
    path = _resolve(home, source.parquet or "")
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


def _raw_parquet(home: Path, source: Source) -> pl.LazyFrame:
    parquet_files(home, source)  # none is one clear error
    path = _resolve(home, source.parquet or "")
    try:
        return pl.scan_parquet(path, hive_partitioning=True, missing_columns="insert",
                               extra_columns="ignore")
    except Exception as exc:
        raise StoreError(f"cannot read the {source.kind} source {source.where}: {exc}") from None


def _raw_duckdb(home: Path, source: Source) -> pl.LazyFrame:
    try:
        import duckdb
    except ImportError:
        raise UsageError("a DuckDB source needs the duckdb package: pip install duckdb") from None
    path = _resolve(home, source.duckdb or "")
    if not Path(path).is_file():
        raise StoreError(f"the {source.kind} source: DuckDB file {path!r} not found")
    query = exp.select(exp.Star()).from_(table_expr(source.table or "")).sql(dialect="duckdb")
    try:
        con = duckdb.connect(path, read_only=True)
        try:
            return pl.from_arrow(con.sql(query).to_arrow_table()).lazy()  # type: ignore[union-attr]
        finally:
            con.close()
    except Exception as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise StoreError(f"cannot read the {source.kind} source {source.where}: {first}") from None


def raw_scan(home: Path, source: Source) -> pl.LazyFrame:
    """The source's rows with its own column names (no mapping)."""
    if source.parquet is not None:
        return _raw_parquet(home, source)
    return _raw_duckdb(home, source)


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
    else:
        files = [Path(_resolve(home, source.duckdb or ""))]
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
    "read_sources",
    "scan_source",
    "shaped",
    "source_version",
    "table_expr",
    "write_source",
]
