"""Connected sources (segcore/store/sources.py): a store reading its events and users where
they already are gives the same answers as a store holding an ingested copy of them."""

from __future__ import annotations

import datetime as dt
import json

import duckdb
import polars as pl
import pytest

from segcore import Store
from segcore.cli import main
from segcore.errors import IngestError, StoreError, UsageError
from segcore.ingest import ingest
from segcore.store.sources import Source, connect, read_sources

# the lake's own column names: uid (integers), name, time (naive = UTC), amount
RAW_EVENTS = pl.DataFrame({
    "uid": [1, 1, 2, 2, 3, 3, 3, 4],
    "name": ["view", "buy", "view", "view", "buy", "buy", "view", "view"],
    "time": [dt.datetime(2026, 6, d, h) for d, h in
             [(1, 9), (1, 10), (2, 8), (3, 8), (2, 12), (3, 13), (3, 14), (1, 7)]],
    "amount": [None, 30.0, None, None, 10.0, 25.5, None, None],
})
RAW_USERS = pl.DataFrame({
    "customer_id": [1, 2, 3, 5],
    "country": ["US", "DE", "US", "FR"],
})
EVENT_MAP = {"user_id": "uid", "event": "name", "ts": "time"}
USER_MAP = {"user_id": "customer_id"}
AS_OF = "2026-06-03"
RULES = {  # rule -> members, worked out by hand from the rows above
    "did('buy')": ["1", "3"],
    "event_count('view') >= 2": ["2"],
    "event_sum('buy', amount) > 30": ["3"],
    "country = 'US' AND NOT did('buy', where => amount > 20)": [],
    "country = 'US'": ["1", "3"],
    "did('view', where => day = '2026-06-01')": ["1", "4"],
    "NOT did('view')": ["5"],
}


def _hive_lake(root):
    """Events under events/day=YYYY-MM-DD/part-0.parquet (one folder per day)."""
    days = RAW_EVENTS.with_columns(pl.col("time").dt.date().cast(pl.String).alias("day"))
    for (day,), part in days.group_by("day"):  # ok-loop: three day folders
        folder = root / "events" / f"day={day}"
        folder.mkdir(parents=True)
        part.drop("day").write_parquet(folder / "part-0.parquet")
    return root / "events"


@pytest.fixture
def copy_store(tmp_path) -> Store:
    """The same rows ingested the ordinary way (the hive column written into the file)."""
    src = tmp_path / "flat"
    src.mkdir()
    RAW_EVENTS.with_columns(pl.col("time").dt.date().alias("day")).write_parquet(
        src / "events.parquet")
    RAW_USERS.write_parquet(src / "users.parquet")
    store = Store(tmp_path / "copy")
    ingest(store, "events", [src / "events.parquet"], mapping=EVENT_MAP)
    ingest(store, "users", [src / "users.parquet"], mapping=USER_MAP)
    return store


def _answers(store: Store) -> dict:
    trend = store.trend("did('view', within => '2 days')", start="2026-06-01",
                        end="2026-06-04")
    return {
        "members": {r: store.members(r, as_of=AS_OF)["user_id"].to_list() for r in RULES},
        "trend": trend.to_dicts(),
        "events": store.event_counts().to_dicts(),
    }


def _check(store: Store, copy_store: Store) -> None:
    for rule, expected in RULES.items():  # ok-loop: one check per rule
        assert store.members(rule, as_of=AS_OF)["user_id"].to_list() == expected, rule
    assert _answers(store) == _answers(copy_store)


def test_hive_partitioned_folder_and_duckdb_users(tmp_path, copy_store):
    lake = _hive_lake(tmp_path / "lake")
    db = tmp_path / "crm.duckdb"
    con = duckdb.connect(str(db))
    con.execute("CREATE SCHEMA sales")
    con.register("u", RAW_USERS.to_arrow())
    con.execute("CREATE TABLE sales.customers AS SELECT * FROM u")
    con.close()
    home = tmp_path / "store"
    home.mkdir()
    connect(home, Source("events", parquet=str(lake), mapping=EVENT_MAP))
    connect(home, Source("users", duckdb=str(db), table="sales.customers", mapping=USER_MAP))
    store = Store(home)
    assert store.events_schema()["day"] == pl.Date  # the partition folders' values
    assert store.users_schema() == {"user_id": pl.String, "country": pl.String}
    _check(store, copy_store)
    assert not (home / "events").exists()  # nothing was copied


