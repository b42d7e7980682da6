"""Run compiled SQL in-process: DuckDB, ClickHouse (chdb) or Spark.

Every engine reads the store's Parquet files, or its connected sources
(:mod:`segcore.engine.sql.connected`), and works in UTC. :func:`run_select`
runs any compiled query (a sqlglot tree) on an :class:`~segcore.engine.choice.Engine`
and returns a Polars frame; an engine's failure becomes one ``EngineError`` line (a ``StoreError``).
The Polars engine never comes here: the runners (``segcore.query.runners``) send
it to the Polars backend.
"""

from __future__ import annotations

import os
import threading
from typing import Any

import polars as pl
from sqlglot import exp

from segcore.engine.choice import Engine
from segcore.engine.sql.connected import attach_statements
from segcore.engine.sql.dialects import dialect_of
from segcore.errors import EngineError, SegcoreError, UsageError
from segcore.store.events import EventStore

_MODULES = {"duckdb": "duckdb", "clickhouse": "chdb", "spark": "pyspark"}
_spark_lock = threading.Lock()
_spark_sessions: dict[str, Any] = {}


def engine_dialect(engine: Engine | str) -> str:
    """The SQL dialect of a SQL engine (UsageError for polars or an unknown engine)."""
    e = Engine.parse(engine)
    if e.dialect is None:
        raise UsageError(f"the {e.name} engine does not run SQL")
    return e.dialect


def need(engine: Engine) -> Any:
    """The engine's Python module (UsageError naming the package when it is missing)."""
    module = _MODULES[engine.name]
    try:
        return __import__(module)
    except ImportError:
        raise UsageError(
            f"the {engine.name} engine needs the {module} package: pip install {module} "
            "(or pip install 'segcore[engines]')"
        ) from None


def prepare(engine: Engine) -> Engine:
    """``engine`` ready to compile for: its package is there and, for Spark, the session on
    its master runs (a connected Spark table's columns are read in it)."""
    need(engine)
    if engine.name == "spark":
        spark_session(engine.master)
    return engine


def one_line(engine: Engine, exc: BaseException) -> EngineError:
    """An engine's exception as one clear line."""
    text = str(exc).strip()
    first = text.splitlines()[0] if text else type(exc).__name__
    return EngineError(f"the {engine} engine failed: {first[:500]}")


def run_select(select: exp.Expression, engine: Engine | str) -> pl.DataFrame:
    """Run a compiled query on ``engine``; its rows as a Polars frame."""
    e = Engine.parse(engine)
    sql = dialect_of(engine_dialect(e)).sql(select)
    return run_text(sql, e)


def run_text(sql: str, engine: Engine | str) -> pl.DataFrame:
    """Run SQL text (compiled by segcore) on ``engine``."""
    e = Engine.parse(engine)
    mod = need(e)
    try:
        if e.name == "duckdb":
            con = mod.connect()
            try:
                con.execute("SET TimeZone = 'UTC'")
                for attach in attach_statements(sql):  # ok-loop: connected DuckDB files
                    con.execute(attach)
                table = con.sql(sql).to_arrow_table()
            finally:
                con.close()
        elif e.name == "clickhouse":
            table = mod.query(sql, "ArrowTable")
        else:
            table = spark_session(e.master).sql(sql).toArrow()
    except SegcoreError:
        raise
    except Exception as exc:  # engine errors: one clear line
        raise one_line(e, exc) from None
    df = pl.from_arrow(table)
    return df.to_frame() if isinstance(df, pl.Series) else df


def _ids(df: pl.DataFrame) -> pl.DataFrame:
    return df.select(pl.col(df.columns[0]).cast(pl.String).alias("user_id")).sort("user_id")


def run_sql(sql: str, engine: Engine | str = "duckdb", *,
            spark_master: str | None = None) -> pl.DataFrame:
    """Run a members query (from ``compile_sql``) on ``engine``; sorted ``user_id`` frame."""
    return _ids(run_text(sql, Engine.parse(engine, spark_master)))


def spark_master_url(master: str | None = None) -> str:
    """The Spark master to use: ``master``, else ``SEGCORE_SPARK_MASTER``, else
    ``SPARK_MASTER``, else ``local[2]``."""
    return (master or os.environ.get("SEGCORE_SPARK_MASTER")
            or os.environ.get("SPARK_MASTER") or "local[2]")


