"""The SQL compiler: printed SQL per dialect, parse-back, escaping of hostile names and values."""

from __future__ import annotations

import datetime as dt

import pytest
import sqlglot
from sqlglot import exp

from segcore.engine.polars.evaluate import members, schema_of
from segcore.engine.sql import DIALECTS, compile_sql, compile_tree
from segcore.engine.sql.engines import engine_dialect, run_members, run_sql
from segcore.errors import RuleError, StoreError, UsageError
from segcore.lang.parser import parse_rule
from segcore.lang.tree import (
    And,
    Behavior,
    Call,
    Col,
    Compare,
    InList,
    Like,
    Lit,
    Not,
    Or,
    Sequence,
)
from tests.engine.test_engines_differential import COOKBOOK, generated_rules

AS_OF = "2026-06-30"


# --------------------------------------------------------------------------- printed SQL
FRAGMENTS = [
    # (rule, dialect, fragments expected in the SQL)
    (
        "country = 'US'",
        "duckdb",
        ["READ_PARQUET([", "union_by_name = TRUE", "a.\"country\" = 'US'", "FROM (SELECT"],
    ),
    (  # a user with no attributes and no events is a member: the universe at T
        "country IS NULL OR NOT did('charged')",
        "duckdb",
        [
            "UNION SELECT",
            "\"ts\" < CAST('2026-07-01 00:00:00.000000+00:00' AS TIMESTAMPTZ)",
            "FROM sc_universe",
        ],
    ),
    (
        "country = 'US' OR NOT did('signed_up')",
        "clickhouse",
        [
            "file('",
            "'Parquet')",
            "UNION DISTINCT",
            "SETTINGS join_use_nulls = 1",
            "toDateTime64('2026-07-01 00:00:00.000000', 6, 'UTC')",
        ],
    ),
    ("country = 'US'", "spark", ["parquet.`", "a.`country` = 'US'"]),
    (
        "country = 'US' OR NOT did('signed_up')",
        "bigquery",
        ["FROM users AS x", "FROM events AS e", "a.`country`"],
    ),
    (
        "did('charged', within => '30 days')",
        "duckdb",
        [
            "COUNT(",
            "CASE",
            "\"event\" = 'charged'",
            "GROUP BY",
            "COALESCE(b.sc_v0, 0) > 0",
            "\"ts\" >= CAST('2026-06-01 00:00:00.000000+00:00' AS TIMESTAMPTZ)",
        ],
    ),
    ("event_sum('charged', amount) > 700", "duckdb", ["SUM(", "COALESCE(b.sc_v0, 0) > 700"]),
    ("event_avg('charged', amount) > 70", "snowflake", ["AVG(", "b.sc_v0 > 70"]),
    ("event_distinct('page_viewed', page) >= 2", "trino", ["COUNT(DISTINCT"]),
    (
        "event_periods('app_launched', period => 'week', within => '7 weeks') >= 5",
        "duckdb",
        ["COUNT(DISTINCT", "EPOCH_US(", "// 604800000000"],
    ),
    (
        "event_periods('app_launched', period => 'week', within => '7 weeks') >= 5",
        "spark",
        ["UNIX_MICROS(", "DIV 604800000000"],
    ),
    (
        "event_periods('app_launched', period => 'week', within => '7 weeks') >= 5",
        "clickhouse",
        ["toUnixTimestamp64Micro(", "intDiv("],
    ),
    (
        "did_then_not('added_to_cart', 'charged', gap => '10 minutes')",
        "duckdb",
        [
            "OVER (",
            'PARTITION BY "user_id"',
            "RANGE BETWEEN 1 FOLLOWING AND UNBOUNDED FOLLOWING",
            "+ 600000000",
        ],
    ),
    ("has(tags, 'VIP')", "duckdb", ["LIST_CONTAINS(a.\"tags\", 'VIP')"]),
    ("has(tags, 'VIP')", "spark", ["ARRAY_CONTAINS(a.`tags`, 'VIP')"]),
    ("has(tags, 'VIP')", "clickhouse", ["has(a.\"tags\", 'VIP')", 'COALESCE(a."sc_null_tags", TRUE)']),
    ("has(tags, 'VIP')", "postgres", ['= ANY(a."tags")']),
    ("has(tags, 'VIP')", "trino", ["CONTAINS(a.\"tags\", 'VIP')"]),
    ("has(tags, 'VIP')", "snowflake", ["ARRAY_CONTAINS("]),
    ("has(tags, 'VIP')", "bigquery", ["'VIP' IN UNNEST(a.`tags`)"]),
    ("age / 0 IS NULL", "duckdb", ['CAST(a."age" AS DOUBLE) / NULLIF(0, 0)']),
    ("lower(title) LIKE '%junior%'", "clickhouse", ["lowerUTF8(a.\"title\") LIKE '%junior%'"]),
    ("length(title) > 3", "clickhouse", ['lengthUTF8(a."title")']),
    ("contains(title, 'a_b')", "spark", ["LOCATE('a_b', a.`title`) > 0"]),
    (
        "subscription_end_date = today() + 6",
        "duckdb",
        ["a.\"subscription_end_date\" = CAST('2026-07-06' AS DATE)"],
    ),
    (
        "created_at >= now() - interval '7 days'",
        "spark",
        ["a.`created_at` >= CAST('2026-06-24 00:00:00.000000+00:00' AS TIMESTAMP)"],
    ),
    (
        "subscription_end_date + interval '12 hours' > now()",
        "duckdb",
        ["CAST(a.\"subscription_end_date\" AS TIMESTAMPTZ) + INTERVAL '12' HOUR"],
    ),
    ("total_spent > 1.5", "duckdb", ['a."total_spent" > CAST(1.5 AS DOUBLE)']),
    ("email_opt_in IS NOT TRUE", "duckdb", ['NOT (COALESCE(a."email_opt_in" = TRUE, FALSE))']),
    ("country NOT IN ('US', NULL)", "clickhouse", ['a."country" = NULL', "NOT ("]),
    ("country IN ('US', 'DE')", "duckdb", ["a.\"country\" IN ('US', 'DE')"]),
]


