"""Every SQL analytic compiles for every sqlglot dialect, from trees, never from text."""

from __future__ import annotations

import datetime as dt

import pytest
import sqlglot

from segcore.engine.sql.analytics import engagement, events, members, overlap, profile, reach, trend
from segcore.engine.sql.analytics.base import target_tree
from segcore.engine.sql.dialects import DIALECTS, ClickHouse, DuckDB, Spark, dialect_of
from segcore.errors import UsageError
from segcore.lang.tree import Behavior
from tests.conftest import make_store

UTC = dt.timezone.utc
T = dt.datetime(2026, 6, 5, tzinfo=UTC)


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    s = make_store(
        tmp_path_factory.mktemp("c") / "s",
        [("u1", "charged", "2026-06-01T10:00:00", {"amount": 5.0, "src": "it's"}),
         ("u2", "viewed", "2026-06-02T00:00:00", {"amount": None, "src": None})],
        [{"user_id": "u1", "country": "DE", "tags": ["a"], "age": 30},
         {"user_id": "u2", "country": None, "tags": None, "age": None}],
    )
    s.catalog.create("few", kind="static", members=["u1"])
    return s


def selects(store, d: str) -> dict[str, object]:
    rule = "did('charged', within => '7 days') OR country = 'x''; DROP TABLE users; --'"
    inst = [T - dt.timedelta(days=k) for k in (2, 1, 0)]
    channel = target_tree(store, "country IS NOT NULL", None)
    return {
        "members": members.members_select(store, rule, None, T, d),
        "count": members.count_select(store, None, "few", T, d),
        "trend": trend.trend_select(store, rule, None, inst, d),
        "changes": trend.changes_select(store, None, "few", inst[0], inst[1], "exited", d),
        "reach": reach.reach_select(store, rule, None, T, {"c": channel}, d),
        "reach_ids": reach.reachable_select(store, rule, None, T, channel, ["country"], d),
        "overlap": overlap.overlap_select(store, [("few", True), (rule, False)], T, d),
        "engagement": engagement.engagement_select(
            store, rule, None, inst, {"a": Behavior("did", "*", within=86_400_000_000)}, d),
        "totals": events.totals_select(store, ["charged"], inst[0], T, "src", "amount > 1",
                                       "few", d),
        "report": events.report_select(store, ["charged", "viewed"], inst[0], T, "week",
                                       by="src", kept=["it's"], dialect=d),
        "compare": events.report_select(store, ["charged"], inst[0], T, "day",
                                        segments=["few"], dialect=d),
        "profile": profile.values_select(store, rule, None, T, "age", d),
        "tags": profile.tags_select(store, rule, None, T, "tags", d),
    }


@pytest.mark.parametrize("d", DIALECTS)
def test_every_analytic_compiles(store, d):
    for name, tree in selects(store, d).items():
        sql = dialect_of(d).sql(tree)
        parsed = sqlglot.parse(sql, read=d)
        assert len(parsed) == 1, (name, sql)  # one statement: injected text stayed a value


def test_dialect_classes():
    assert isinstance(dialect_of("duckdb"), DuckDB) and isinstance(dialect_of("SPARK"), Spark)
    assert dialect_of(dialect_of("clickhouse")) is dialect_of("clickhouse")
    assert ClickHouse.null_flag_lists and not DuckDB.null_flag_lists
    with pytest.raises(UsageError, match="unknown SQL dialect 'oracle'"):
        dialect_of("oracle")
    lit = dialect_of("trino").timestamp_literal(T)
    assert "2026-06-05 00:00:00.000000 UTC" in lit.sql("trino")
