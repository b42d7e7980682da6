"""One semantics suite for every engine: each analytic (funnels aside) x DuckDB,
ClickHouse (chdb) and Spark (local) against the Polars runner, on generated stores.

The stores hold NULL attributes, NULL lists and NULL list elements, events tied on
the same instant, events exactly on window and day boundaries, users with no
events and events of users not in the users table, static, dynamic, nested and
empty saved segments. A case is a query (and, for drill-downs, its arguments);
:func:`run_case` runs one on any engine and :func:`suite_cases` lists them, so
another fixture (a Spark standalone cluster) can run a representative subset with
``run_case(case, build_stores(root), Engine("spark", master))`` and compare it with the
case's result on ``"polars"`` (a process holds one Spark master: call
``segcore.engine.sql.engines.stop_spark()`` before switching from ``local[2]``).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import random
from collections.abc import Callable
from pathlib import Path
from typing import Any

import polars as pl
import pytest

from segcore import Store
from segcore.engine.choice import Engine
from segcore.engine.rules import schema_of
from segcore.lang.parser import parse_rule
from segcore.lang.tree import to_json
from segcore.query import runners
from segcore.query.base import DateRange, Period, Target
from segcore.query.queries import (
    EngagementQuery,
    EngagementTrendQuery,
    EventQuery,
    MembersQuery,
    OverlapQuery,
    ProfileQuery,
    ReachQuery,
    TrendQuery,
)
from segcore.sample import generate
from tests.conftest import make_store

SQL_ENGINES = ("duckdb", "clickhouse", "spark")
AS_OF = "2026-06-30"
RANGE = DateRange("2026-06-22", "2026-06-28")


# --------------------------------------------------------------------------- stores
def build_sample(home: Path) -> Store:
    """A 150-user, 40-day sample with NULL lists / elements and NULL ages mixed in, and
    saved segments: dynamic ``buyers``, static ``picked``, empty static ``nobody``,
    nested ``outer`` (buyers, not picked, age > 30)."""
    generate(home, users=150, days=40, end=AS_OF, seed=11)
    store = Store(home)
    for f in store.user_files():  # ok-loop: one rewrite per users file
        users = pl.read_parquet(f).with_row_index("__i")
        i = pl.col("__i")
        tags = (
            pl.when(i % 9 == 0).then(pl.lit(None, dtype=pl.List(pl.String)))
            .when(i % 13 == 0)
            .then(pl.col("tags").list.concat(pl.lit([None], dtype=pl.List(pl.String))))
            .otherwise(pl.col("tags"))
        )
        age = pl.when(i % 7 == 0).then(None).otherwise(pl.col("age"))
        users.with_columns(tags.alias("tags"), age.alias("age")).drop("__i").write_parquet(f)
    store = Store(home)
    schema = schema_of(store)
    buyers = parse_rule("did('charged', within => '30 days')", schema)
    store.catalog.create("buyers", rule_text=str(buyers), rule_json=to_json(buyers))
    ids = sorted(pl.read_parquet(store.user_files()[0])["user_id"].to_list())[::4]
    store.catalog.create("picked", kind="static", members=[*ids, "nobody-x"])
    store.catalog.create("nobody", kind="static", members=[])
    outer = parse_rule("in_segment('buyers') AND NOT in_segment('picked') AND age > 30",
                       schema_of(store))
    store.catalog.create("outer", rule_text=str(outer), rule_json=to_json(outer))
    return Store(home)


def build_edges(home: Path) -> Store:
    """Events on whole hours around the days of RANGE (ties, events exactly at the end
    of a day, at T - 7 days), users without events and events of unknown users."""
    r = random.Random(5)
    end = dt.datetime(2026, 6, 29)
    events = []
    for i in range(24):
        for _ in range(r.randint(0, 10)):
            hours = r.choice([0, 1, 24, 25, 48, 72, 96, 167, 168, 169, 240, 336, 720])
            events.append((f"g{i:02d}", r.choice(["a", "b", "c"]),
                           end - dt.timedelta(hours=hours),
                           {"n": r.choice([None, 1, 2.5, 5]), "k": r.choice([None, "x", "y"])}))
    events += [("g01", "a", end - dt.timedelta(hours=24), {"n": 1, "k": "x"})] * 3  # ties
    users = [{"user_id": f"g{i:02d}", "tier": r.choice([None, 1, 2, 3]),
              "plan": r.choice([None, "free", "pro"]),
              "labs": r.choice([None, [], ["x"], ["y", None], ["x", "y"]])}
             for i in range(0, 30, 2)]
    store = make_store(home, events, users)
    store.catalog.create("none", kind="static", members=[])
    return store


def build_stores(root: Path) -> dict[str, Store]:
    """The suite's stores under ``root`` (by the names ``Case.store`` uses)."""
    return {"sample": build_sample(root / "sample"), "edges": build_edges(root / "edges")}