@pytest.mark.parametrize("rule,dialect,fragments", FRAGMENTS)
def test_sql_fragments(sample_store, rule, dialect, fragments):
    sql = compile_tree(sample_store, rule, dialect=dialect, as_of=AS_OF).sql(dialect=dialect)
    for f in fragments:
        assert f in sql, f"{f!r} not in\n{sql}"


SNAPSHOT = """\
WITH sc_b1 AS (
  SELECT
    "user_id",
    COUNT(
      CASE
        WHEN "event" = 'charged'
        AND "ts" >= CAST('2026-06-01 00:00:00.000000+00:00' AS TIMESTAMPTZ)
        AND "ts" < CAST('2026-07-01 00:00:00.000000+00:00' AS TIMESTAMPTZ)
        THEN 1
      END
    ) AS sc_v0
  FROM analytics.events AS e
  WHERE
    "ts" < CAST('2026-07-01 00:00:00.000000+00:00' AS TIMESTAMPTZ)
    AND "event" IN ('charged')
    AND "ts" >= CAST('2026-06-01 00:00:00.000000+00:00' AS TIMESTAMPTZ)
  GROUP BY
    "user_id"
), sc_m2 AS (
  SELECT
    u.user_id AS "user_id"
  FROM (
    SELECT
      "user_id"
    FROM analytics.users AS x
    UNION
    SELECT
      "user_id"
    FROM sc_b1
  ) AS u
  LEFT JOIN (
    SELECT
      "user_id",
      "country"
    FROM analytics.users AS x
  ) AS a
    ON a.user_id = u.user_id
  LEFT JOIN sc_b1 AS b
    ON b.user_id = u.user_id
  WHERE
    a."country" = 'US' AND COALESCE(b.sc_v0, 0) > 0
)
SELECT
  "user_id"
FROM sc_m2
ORDER BY
  "user_id"
"""


def test_snapshot_duckdb(sample_store):
    """The whole query for one rule, reading warehouse tables."""
    sql = compile_sql(
        sample_store,
        "country = 'US' AND did('charged', within => '30 days')",
        dialect="duckdb",
        as_of=AS_OF,
        events_table="analytics.events",
        users_table="analytics.users",
    )
    assert sql == SNAPSHOT.rstrip("\n")


def test_table_names_are_quoted_when_needed(sample_store):
    sql = compile_sql(
        sample_store,
        "age > 3 OR NOT did('signed_up')",
        dialect="snowflake",
        as_of=AS_OF,
        events_table="db.my events",
        users_table="CRM.PUBLIC.Users",
    )
    assert 'db."my events"' in sql
    assert "CRM.PUBLIC.Users" in sql
    with pytest.raises(UsageError, match="bad table name"):
        compile_sql(sample_store, "age > 3", events_table="a..b")


def test_unknown_dialect_lists_them(sample_store):
    with pytest.raises(UsageError, match="unknown SQL dialect 'mysql'.*duckdb, spark, clickhouse"):
        compile_sql(sample_store, "age > 3", dialect="mysql")


def test_rule_or_segment_required(sample_store):
    with pytest.raises(RuleError, match="either a rule or a segment"):
        compile_sql(sample_store)
    with pytest.raises(RuleError, match="'nope'"):
        compile_sql(sample_store, segment="nope")


