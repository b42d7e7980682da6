"""Event files whose columns differ (a property added by a later import): every engine
reads the union of the files' columns (the store's own files: one typed SELECT per file;
a connected Parquet dataset on Spark: ``spark.sql.parquet.mergeSchema``, as DuckDB's
``union_by_name``)."""

from __future__ import annotations

import datetime as dt

import polars as pl
import pytest
from sqlglot import exp

from segcore import Store
from segcore.engine.sql.connected import reader
from segcore.engine.sql.dialects import dialect_of
from segcore.engine.sql.engines import run_text
from segcore.store.sources import Source

RULES = {"did('buy', where => coupon = 'X')": ["2"],
         "did('buy') AND NOT did('buy', where => coupon IS NOT NULL)": ["1"]}


def _files(folder) -> None:
    """Two files: only the second one has the ``coupon`` column."""
    folder.mkdir(parents=True)
    t = dt.datetime(2026, 6, 1, tzinfo=dt.UTC)
    first = pl.DataFrame({"uid": ["1"], "name": ["buy"], "time": [t]})
    second = pl.DataFrame({"uid": ["2", "3"], "name": ["buy", "buy"],
                           "time": [t + dt.timedelta(days=1)] * 2, "coupon": ["X", "Y"]})
    first.write_parquet(folder / "part-0.parquet")
    second.write_parquet(folder / "part-1.parquet")


@pytest.fixture
def own(tmp_path) -> Store:
    """The store's own files: a later import added ``coupon``."""
    home = tmp_path / "own"
    _files(home / "events")
    for f in (home / "events").glob("*.parquet"):
        pl.read_parquet(f).rename({"uid": "user_id", "name": "event", "time": "ts"}).with_columns(
            pl.format("e{}", pl.int_range(pl.len())).alias("event_id")).write_parquet(f)
    return Store(home)


@pytest.mark.parametrize("engine", ["polars", "duckdb", "clickhouse", "spark"])
def test_store_files_with_a_later_column(own, engine):
    for rule, want in RULES.items():
        got = own.members(rule, as_of="2026-06-03", engine=engine)["user_id"].to_list()
        assert got == want, (engine, rule)
    trend = own.trend("did('buy', where => coupon = 'X', within => '1 day')",
                      "2026-06-01", "2026-06-03", engine=engine)["members"].to_list()
    assert trend == [0, 1, 0]


def test_spark_reads_the_union_of_a_datasets_columns(tmp_path):
    """A connected Parquet folder as Spark reads it (``connected.reader``): the second
    file's ``coupon`` is there, NULL for the first file's rows."""
    _files(tmp_path / "lake")
    src = Source("events", parquet="lake", mapping={"user_id": "uid", "event": "name",
                                                     "ts": "time"})
    spark = dialect_of("spark")
    sel = exp.select("uid", "coupon").from_(reader(tmp_path, src, spark)).order_by("uid")
    rows = run_text(spark.sql(sel), "spark")
    assert rows.rows() == [("1", None), ("2", "X"), ("3", "Y")]