# --------------------------------------------------------------------------- cases
@dataclasses.dataclass(frozen=True)
class Case:
    """One query on one store; ``call`` runs it on an engine (a runner or drill-down)."""

    id: str
    store: str
    call: Callable[[Store, Engine], Any]
    representative: bool = False  # in the subset run on a Spark cluster


def _q(runner, query, **kw) -> Callable[[Store, Engine], Any]:
    return lambda store, engine: runner(store, query, engine=engine, **kw)


def _rule(text: str) -> Target:
    return Target(rule=text)


def suite_cases() -> list[Case]:
    """Every case of the suite (``representative`` ones for a Spark cluster)."""
    trend_q = TrendQuery(_rule("did('charged', within => '7 days')"), RANGE)
    edge_trend = TrendQuery(_rule("event_count('a', within => '2 days') >= 1 OR tier = 2"),
                            RANGE)
    return [
        Case("members", "sample", _q(runners.run_members, MembersQuery(
            _rule("country = 'DE' OR age > 50"), AS_OF, share_of_all=True)), True),
        Case("members-nested", "sample", _q(runners.run_members, MembersQuery(
            Target(segment="outer"), AS_OF))),
        Case("members-static-ids", "sample", _q(runners.members_actors, MembersQuery(
            Target(segment="picked"), AS_OF))),
        Case("members-empty", "sample", _q(runners.run_members, MembersQuery(
            Target(segment="nobody"), AS_OF, share_of_all=True))),
        Case("trend-day", "sample", _q(runners.run_trend, trend_q), True),
        Case("trend-week-nested", "sample", _q(runners.run_trend, TrendQuery(
            Target(segment="outer"), DateRange("2026-06-01", "2026-06-28"), Period.WEEK))),
        Case("trend-entered", "sample",
             lambda s, e: runners.trend_actors(s, trend_q, "2026-06-25", "entered", engine=e)),
        Case("trend-exited-week", "sample",
             lambda s, e: runners.trend_actors(
                 s, dataclasses.replace(trend_q, every=Period.WEEK), "2026-06-25", "exited",
                 engine=e)),
        Case("trend-edges", "edges", _q(runners.run_trend, edge_trend)),
        Case("trend-edges-entered", "edges",
             lambda s, e: runners.trend_actors(s, edge_trend, "2026-06-26", "entered",
                                               engine=e)),
        Case("reach", "sample", _q(runners.run_reach, ReachQuery(
            _rule("did('page_viewed', within => '14 days')"), AS_OF)), True),
        Case("reach-empty", "sample", _q(runners.run_reach, ReachQuery(
            Target(segment="nobody"), AS_OF))),
        Case("reach-ids", "sample",
             lambda s, e: runners.reach_actors(s, ReachQuery(Target(segment="buyers"), AS_OF),
                                               "email", engine=e)),
        Case("profile", "sample", _q(runners.run_profile, ProfileQuery(
            Target(segment="buyers"), AS_OF,
            attributes=("country", "age", "tags", "email_opt_in", "created_at",
                        "total_spent", "subscription_end_date"), top=4, bins=5)), True),
        Case("profile-edges", "edges", _q(runners.run_profile, ProfileQuery(
            _rule("did('a')"), "2026-06-28", attributes=("tier", "plan", "labs"), top=1,
            bins=3))),
        Case("overlap", "sample", _q(runners.run_overlap, OverlapQuery(
            ("buyers", "picked", "outer", "age >= 40"), AS_OF)), True),
        Case("overlap-empty", "edges", _q(runners.run_overlap, OverlapQuery(
            ("none", "did('b', within => '1 day')"), "2026-06-28"))),
        Case("engagement", "sample", _q(runners.run_engagement, EngagementQuery(
            _rule("country IS NOT NULL"), AS_OF, goal="charged", goal_within="14 days")),
             True),
        Case("engagement-trend", "edges", _q(runners.run_engagement_trend, EngagementTrendQuery(
            _rule("tier IS NULL OR did('c')"), DateRange("2026-06-24", "2026-06-28"),
            goal="b", goal_within="1 day"))),
        Case("events-day", "sample", _q(runners.run_events, EventQuery(
            ("charged", "added_to_cart"), RANGE)), True),
        Case("events-week-by", "sample", _q(runners.run_events, EventQuery(
            ("page_viewed", "product_viewed"), DateRange("2026-06-03", "2026-06-28"),
            Period.WEEK, by="category", top=3))),
        Case("events-by-number", "edges", _q(runners.run_events, EventQuery(
            ("a", "b"), RANGE, by="n", top=2, where="k IS NOT NULL OR n > 1"))),
        Case("events-compare", "sample", _q(runners.run_events, EventQuery(
            ("charged",), RANGE, compare=("buyers", "outer", "nobody")))),
        Case("events-segment", "sample", _q(runners.run_events, EventQuery(
            ("page_viewed",), RANGE, segment="picked", where="page IS NOT NULL"))),
    ]