def test_store_sql_delegates(sample_store):
    assert sample_store.sql("age > 3", dialect="trino", as_of=AS_OF) == compile_sql(
        sample_store, "age > 3", dialect="trino", as_of=AS_OF
    )


def test_unknown_engine():
    with pytest.raises(UsageError, match="unknown engine 'oracle'"):
        engine_dialect("oracle")
    assert engine_dialect("chdb") == "clickhouse"


def test_polars_goes_through_the_polars_runner_not_sql(sample_store):
    from segcore.query import MembersQuery, Target, members_actors

    q = MembersQuery(Target("age > 70"), AS_OF)
    got = members_actors(sample_store, q, engine="polars")
    assert got.equals(members(sample_store, "age > 70", as_of=AS_OF))
    assert got.height > 0
    with pytest.raises(UsageError, match="the polars engine does not run SQL"):
        run_members(sample_store, "age > 70", as_of=AS_OF, engine="polars")


def test_missing_engine_package_says_what_to_install(sample_store, monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "chdb", None)  # import chdb -> ImportError
    with pytest.raises(UsageError, match=r"needs the chdb package: pip install chdb"):
        run_members(sample_store, "age > 3", engine="clickhouse")


def test_engine_errors_are_store_errors():
    with pytest.raises(StoreError, match="the duckdb engine failed"):
        run_sql("SELECT user_id FROM read_parquet('/nonexistent/x.parquet')", "duckdb")


@pytest.mark.parametrize("dialect", DIALECTS)
def test_every_rule_parses_back(sample_store, dialect):
    """Cookbook and generated rules print to SQL that sqlglot reads back as one statement."""
    schema = schema_of(sample_store)
    rules = COOKBOOK + generated_rules(7, 40)
    for text in rules:  # ok-loop: one compile per rule
        sql = compile_sql(sample_store, parse_rule(text, schema), dialect=dialect, as_of=AS_OF)
        parsed = sqlglot.parse(sql, read=dialect)
        assert len(parsed) == 1 and isinstance(parsed[0], exp.Select), text


def test_compile_tree_is_a_sqlglot_tree(sample_store):
    q = compile_tree(sample_store, "age > 30", dialect="duckdb", as_of=AS_OF)
    assert isinstance(q, exp.Select)
    assert [c.alias_or_name for c in q.expressions] == ["user_id"]


def test_json_tree_and_text_compile_alike(sample_store):
    tree = parse_rule("did('charged') AND age > 30", schema_of(sample_store))
    assert compile_sql(sample_store, tree, as_of=AS_OF) == compile_sql(
        sample_store, "did('charged') AND age > 30", as_of=AS_OF
    )


# --------------------------------------------------------------------------- hostile input
HOSTILE = [
    "it's",
    'say "hi"',
    "back\\slash",
    "trail\\",
    "-- comment",
    "/* block */",
    "x'); DROP TABLE users; --",
    "ünïcødé ☃ 日本",
    "new\nline",
    "tab\tand `tick`",
    "100% _sure_",
    "$1 ${x} {0} %s",
]
COLS = [
    "it's col",
    'we"ird',
    "back\\slash",
    "-- c",
    "/*x*/",
    "semi;col",
    "ünï ☃",
    "new\nline",
    "`tick`",
]


def _hostile_store(tiny):
    users, events = [], []
    for i in range(36):
        uid = f"u{i:02d}" if i % 5 else f"id '{i}' \\ --"
        row = {"user_id": uid}
        for j, c in enumerate(COLS):
            v = HOSTILE[(i + j) % len(HOSTILE)]
            row[c] = None if (i + j) % 7 == 0 else v
        users.append(row)
        ev = HOSTILE[i % len(HOSTILE)]
        events.append(
            (
                uid,
                ev,
                dt.datetime(2026, 1, 1 + i % 20, 12),
                {
                    "pröp 'x'": HOSTILE[(i * 5) % len(HOSTILE)],
                    "amt;--": float(i),
                    # named like the compiler's internal aliases
                    "sc_v0": i % 3,
                    "sc_is_b": i % 2,
                    "v0": i % 4,
                },
            )
        )
    return tiny(events=events, users=users)


