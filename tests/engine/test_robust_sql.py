"""SQL safety: hostile identifiers and literals never change the meaning of compiled SQL.

Rules are written as *text* (the way users type them) over a tiny store whose column
names, event names, values and even its folder name are hostile. For every dialect the
compiled SQL is one SELECT that parses back to the same tree; DuckDB and ClickHouse (chdb)
return exactly the Polars members; injected statements never run (a canary table in the
engine's own session survives). See docs/robustness.md.
"""

from __future__ import annotations

import datetime as dt
import tempfile
from pathlib import Path

import chdb.session
import duckdb
import polars as pl
import pytest
import sqlglot
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlglot import exp

from segcore import Store
from segcore.engine.polars.evaluate import members, schema_of
from segcore.engine.sql import DIALECTS, compile_sql
from segcore.engine.sql.engines import run_members
from segcore.ingest import ingest
from segcore.lang.parser import parse_rule
from segcore.lang.printer import to_text
from tests.conftest import make_store

AS_OF = "2026-02-01"
INJECT = "'; DROP TABLE canary; --"
VALUES = [
    INJECT,
    "it's",
    'say "hi"',
    "back\\slash\\",
    "/* x */",
    "semi;colon",
    "new\nline",
    "ünï ☃ 😀",
    "\u202eRTL",
    "e\u0301",
    "100% _x_",
    "$1 {0} %s ?",
]
COL_A = "it's; DROP --"  # user attribute
COL_B = 'we"ird /*c*/'  # user attribute
PROP = "pröp `x` \\"  # event property
EVENTS = ["buy'); DELETE FROM users; --", 'view "x"', "ok"]


def _q(s: str) -> str:
    """A SQL string literal in rule text."""
    return "'" + s.replace("'", "''") + "'"


def _i(s: str) -> str:
    """A quoted identifier in rule text."""
    return '"' + s.replace('"', '""') + '"'


RULES = [
    f"{_i(COL_A)} = {_q(INJECT)}",
    f"{_i(COL_A)} IN ({_q(VALUES[1])}, {_q(VALUES[3])}, {_q(VALUES[6])})",
    f"NOT {_i(COL_B)} = {_q(VALUES[2])} OR {_i(COL_A)} IS NULL",
    f"{_i(COL_B)} LIKE {_q('%' + VALUES[4][:3] + '%')} OR {_i(COL_B)} ILIKE {_q('%Ü%')}",
    f"contains({_i(COL_A)}, {_q(';')}) AND starts_with({_i(COL_B)}, {_q(VALUES[5][:3])})",
    f"did({_q(EVENTS[0])})",
    f"event_count({_q(EVENTS[1])}, where => {_i(PROP)} = {_q(INJECT)}) >= 1",
    f"did('*', where => {_i(PROP)} IN ({_q(VALUES[7])}, {_q(VALUES[3])}))",
    f"did_then({_q(EVENTS[0])}, {_q(EVENTS[1])}, gap => '30 days') OR user_id = {_q(INJECT)}",
    f"upper({_i(COL_A)}) = {_q(VALUES[7].upper())} OR length({_i(COL_B)}) > 7",
]


def _hostile_store(home: Path) -> Store:
    users, events = [], []
    for i in range(24):
        uid = INJECT if i == 0 else f"u{i:02d}'\\"
        users.append(
            {
                "user_id": uid,
                COL_A: None if i % 7 == 3 else VALUES[i % len(VALUES)],
                COL_B: VALUES[(i * 5) % len(VALUES)],
            }
        )
        for k in range(i % 3 + 1):
            events.append(
                (
                    uid,
                    EVENTS[(i + k) % 3],
                    dt.datetime(2026, 1, 1 + i, k),
                    {PROP: VALUES[(i + k) % len(VALUES)]},
                )
            )
    return make_store(home, events, users)


@pytest.fixture(scope="module")
def store(tmp_path_factory) -> Store:
    # the folder name is hostile too: it ends up in the SQL as a file path literal
    return _hostile_store(tmp_path_factory.mktemp("sql") / "it's [a] {b,c} -- x")


@pytest.fixture(scope="module")
def expected(store) -> dict[str, list[str]]:
    return {r: members(store, r, as_of=AS_OF)["user_id"].to_list() for r in RULES}


def test_hostile_rules_select_someone(expected):
    assert sum(bool(v) for v in expected.values()) >= len(RULES) - 2
    assert expected[RULES[0]] == sorted(
        f"u{i:02d}'\\" if i else INJECT for i in range(24) if i % 12 == 0 and i % 7 != 3
    )


@pytest.mark.parametrize("dialect", DIALECTS)
def test_compiled_sql_is_one_select_that_parses_back_to_the_same_tree(store, dialect):
    kw = (
        {}
        if dialect in ("duckdb", "clickhouse", "spark")
        else {"events_table": "db.events", "users_table": "db.users"}
    )
    for rule in RULES:
        sql = compile_sql(store, rule, dialect=dialect, as_of=AS_OF, **kw)
        parsed = sqlglot.parse(sql, read=dialect)
        assert len(parsed) == 1 and isinstance(parsed[0], exp.Query), (dialect, rule)
        tree = parsed[0]
        for bad in (exp.Drop, exp.Delete, exp.Insert, exp.Update, exp.Create, exp.Command):
            assert not list(tree.find_all(bad)), (dialect, rule, bad)
        again = sqlglot.parse_one(tree.sql(dialect=dialect), read=dialect)
        assert again == tree, (dialect, rule)
        strings = {lit.this for lit in tree.find_all(exp.Literal) if lit.is_string}
        names = {i.this for i in tree.find_all(exp.Identifier)}
        for value in (INJECT, *EVENTS[:2]):
            if _q(value) in rule:
                assert value in strings, (dialect, value)
        for col in (COL_A, COL_B, PROP):
            if _i(col) in rule:
                assert col in names, (dialect, col)


