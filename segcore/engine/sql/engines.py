"""Run the compiled members query in-process: DuckDB, ClickHouse (chdb) or Spark.

Every engine reads the store's Parquet files and works in UTC; the result is a
Polars frame with one sorted ``user_id`` column, like ``segcore.engine.polars.evaluate.members``.
"""

from __future__ import annotations

import os
import threading
from typing import Any

import polars as pl

from segcore.errors import StoreError, UsageError
from segcore.store.events import EventStore

ENGINES = {"duckdb": "duckdb", "clickhouse": "clickhouse", "chdb": "clickhouse", "spark": "spark"}
# run_members also accepts "polars" (the reference evaluator, no SQL)
_EXTRAS = {
    "duckdb": ("duckdb", "engines"),
    "clickhouse": ("chdb", "engines"),
    "spark": ("pyspark", "engines"),
}
_spark_lock = threading.Lock()
_spark_sessions: dict[str, Any] = {}


def engine_dialect(engine: str) -> str:
    """The SQL dialect of an engine name (UsageError for an unknown engine)."""
    e = str(engine).lower()
    if e not in ENGINES:
        raise UsageError(
            f"unknown engine {engine!r} (expected polars, duckdb, clickhouse or spark)"
        )
    return ENGINES[e]


def _need(dialect: str):
    module, extra = _EXTRAS[dialect]
    try:
        return __import__(module)
    except ImportError:
        raise UsageError(
            f"the {dialect} engine needs the {module} package: pip install {module} "
            "(or pip install 'segcore[engines]')"
        ) from None


def _frame(table) -> pl.DataFrame:
    df = pl.from_arrow(table)
    if isinstance(df, pl.Series):
        df = df.to_frame("user_id")
    df = df.select(pl.col(df.columns[0]).cast(pl.String).alias("user_id"))
    return df.sort("user_id")


def run_sql(sql: str, engine: str = "duckdb", *, spark_master: str | None = None) -> pl.DataFrame:
    """Run a members query (from ``compile_sql``) on ``engine``; sorted ``user_id`` frame."""
    d = engine_dialect(engine)
    mod = _need(d)
    try:
        if d == "duckdb":
            con = mod.connect()
            try:
                con.execute("SET TimeZone = 'UTC'")
                return _frame(con.sql(sql).to_arrow_table())
            finally:
                con.close()
        if d == "clickhouse":
            return _frame(mod.query(sql, "ArrowTable"))
        spark = spark_session(spark_master)
        return _frame(spark.sql(sql).toArrow())
    except UsageError:
        raise
    except Exception as exc:  # engine errors: one clear line
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise StoreError(f"the {engine} engine failed: {first}") from None


def run_table(sql: str, engine: str = "duckdb", *,
              spark_master: str | None = None) -> pl.DataFrame:
    """Run any query on ``engine``; its whole result as a Polars frame."""
    d = engine_dialect(engine)
    mod = _need(d)
    try:
        if d == "duckdb":
            con = mod.connect()
            try:
                con.execute("SET TimeZone = 'UTC'")
                return pl.from_arrow(con.sql(sql).to_arrow_table())
            finally:
                con.close()
        if d == "clickhouse":
            return pl.from_arrow(mod.query(sql, "ArrowTable"))
        return pl.from_arrow(spark_session(spark_master).sql(sql).toArrow())
    except UsageError:
        raise
    except Exception as exc:  # engine errors: one clear line
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise StoreError(f"the {engine} engine failed: {first}") from None


def spark_session(master: str | None = None):
    """One SparkSession per process (UTC, quiet); ``SPARK_REMOTE`` selects Spark Connect."""
    _need("spark")
    from pyspark.sql import SparkSession

    remote = os.environ.get("SPARK_REMOTE")
    key = (
        f"remote:{remote}"
        if remote and not master
        else f"master:{master or os.environ.get('SPARK_MASTER', 'local[2]')}"
    )
    with _spark_lock:
        if key in _spark_sessions:
            return _spark_sessions[key]
        builder = SparkSession.builder.appName("segcore")
        if key.startswith("remote:"):
            builder = builder.remote(remote)
        else:
            builder = (
                builder.master(key.split(":", 1)[1])
                .config("spark.ui.enabled", "false")
                .config("spark.ui.showConsoleProgress", "false")
                .config("spark.sql.shuffle.partitions", "4")
                .config("spark.driver.extraJavaOptions", "-Dlog4j2.level=ERROR")
            )
        spark = builder.config("spark.sql.session.timeZone", "UTC").getOrCreate()
        try:
            spark.sparkContext.setLogLevel("ERROR")
        except Exception:  # Spark Connect has no SparkContext
            pass
        _spark_sessions[key] = spark
        return spark


def run_members(
    store: EventStore,
    rule: Any = None,
    *,
    segment: str | None = None,
    as_of: Any = None,
    engine: str = "duckdb",
    spark_master: str | None = None,
) -> pl.DataFrame:
    """Members of a rule or saved segment at ``as_of``, computed by ``engine`` from SQL."""
    from segcore.engine.sql import compile_sql

    if str(engine).lower() == "polars":  # the reference evaluator, for symmetry
        from segcore.engine.polars.evaluate import members

        return members(store, rule, as_of=as_of, segment=segment)
    d = engine_dialect(engine)
    _need(d)
    sql = compile_sql(store, rule, dialect=d, as_of=as_of, segment=segment)
    return run_sql(sql, engine, spark_master=spark_master)


def count_members(
    store: EventStore,
    rule: Any = None,
    *,
    segment: str | None = None,
    as_of: Any = None,
    engine: str = "duckdb",
    spark_master: str | None = None,
) -> int:
    """Number of members at ``as_of`` computed by ``engine``."""
    return run_members(
        store, rule, segment=segment, as_of=as_of, engine=engine, spark_master=spark_master
    ).height