def _hostile_rules() -> list:
    rules = []
    for j, c in enumerate(COLS):
        v = HOSTILE[j % len(HOSTILE)]
        w = HOSTILE[(j + 3) % len(HOSTILE)]
        rules += [
            Compare("=", Col(c), Lit(v, "string")),
            Not(Compare("=", Col(c), Lit(w, "string"))),
            InList(Col(c), (Lit(v, "string"), Lit(w, "string"))),
            Like(Col(c), Lit(f"%{v[1:4]}%", "string")),
            Like(Col(c), Lit(v.upper(), "string"), case_insensitive=True),
            Call("contains", (Col(c), Lit(v[:3], "string"))),
            Or(
                (
                    Call("starts_with", (Col(c), Lit(v[:2], "string"))),
                    Call("ends_with", (Col(c), Lit(v[-2:], "string"))),
                )
            ),
            Compare("=", Call("upper", (Col(c),)), Lit(v.upper(), "string")),
            Compare(">", Call("length", (Col(c),)), Lit(len(v) - 1, "int")),
        ]
    for v in HOSTILE:
        rules += [
            Behavior("did", v),
            Behavior("did", "*", where=Compare("=", Col("pröp 'x'"), Lit(v, "string"))),
            Compare(">", Behavior("event_sum", v, prop="amt;--"), Lit(3, "int")),
            And((Behavior("did", v), Not(Compare("=", Col(COLS[0]), Lit(v, "string"))))),
            Like(Col("user_id"), Lit(v[:2] + "%", "string")),
            And(
                (
                    Compare(
                        ">=",
                        Behavior("event_count", v, where=Compare("=", Col("sc_v0"), Lit(1, "int"))),
                        Lit(1, "int"),
                    ),
                    Not(Behavior("did", "*", where=Compare("=", Col("v0"), Lit(2, "int")))),
                )
            ),
            Or(
                (
                    Sequence(
                        "did_then",
                        v,
                        "*",
                        10 * 86_400_000_000,
                        where=Compare("=", Col("sc_is_b"), Lit(1, "int")),
                    ),
                    Sequence(
                        "did_then_not",
                        "*",
                        v,
                        3 * 86_400_000_000,
                        then_where=Compare("=", Col("sc_is_b"), Lit(0, "int")),
                    ),
                )
            ),
        ]
    return rules


def test_hostile_names_and_values(tiny):
    store = _hostile_store(tiny)
    rules = _hostile_rules()
    nonempty = 0
    for tree in rules:  # ok-loop: one case per rule
        expected = members(store, tree, as_of="2026-02-01")["user_id"].to_list()
        nonempty += bool(expected)
        for eng in ("duckdb", "clickhouse"):
            got = run_members(store, tree, as_of="2026-02-01", engine=eng)["user_id"].to_list()
            assert got == expected, (eng, tree)
    assert nonempty >= len(rules) // 2


def test_hostile_hand_computed(tiny):
    store = _hostile_store(tiny)
    tree = Compare("=", Col("it's col"), Lit("x'); DROP TABLE users; --", "string"))
    expected = sorted(
        f"u{i:02d}" if i % 5 else f"id '{i}' \\ --"
        for i in range(36)
        if HOSTILE[i % len(HOSTILE)] == "x'); DROP TABLE users; --" and i % 7
    )
    assert expected
    for eng in ("duckdb", "clickhouse"):
        assert (
            run_members(store, tree, as_of="2026-02-01", engine=eng)["user_id"].to_list()
            == expected
        )


@pytest.mark.parametrize("dialect", DIALECTS)
def test_hostile_text_stays_literal(tiny, dialect):
    """Every hostile value comes back from the parsed SQL as one string literal, and every
    hostile column name as one identifier: nothing leaks into the SQL as code."""
    store = _hostile_store(tiny)
    for tree in _hostile_rules()[:40]:
        sql = compile_sql(store, tree, dialect=dialect, as_of="2026-02-01")
        parsed = sqlglot.parse(sql, read=dialect)
        assert len(parsed) == 1
        strings = {lit.this for lit in parsed[0].find_all(exp.Literal) if lit.is_string}
        names = {i.this for i in parsed[0].find_all(exp.Identifier)}
        patterns = {n.pattern for n in tree.walk() if isinstance(n, Like)}
        for node in tree.walk():
            if isinstance(node, Lit) and node.type == "string" and node not in patterns:
                assert node.value in strings, (node.value, dialect)
            if isinstance(node, Col):
                assert node.name in names, (node.name, dialect)
        assert not list(parsed[0].find_all(exp.Drop))


def test_docs_show_the_sql_of_today(sample_store):
    """docs/engines.md prints the real output of the compiler for its example."""
    from pathlib import Path

    doc = (Path(__file__).resolve().parents[2] / "docs" / "engines.md").read_text()
    shown = doc.split("```sql\n", 1)[1].split("```", 1)[0].rstrip("\n")
    rule = (
        "country = 'US' AND event_count('charged', within => '30 days') >= 2 AND "
        "did_then_not('added_to_cart', 'charged', gap => '10 minutes', within => '7 days')"
    )
    sql = compile_sql(
        sample_store,
        rule,
        dialect="spark",
        as_of=AS_OF,
        events_table="analytics.events",
        users_table="analytics.users",
    )
    assert shown == sql