@pytest.mark.parametrize("engine", ["duckdb", "clickhouse"])
def test_engines_return_exactly_the_polars_members(store, expected, engine):
    for rule in RULES:
        got = run_members(store, rule, as_of=AS_OF, engine=engine)["user_id"].to_list()
        assert got == expected[rule], (engine, rule)


def test_duckdb_canary_survives_hostile_sql(store, expected):
    con = duckdb.connect()
    try:
        con.execute("SET TimeZone = 'UTC'")
        con.execute("CREATE TABLE canary AS SELECT 42 AS x")
        con.execute("CREATE TABLE users AS SELECT 'kept' AS x")
        for rule in RULES:
            rows = con.execute(compile_sql(store, rule, dialect="duckdb", as_of=AS_OF)).fetchall()
            assert sorted(r[0] for r in rows) == expected[rule]
        assert con.execute("SELECT x FROM canary").fetchall() == [(42,)]
        assert con.execute("SELECT x FROM users").fetchall() == [("kept",)]
        # the canary would notice: a second statement in one call does run in DuckDB
        con.execute("SELECT 1; CREATE TABLE injected AS SELECT 1 AS y")
        assert con.execute("SELECT y FROM injected").fetchall() == [(1,)]
    finally:
        con.close()


def test_chdb_canary_survives_hostile_sql(store, expected):
    sess = chdb.session.Session(tempfile.mkdtemp())
    try:
        sess.query("CREATE TABLE default.canary (x Int32) ENGINE = MergeTree ORDER BY x")
        sess.query("INSERT INTO default.canary VALUES (42)")
        for rule in RULES:
            sql = compile_sql(store, rule, dialect="clickhouse", as_of=AS_OF)
            got = pl.from_arrow(sess.query(sql, "ArrowTable"))
            assert sorted(got.to_series(0).cast(pl.String).to_list()) == expected[rule], rule
        assert str(sess.query("SELECT x FROM default.canary", "CSV")).strip() == "42"
    finally:
        sess.close()


def test_hostile_rules_print_and_parse_back_to_the_same_tree(store):
    schema = schema_of(store)
    for rule in RULES:
        tree = parse_rule(rule, schema)
        assert parse_rule(to_text(tree), schema) == tree, rule


# ---------------------------------------------------------------------- random text
_text = st.text(
    alphabet=st.characters(blacklist_categories=("Cs", "Cc")),  # rules refuse controls
    max_size=10,
)


@settings(
    max_examples=8,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(values=st.lists(_text, min_size=2, max_size=5, unique=True), pick=st.integers(0, 4))
def test_random_text_values_same_members_in_every_engine(values, pick):
    home = Path(tempfile.mkdtemp()) / "h"
    users = [{"user_id": f"u{i}", "v": v} for i, v in enumerate(values)]
    events = [
        (f"u{i}", v or "empty", dt.datetime(2026, 1, 2), {"p": v}) for i, v in enumerate(values)
    ]
    store = make_store(home, events, users)
    target = values[pick % len(values)]
    rules = [
        f"v = {_q(target)}",
        f"did('*', where => p = {_q(target)}) AND NOT v IN ({_q(values[0])})",
        f"did({_q(target or 'empty')}) OR contains(v, {_q(target[:2])})",
    ]
    for rule in rules:
        want = members(store, rule, as_of=AS_OF)["user_id"].to_list()
        for engine in ("duckdb", "clickhouse"):
            got = run_members(store, rule, as_of=AS_OF, engine=engine)["user_id"].to_list()
            assert got == want, (engine, rule)


# ---------------------------------------------------------------------- regressions
@pytest.mark.parametrize("folder", ["br[ck]", "x{a,b}", "x{1..2}", "dbl**star", "q?*"])
def test_store_under_glob_characters_reads_in_every_engine(tmp_path, folder):
    """Regression: Polars and DuckDB took '[ck]'/'**' in the store's path as glob
    patterns (the store could not be read at all); ClickHouse's file() took '{a,b}'."""
    store = make_store(
        tmp_path / folder,
        [("u1", "a", dt.datetime(2026, 1, 1))],
        [{"user_id": "u1", "c": "x"}, {"user_id": "u2", "c": "y"}, {"user_id": "u3", "c": "z"}],
    )
    src = tmp_path / folder / "in [1] {2}.parquet"
    pl.DataFrame({"user_id": ["u2"], "event": ["a"], "ts": ["2026-01-02"]}).write_parquet(src)
    assert ingest(store, "events", [src])["rows_imported"] == 1
    rule = "c = 'x' OR did('a')"
    assert members(store, rule, as_of=AS_OF)["user_id"].to_list() == ["u1", "u2"]
    for engine in ("duckdb", "clickhouse"):
        assert run_members(store, rule, as_of=AS_OF, engine=engine)["user_id"].to_list() == [
            "u1",
            "u2",
        ]