def comparable(result: Any) -> Any:
    """A result as plain data, floats rounded to 9 significant digits (SQL means are
    sums over counted values: equal to the Polars mean but for the last bits)."""
    if isinstance(result, pl.DataFrame):
        return {"schema": {k: str(v) for k, v in result.schema.items()},
                "rows": comparable(result.to_dicts())}
    if dataclasses.is_dataclass(result) and not isinstance(result, type):
        return {f.name: comparable(getattr(result, f.name))
                for f in dataclasses.fields(result)}
    if isinstance(result, dict):
        return {k: comparable(v) for k, v in result.items()}
    if isinstance(result, list | tuple):
        return [comparable(v) for v in result]
    if isinstance(result, float):
        return float(f"{result:.9g}")
    return result


def run_case(case: Case, stores: dict[str, Store], engine: Engine | str) -> Any:
    """The comparable result of ``case`` on ``engine``."""
    return comparable(case.call(stores[case.store], Engine.parse(engine)))


# --------------------------------------------------------------------------- tests
@pytest.fixture(scope="module")
def stores(tmp_path_factory) -> dict[str, Store]:
    return build_stores(tmp_path_factory.mktemp("suite"))


@pytest.fixture(scope="module")
def expected(stores) -> dict[str, Any]:
    return {c.id: run_case(c, stores, "polars") for c in suite_cases()}


CASES = suite_cases()


@pytest.mark.parametrize("engine", SQL_ENGINES)
@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_same_result_as_polars(case, engine, stores, expected):
    assert run_case(case, stores, engine) == expected[case.id]


def test_cases_are_not_trivial(expected):
    """The fixtures exercise what they claim: members, changes, regions, tags, groups."""
    assert expected["members"]["members"] > 0
    assert expected["members-empty"]["members"] == 0
    points = expected["trend-day"]["points"]["rows"]
    assert any(p["entered"] for p in points) and any(p["exited"] for p in points)
    assert expected["trend-entered"]["rows"] and expected["trend-edges-entered"]["rows"]
    assert len(expected["overlap"]["report"]["regions"]) >= 4
    tags = expected["profile"]["report"]["attributes"]["tags"]["values"]
    assert any(r["value"] == "(none)" for r in tags)
    assert {r["value"] for r in expected["events-week-by"]["rows"]["rows"]} >= {"other"}
    assert {r["value"] for r in expected["events-by-number"]["rows"]["rows"]} >= {"(none)"}


def test_stores_have_the_edges(stores):
    ev = pl.concat([pl.read_parquet(f) for f in stores["edges"].event_files()])
    assert ev.group_by("user_id", "event", "ts").len()["len"].max() >= 3  # ties
    assert (ev["ts"].dt.hour() == 0).sum() > 0  # exactly at a day's end