def test_glob_relative_to_home_with_the_cli(tmp_path, copy_store, capsys):
    """`segcore connect` with a glob (relative paths are read from the store's home)."""
    home = tmp_path / "store"
    _hive_lake(home / "lake")
    RAW_USERS.write_parquet(home / "users.parquet")
    maps = [a for t, s in EVENT_MAP.items() for a in ("--map", f"{t}={s}")]
    assert main(["connect", "events", "--home", str(home), "--parquet",
                 "lake/events/**/*.parquet", *maps, "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["columns"]["ts"] == "Datetime(time_unit='us', time_zone='UTC')"
    assert main(["connect", "users", "--home", str(home), "--parquet", "users.parquet",
                 "--map", "user_id=customer_id"]) == 0
    assert "users: read from the Parquet 'users.parquet' (2 columns)" in capsys.readouterr().out
    assert set(read_sources(home)) == {"events", "users"}
    _check(Store(home), copy_store)
    # the ingested copy and the connected store agree on every event, row for row
    rows = ["user_id", "event", "ts", "amount", "day"]
    assert Store(home).scan_events().select(rows).sort(rows).collect().equals(
        copy_store.scan_events().select(rows).sort(rows).collect())
    # --off: back to the store's own (empty) files
    assert main(["connect", "events", "--home", str(home), "--off"]) == 0
    assert Store(home).scan_events().collect().height == 0


def test_constant_event_name_and_new_files_are_seen(tmp_path):
    lake = tmp_path / "orders"
    lake.mkdir()
    RAW_EVENTS.drop("name").head(3).write_parquet(lake / "a.parquet")
    home = tmp_path / "store"
    home.mkdir()
    connect(home, Source("events", parquet=str(lake), event="order",
                         mapping={"user_id": "uid", "ts": "time"}))
    store = Store(home)
    assert store.event_counts().to_dicts() == [{"event": "order", "count": 3}]
    v = store.data_version()
    RAW_EVENTS.drop("name").tail(5).write_parquet(lake / "b.parquet")  # the lake grows
    assert store.data_version() != v
    assert store.event_counts().to_dicts() == [{"event": "order", "count": 8}]
    assert store.count("event_count('order') >= 2", as_of=AS_OF) == 3  # users 1, 2, 3


def test_errors_are_one_clear_line(tmp_path):
    home = tmp_path / "store"
    home.mkdir()
    lake = _hive_lake(tmp_path / "lake")
    with pytest.raises(StoreError, match="has no column 'uid2'.*columns are: uid, name"):
        connect(home, Source("events", parquet=str(lake), mapping={"user_id": "uid2"}))
    with pytest.raises(StoreError, match="no column 'user_id'.*--map user_id=COLUMN"):
        connect(home, Source("events", parquet=str(lake)))
    with pytest.raises(StoreError, match="matches no Parquet file"):
        connect(home, Source("events", parquet=str(tmp_path / "nothing/*.parquet"),
                             mapping=EVENT_MAP))
    with pytest.raises(UsageError, match="exactly one of parquet"):
        Source("users")
    with pytest.raises(UsageError, match="bad table name"):
        Source("users", duckdb="x.duckdb", table="a..b")
    assert read_sources(home) == {}  # nothing saved by a failed connect
    connect(home, Source("events", parquet=str(lake), mapping=EVENT_MAP))
    store = Store(home)
    with pytest.raises(IngestError, match="read from the Parquet .*segcore connect events --off"):
        ingest(store, "events", [tmp_path / "x.csv"])
    assert "READ_PARQUET(" in store.sql("did('view')", dialect="duckdb")  # read in place
    with pytest.raises(UsageError, match="exactly one of parquet = PATH, duckdb = FILE"):
        Source("events", parquet=str(lake), spark_table="lake.events")
    with pytest.raises(UsageError, match="table = NAME goes with duckdb"):
        Source("events", parquet=str(lake), table="t")
    spark_home = tmp_path / "spark_store"
    spark_home.mkdir()
    (spark_home / "sources.toml").write_text('[events]\nspark_table = "lake.events"\n')
    # polars: with no Spark session in this process, the line says only Spark reads it; when
    # another test left a session running, its rule check asks Spark, which has no such table
    with pytest.raises((UsageError, StoreError),
                       match="^(the events source is the Spark table 'lake.events': only the "
                             "spark engine reads it|cannot read the events source Spark table "
                             "'lake.events')"):
        Store(spark_home).count("did('view')", as_of=AS_OF)
    (home / "sources.toml").write_text("[events]\nparquet = 1 2\n")
    with pytest.raises(UsageError, match="not valid TOML"):
        Store(home).events_schema()


def test_the_example_in_docs_engines(tmp_path, copy_store, capsys):
    """docs/engines.md, "Connected sources": its commands write its sources.toml, and the
    store reads the same answers as an ingested copy."""
    import re
    import shlex
    from pathlib import Path

    doc = (Path(__file__).resolve().parents[2] / "docs" / "engines.md").read_text()
    part = doc[doc.index("## Connected sources"):]
    commands = [line for line in re.search(r"```bash\n(.*?)```", part, re.S).group(1)
                .splitlines() if line.startswith("segcore connect")]
    toml = re.search(r"```toml\n(.*?)```", part, re.S).group(1)
    home = tmp_path / "store"
    _hive_lake(home / "lake")
    con = duckdb.connect(str(home / "crm.duckdb"))
    con.execute("CREATE SCHEMA sales")
    con.register("u", RAW_USERS.to_arrow())
    con.execute("CREATE TABLE sales.customers AS SELECT * FROM u")
    con.close()
    for command in commands:  # ok-loop: the doc's three commands
        assert main([*shlex.split(command)[1:], "--home", str(home)]) == 0, command
    written = (home / "sources.toml").read_text()
    assert written.split("\n\n", 1)[1] == toml  # after the comment line
    assert capsys.readouterr().out.rstrip().endswith(toml.rstrip())  # connect show
    _check(Store(home), copy_store)
    # the doc's engines: DuckDB reads the lake and attaches the DuckDB file; ClickHouse says
    # in one line it cannot read a DuckDB file
    store = Store(home)
    for rule, expected in RULES.items():  # ok-loop: one check per rule
        assert store.members(rule, as_of=AS_OF, engine="duckdb")["user_id"].to_list() == (
            expected), rule
    with pytest.raises(UsageError, match="^the clickhouse engine cannot read a DuckDB "
                       "database file .*: the polars or duckdb engine reads it$"):
        store.count("did('view')", as_of=AS_OF, engine="clickhouse")


def test_a_column_only_a_later_file_has_is_seen(tmp_path):
    """A property added by a later file of a connected dataset is a column for rules, on
    Polars, DuckDB and ClickHouse (rows of the files without it read as NULL; Spark:
    tests/engine/test_spark_merge_schema.py)."""
    lake = tmp_path / "lake"
    lake.mkdir()
    RAW_EVENTS.head(4).write_parquet(lake / "part-0.parquet")
    RAW_EVENTS.tail(4).with_columns(
        pl.Series("coupon", ["A", None, "B", "A"])).write_parquet(lake / "part-1.parquet")
    home = tmp_path / "store"
    home.mkdir()
    connect(home, Source("events", parquet=str(lake), mapping=EVENT_MAP))
    store = Store(home)
    assert "coupon" in store.events_schema()
    rule = "did('*', where => coupon = 'A')"  # rows 5 (uid 3, buy) and 8 (uid 4, view)
    for engine in ("polars", "duckdb", "clickhouse"):  # ok-loop: three engines
        assert store.members(rule, as_of=AS_OF, engine=engine)["user_id"].to_list() \
            == ["3", "4"], engine
    assert store.count("did('view', where => coupon IS NULL)", as_of=AS_OF) == 2  # uid 1, 2
