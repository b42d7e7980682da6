"""Funnels on DuckDB, ClickHouse (chdb) and Spark equal the Polars funnel.

Every funnel option (ordered, strict, any order, exclusions, hold constant, step
filters, strict order, deduplication, population segment, breakdown by static and
dynamic segments) x every SQL engine, through the query runners: the report (users,
conversions, time to convert), conversion over time and drop-off lists, on generated
histories full of equal instants, NULL properties and events at the range and window
edges (``tests/analytics/test_funnel_ties.py``), plus that file's hand fixtures.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

from segcore import Store
from segcore.analytics.funnel import make_spec
from segcore.engine.choice import Engine
from segcore.engine.rules import schema_of
from segcore.engine.sql.funnel import FunnelCompiler
from segcore.errors import UsageError
from segcore.lang.parser import parse_rule
from segcore.lang.tree import to_json
from segcore.query import DateRange, FunnelQuery, FunnelTrendQuery
from segcore.query.queries import Exclusion, Step
from segcore.query.runners import funnel_actors, run_funnel, run_funnel_trend
from tests.analytics.test_funnel_ties import BASE_US, FROM, HOUR, TO, Ev, histories, write_store

ENGINES = ["duckdb", "clickhouse", "spark"]


def Q(*steps: str | tuple[str, str], **options) -> FunnelQuery:
    parsed = tuple(Step(s) if isinstance(s, str) else Step(*s) for s in steps)
    options.setdefault("window", "3h")
    return FunnelQuery(steps=parsed, range=DateRange(FROM, TO), **options)


X = (Exclusion("x"),)
CASES = {
    "abc": Q("a", "b", "c", compare=("odd", "even", "busy")),
    "ab strict": Q("a", "b", strict=True, window="24h"),
    "abc hold": Q("a", "b", "c", hold="p", window="5h"),
    "abc w=0": Q("a", "b", "c", window="0h"),
    "filters": Q(("a", "p >= 1"), "b", ("c", "p <= 1"), segment="busy"),
    "abcb ties": Q("a", "b", "c", "b", compare=("odd", "busy")),
    "aca": Q("a", "c", "a", window="24h"),
    "ab strict excl": Q("a", "b", strict=True, exclusions=X, window="24h"),
    "a,a>=1,b,a": Q("a", ("a", "p >= 1"), "b", "a"),
    "any order": Q("a", "b", "c", order="any", window="4h"),
    "exclusion": Q("a", "b", "c", exclusions=X, window="6h"),
    "exclusion 1-2 hold": Q(
        "a", "b", "c", exclusions=(Exclusion("x", "p = 0", (1, 2)),), hold="p", window="6h"
    ),
    "strict order": Q("a", "b", "c", strict_order=True, window="5h", segment="odd"),
    "dedup": Q("a", "b", "a", "c", dedup=True, window="8h", compare=("even",)),
}


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Store:
    history = histories(2026, 160)
    store = write_store(tmp_path_factory.mktemp("sqlfunnel"), history)
    store.catalog.create("odd", kind="static", members=[u for u in history if int(u[1:]) % 2])
    store.catalog.create("even", kind="static", members=[u for u in history if not int(u[1:]) % 2])
    busy = parse_rule("event_count('a') >= 2", schema_of(store))  # dynamic, at the end
    store.catalog.create("busy", rule_text=str(busy), rule_json=to_json(busy))
    return store


_POLARS: dict[tuple, object] = {}  # the reference results, computed once per store


def _polars(store: Store, what: str, q, *args):
    key = (str(store.home), what, json.dumps(q.to_dict(), sort_keys=True, default=str), args)
    if key not in _POLARS:
        if what == "funnel":
            _POLARS[key] = run_funnel(store, q).to_dict()
        elif what == "actors":
            _POLARS[key] = funnel_actors(store, q, *args)
        else:
            _POLARS[key] = run_funnel_trend(store, q).rows
    return _POLARS[key]


def _same(store: Store, q: FunnelQuery, engine: str) -> None:
    assert run_funnel(store, q, engine=engine).to_dict() == _polars(store, "funnel", q)
    k = len(q.steps)
    whole = dataclasses.replace(q, compare=())
    light = engine == "spark"  # every query costs a Spark job: one drop-off list, days only
    for after in [1] if light else sorted({1, k - 1}):
        got = funnel_actors(store, whole, after, engine=engine)
        assert got.equals(_polars(store, "actors", whole, after)), after
    for every in ("day", "week") if q.compare and not light else ("day",):
        tq = FunnelTrendQuery(whole, every)
        got = run_funnel_trend(store, tq, engine=engine).rows
        assert got.equals(_polars(store, "trend", tq)), every


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("label", list(CASES))
def test_every_option_equals_polars(world: Store, label: str, engine: str) -> None:
    q = CASES[label]
    _same(world, q, engine)
    steps = _polars(world, "funnel", q)
    steps = steps["steps"] if "steps" in steps else steps["segments"][q.compare[0]]["steps"]
    assert steps[0]["users"] > steps[-1]["users"] > 0, "a weak case"


@pytest.mark.parametrize("engine", ENGINES)
def test_empty_segment_and_empty_range(world: Store, engine: str) -> None:
    world.catalog.create(f"nobody-{engine}", kind="static", members=[])
    q = Q("a", "b", segment=f"nobody-{engine}", compare=(f"nobody-{engine}",))
    _same(world, q, engine)
    r = run_funnel(world, dataclasses.replace(q, compare=()), engine=engine).to_dict()
    assert [s["users"] for s in r["steps"]] == [0, 0]
    late = dataclasses.replace(
        q, segment=None, compare=(), range=DateRange("2026-07-01", "2026-07-02")
    )
    _same(world, late, engine)


@pytest.mark.parametrize("engine", ENGINES)
def test_hand_fixtures(tmp_path: Path, engine: str) -> None:
    # tests/analytics/test_funnel_ties.py: issue 13 ties and the strict-order/dedup cases
    t, m = BASE_US + 10 * HOUR, 60_000_000
    history = {
        "u1": [Ev(t, "a", 0), Ev(t + m, "b", 0), Ev(t + 2 * m, "c", 0), Ev(t + 2 * m, "b", 0)],
        "u2": [Ev(t, "a", 0), Ev(t + m, "c", 0), Ev(t + m, "a", 0)],
        "u3": [Ev(t, "c", 0), Ev(t, "a", 0)],
        "u4": [Ev(t, "a", 0), Ev(t + m, "x", 0), Ev(t + 2 * m, "b", 0)],
        "u5": [Ev(t, "a", 0), Ev(t, "b", 0), Ev(t + m, "b", 0), Ev(t + 2 * m, "c", 0)],
    }
    store = write_store(tmp_path, history)
    day = DateRange(FROM, FROM)

    def users(*steps: str, **options) -> list[int]:
        q = FunnelQuery(steps=tuple(Step(s) for s in steps), window="1d", range=day, **options)
        return [s["users"] for s in run_funnel(store, q, engine=engine).report["steps"]]

    assert users("a", "b", "c", "b") == [5, 3, 2, 1]
    assert users("a", "c", "a") == [5, 4, 1]
    assert users("a", "b", "c") == [5, 3, 2]
    assert users("a", "b", "c", strict_order=True) == [5, 2, 2]
    assert users("a", "b", "c", dedup=True) == [5, 3, 2]
    api = store.funnel(["a", "b", "c"], "1d", FROM, FROM, strict_order=True, engine=engine)
    assert [s["users"] for s in api["steps"]] == [5, 2, 2] and api["strict_order"]
    level = FunnelCompiler(store, make_spec(store, ["a", "b"], "1d", FROM, FROM), "clickhouse")
    assert "windowFunnel(" in level.window_funnel().sql("clickhouse")


def test_filters_must_be_rule_text_on_sql(world: Store) -> None:
    import polars as pl

    spec = make_spec(world, [{"event": "a", "where": pl.col("p") >= 1}, "b"], "1h", FROM, TO)
    with pytest.raises(UsageError, match="step 1: SQL engines take where filters as rule text"):
        FunnelCompiler(world, spec, "duckdb")


def test_compiles_for_other_dialects(world: Store) -> None:
    spec = make_spec(world, ["a", {"event": "b", "where": "p >= 1"}], "1h", FROM, TO, True)
    for dialect in ("bigquery", "snowflake", "trino", "postgres"):
        c = FunnelCompiler(world, spec, dialect)
        sql = c.latest_start().sql(dialect)
        assert "RANGE BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING" in sql.upper(), dialect
    assert Engine.parse("duckdb").dialect == "duckdb"
