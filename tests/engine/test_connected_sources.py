"""Connected sources on every engine (segcore/engine/sql/connected.py): a store reading a
hive-partitioned Parquet lake (with a column mapping, integer ids, naive times) and its
users from a Parquet file (float and padded text ids) or a DuckDB table gives, on Polars,
DuckDB, ClickHouse and Spark (local), the answers of a store holding an ingested copy.
A source an engine cannot read is one line naming the engine and the source kind."""

from __future__ import annotations

import duckdb
import polars as pl
import pytest

from segcore import Store
from segcore.cli import main
from segcore.engine.sql.engines import spark_session
from segcore.errors import UsageError
from segcore.store.sources import Source, connect
from tests.store.test_sources import (
    AS_OF,
    EVENT_MAP,
    RAW_EVENTS,
    RAW_USERS,
    RULES,
    USER_MAP,
    _hive_lake,
    copy_store,  # noqa: F401 - the fixture
)

ENGINES = ("polars", "duckdb", "clickhouse", "spark")
# ids as pandas writes them (floats) and as a CRM keeps them (padded text): the id rule
# makes them the lake's integer ids
USERS_FLOAT = RAW_USERS.with_columns(pl.col("customer_id").cast(pl.Float64))
FUNNEL = {"steps": ["view", "buy"], "window": "2d", "start": "2026-06-01", "end": "2026-06-03"}


def answers(store: Store, engine: str) -> dict:
    """Members of every rule, a trend, an event report (by a hive column) and a funnel."""
    return {
        "members": {r: store.members(r, as_of=AS_OF, engine=engine)["user_id"].to_list()
                    for r in RULES},
        "trend": store.trend("did('view', within => '2 days')", start="2026-06-01",
                             end="2026-06-04", engine=engine).to_dicts(),
        "events": store.events(["view", "buy"], start="2026-06-01", end="2026-06-03",
                               engine=engine).to_dicts(),
        "by-day": store.events(["view"], start="2026-06-01", end="2026-06-03", by="day",
                               engine=engine).to_dicts(),
        "funnel": {k: v for k, v in store.funnel(**FUNNEL, engine=engine).items()
                   if k in ("steps", "users_entered")},
    }


@pytest.fixture
def lake_store(tmp_path) -> Store:
    """Events from the lake (a glob), users from a Parquet file with float ids."""
    home = tmp_path / "lake_store"
    _hive_lake(home / "lake")
    USERS_FLOAT.write_parquet(home / "users.parquet")
    connect(home, Source("events", parquet="lake/events/**/*.parquet", mapping=EVENT_MAP))
    connect(home, Source("users", parquet="users.parquet", mapping=USER_MAP))
    return Store(home)


def _duckdb_users(path, users: pl.DataFrame) -> None:
    con = duckdb.connect(str(path))
    con.execute("CREATE SCHEMA sales")
    con.register("u", users.to_arrow())
    con.execute("CREATE TABLE sales.customers AS SELECT * FROM u")
    con.close()


@pytest.fixture
def duckdb_store(tmp_path) -> Store:
    """Events from the lake's folder, users from a DuckDB table with padded text ids."""
    home = tmp_path / "duckdb_store"
    lake = _hive_lake(tmp_path / "lake")
    text = RAW_USERS.with_columns((" " + pl.col("customer_id").cast(pl.String) + ".0 ")
                                  .alias("customer_id"))
    _duckdb_users(tmp_path / "crm.duckdb", text)
    home.mkdir()
    connect(home, Source("events", parquet=str(lake), mapping=EVENT_MAP))
    connect(home, Source("users", duckdb=str(tmp_path / "crm.duckdb"), table="sales.customers",
                         mapping=USER_MAP))
    return Store(home)


def test_a_lake_gives_the_copys_answers_on_every_engine(lake_store, copy_store):  # noqa: F811
    expected = answers(copy_store, "polars")
    assert expected["members"] == RULES  # the hand-worked members
    assert expected["funnel"]["steps"][1]["users"] > 0  # no vacuous agreement
    for engine in ENGINES:  # ok-loop: one run per engine
        assert answers(lake_store, engine) == expected, engine


def test_a_duckdb_table_on_duckdb_and_one_line_elsewhere(duckdb_store, copy_store):  # noqa: F811
    expected = answers(copy_store, "polars")
    for engine in ("polars", "duckdb"):  # ok-loop: the engines that read a DuckDB file
        assert answers(duckdb_store, engine) == expected, engine
    for engine in ("clickhouse", "spark"):  # ok-loop: the engines that cannot
        with pytest.raises(UsageError, match=f"^the {engine} engine cannot read a DuckDB "
                           r"database file \(the users source, DuckDB table 'sales.customers'"):
            duckdb_store.members("did('buy')", as_of=AS_OF, engine=engine)


def test_a_spark_view_is_read_by_spark_only(tmp_path, copy_store, capsys):  # noqa: F811
    """``segcore connect events --spark-table`` over a temporary view and users over a
    table in the session's warehouse: Spark gives the copy's answers; the other engines
    say in one line that only Spark reads the source."""
    spark = spark_session()  # the engine's session (local[2]): the view lives in it
    spark.createDataFrame(RAW_EVENTS.to_pandas()).createOrReplaceTempView("lake_raw")
    spark.sql("CREATE OR REPLACE TEMP VIEW lake_events AS "  # the copy's day column: a date
              "SELECT *, CAST(time AS DATE) AS day FROM lake_raw")
    warehouse = tmp_path / "warehouse"
    spark.sql(f"CREATE DATABASE IF NOT EXISTS crm LOCATION '{warehouse}'")
    spark.createDataFrame(USERS_FLOAT.to_pandas()).write.mode("overwrite").saveAsTable(
        "crm.customers")
    home = tmp_path / "store"
    home.mkdir()
    maps = [a for t, s in EVENT_MAP.items() for a in ("--map", f"{t}={s}")]
    assert main(["connect", "events", "--home", str(home), "--spark-table", "lake_events",
                 *maps]) == 0
    assert main(["connect", "users", "--home", str(home), "--spark-table", "crm.customers",
                 "--map", "user_id=customer_id"]) == 0
    assert "users: read from the Spark table 'crm.customers'" in capsys.readouterr().out
    store = Store(home)
    expected = answers(copy_store, "polars")
    assert answers(store, "spark") == expected
    for engine in ("polars", "duckdb", "clickhouse"):  # ok-loop: the others refuse
        with pytest.raises(UsageError, match="source is the Spark table 'lake_events': only "
                           "the spark engine reads it|cannot read a Spark table"):
            store.members("did('buy')", as_of=AS_OF, engine=engine)
    spark.sql("DROP TABLE crm.customers")
    spark.sql("DROP DATABASE crm")
    for view in ("lake_events", "lake_raw"):  # ok-loop: two views
        spark.catalog.dropTempView(view)