def spark_session(master: str | None = None):
    """The process's SparkSession (UTC, quiet, Parquet schemas merged over files) for ``master`` (see :func:`spark_master_url`);
    ``SPARK_REMOTE`` (with no explicit master) or an ``sc://`` master selects Spark Connect.

    A process holds one SparkContext: asking for another master is refused with one line
    (:func:`stop_spark` first).
    """
    need(Engine("spark"))
    from pyspark.sql import SparkSession

    explicit = master or os.environ.get("SEGCORE_SPARK_MASTER")
    remote = explicit if explicit and explicit.startswith("sc://") else os.environ.get(
        "SPARK_REMOTE")
    key = (
        f"remote:{remote}"
        if remote and (not explicit or explicit.startswith("sc://"))
        else f"master:{spark_master_url(master)}"
    )
    with _spark_lock:
        if key in _spark_sessions:
            return _spark_sessions[key]
        if _spark_sessions and not key.startswith("remote:"):
            raise UsageError(
                f"this process already runs Spark on {next(iter(_spark_sessions))[7:]}: one "
                "Spark master per process (segcore.engine.sql.engines.stop_spark() first)"
            )
        builder = SparkSession.builder.appName("segcore")
        if key.startswith("remote:"):
            builder = builder.remote(remote)
        else:
            url = key.split(":", 1)[1]
            builder = (
                builder.master(url)
                .config("spark.ui.enabled", "false")
                .config("spark.ui.showConsoleProgress", "false")
                .config("spark.sql.shuffle.partitions", "4")
                .config("spark.driver.extraJavaOptions", "-Dlog4j2.level=ERROR")
            )
            if url.startswith("spark://127.0.0.1:") or url.startswith("spark://localhost:"):
                # a cluster on this machine: executors reach the driver on loopback
                builder = (builder.config("spark.driver.host", "127.0.0.1")
                           .config("spark.driver.bindAddress", "127.0.0.1"))
            for name, value in _spark_conf_from_env():
                builder = builder.config(name, value)
        spark = builder.config("spark.sql.session.timeZone", "UTC").getOrCreate()
        # a Parquet dataset's columns are the union over its files (a column added by a
        # later import), as DuckDB's union_by_name; Spark reads one file's footer otherwise
        spark.conf.set("spark.sql.parquet.mergeSchema", "true")
        try:
            spark.sparkContext.setLogLevel("ERROR")
        except Exception:  # Spark Connect has no SparkContext
            pass
        _spark_sessions[key] = spark
        return spark


def _spark_conf_from_env() -> list[tuple[str, str]]:
    """Extra Spark settings from ``SEGCORE_SPARK_CONF`` (``key=value`` pairs, ``;``-separated),
    e.g. ``spark.executor.memory=512m;spark.cores.max=2`` for a shared cluster."""
    raw = os.environ.get("SEGCORE_SPARK_CONF", "")
    pairs = []
    for item in raw.split(";"):  # ok-loop: a handful of settings
        if item.strip():
            name, sep, value = item.partition("=")
            if not sep:
                raise UsageError(f"SEGCORE_SPARK_CONF: expected key=value, got {item.strip()!r}")
            pairs.append((name.strip(), value.strip()))
    return pairs


def stop_spark() -> None:
    """Stop every SparkSession this process started (a JVM holds one SparkContext, so a
    session for another master needs the previous one stopped first)."""
    with _spark_lock:
        for spark in _spark_sessions.values():  # ok-loop: at most a few sessions
            try:
                spark.stop()
            except Exception:  # already stopped, or a lost connection
                pass
        _spark_sessions.clear()


def run_members(
    store: EventStore,
    rule: Any = None,
    *,
    segment: str | None = None,
    as_of: Any = None,
    engine: Engine | str = "duckdb",
    spark_master: str | None = None,
) -> pl.DataFrame:
    """Members of a rule or saved segment at ``as_of``, computed by a SQL ``engine``."""
    from segcore.engine.sql.analytics.members import members_select

    e = Engine.parse(engine, spark_master)
    d = engine_dialect(e)
    prepare(e)
    return _ids(run_select(members_select(store, rule, segment, as_of, d), e))


def count_members(
    store: EventStore,
    rule: Any = None,
    *,
    segment: str | None = None,
    as_of: Any = None,
    engine: Engine | str = "duckdb",
    spark_master: str | None = None,
) -> int:
    """Number of members at ``as_of`` computed by a SQL ``engine`` (a COUNT in SQL)."""
    from segcore.engine.sql.analytics.members import count_select

    e = Engine.parse(engine, spark_master)
    d = engine_dialect(e)
    prepare(e)
    return int(run_select(count_select(store, rule, segment, as_of, d), e).item(0, 0))
