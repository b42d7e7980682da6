"""The SQL trend's one pass over the events (``segcore.engine.sql.analytics.trend_pass``)
against the Polars trend on every engine: window edges, NOT/OR, attributes with
behaviour, count and sum thresholds, bounds off the clock, weekly points, a report zone
with clock changes, empty results, and rules that take the stacked fallback."""

from __future__ import annotations

import datetime as dt
import random

import polars as pl
import pytest
from sqlglot import exp

from segcore.analytics.trend import make_points
from segcore.engine.choice import Engine
from segcore.engine.sql.analytics import trend_pass
from segcore.engine.sql.analytics.base import compiler, target_tree
from segcore.engine.sql.analytics.trend import stacked_members
from segcore.engine.sql.engines import run_select
from segcore.lang.dates import report_zone
from segcore.query import runners
from segcore.query.base import DateRange, Period, Target
from segcore.query.queries import TrendQuery
from tests.conftest import make_store

END = dt.datetime(2026, 6, 29)
RANGE = ("2026-06-20", "2026-06-28")
NY, BERLIN = "America/New_York", "Europe/Berlin"

# (rule, one pass?)
RULES = [
    ("did('a', within => '1 day')", True),
    ("NOT did('b', within => '2 days')", True),
    ("did('a', within => '3 days') OR NOT did('c')", True),
    ("event_count('a', within => '7 days') >= 2 AND tier >= 2", True),
    ("event_sum('b', 'n', within => '3 days') >= 5 OR plan = 'pro'", True),
    ("event_avg('c', 'n', within => '4 days') > 2 OR NOT (tier = 1)", True),
    ("event_count('*', within => '36 hours', where => k = 'x') >= 1", True),
    ("did('a', since => today() - 2)", True),
    ("did('b', since => '2026-06-24')", True),
    ("did('c', until => today() - 1) AND NOT did('c', within => '1 day')", True),
    ("tier IS NULL", True),
    ("did('a', within => '1 day', where => k = 'zz')", True),  # empty
    ("tier = 99 AND did('a')", True),  # empty
    ("1 = 0", True),  # empty, no term and no attribute
    ("did_then('a', 'b', gap => '1 day')", False),
    ("first_seen('a') > now() - interval '3 days'", False),
    ("did('a', within => '2 days', where => ts > now() - interval '1 day')", False),
]
ZONE_RULES = [
    "did('signup', since => today())",
    "event_count('signup', within => '25 hours') >= 1",
    "did('signup', within => '1 day') OR renews = '2026-03-09'",
    "NOT did('purchase', since => today() - 1) AND did('signup')",
]
ZONE_EVENTS = [
    ("a", "signup", "2026-03-08T04:30:00"), ("a", "purchase", "2026-03-08T06:30:00"),
    ("b", "signup", "2026-03-08T05:30:00"), ("c", "signup", "2026-03-09T03:30:00"),
    ("c", "purchase", "2026-03-09T05:00:00"), ("d", "signup", "2026-03-09T04:30:00"),
    ("e", "signup", "2026-03-28T21:30:00"), ("e", "purchase", "2026-03-29T01:30:00"),
    ("f", "signup", "2026-03-29T22:00:00"), ("i", "signup", "2026-03-28T23:30:00"),
    ("j", "signup", "2026-03-29T21:30:00"), ("j", "purchase", "2026-03-30T22:00:00"),
]
ZONE_USERS = [{"user_id": u, "renews": dt.date(2026, 3, 8) if u in "ab" else dt.date(2026, 3, 9)}
              for u in "abcdefghij"]


@pytest.fixture(scope="module")
def edges(tmp_path_factory):
    """Events on whole hours: exactly at day ends, ties, users without events or attributes."""
    r = random.Random(7)
    events = []
    for i in range(30):
        for _ in range(r.randint(0, 12)):
            hours = r.choice([0, 1, 23, 24, 25, 36, 48, 72, 96, 120, 167, 168, 169, 240, 400])
            events.append((f"g{i:02d}", r.choice(["a", "b", "c"]), END - dt.timedelta(hours=hours),
                           {"n": r.choice([None, 1, 2.5, 5]), "k": r.choice([None, "x", "y"])}))
    events += [("g01", "b", END - dt.timedelta(hours=48), {"n": 2.5, "k": "x"})] * 3  # ties
    users = [{"user_id": f"g{i:02d}", "tier": r.choice([None, 1, 2, 3]),
              "plan": r.choice([None, "free", "pro"])} for i in range(0, 36, 2)]
    return make_store(tmp_path_factory.mktemp("trend_pass"), events, users)


@pytest.fixture(scope="module")
def zoned(tmp_path_factory):
    return make_store(tmp_path_factory.mktemp("trend_zone"), ZONE_EVENTS, ZONE_USERS)


def _trend(store, rule: str, engine: str, rng=RANGE, every=Period.DAY, tz=None) -> list:
    q = TrendQuery(Target(rule=rule), DateRange(*rng), every, tz=tz)
    return runners.run_trend(store, q, engine=engine).points.to_dicts()


def _one_pass(store, rule: str, rng=RANGE, every="day", tz=None) -> bool:
    with report_zone(tz or "UTC"):
        pts = make_points(rng[0], rng[1], every)
        inst = [pts.instant(j) for j in range(pts.P)]
        comp = compiler(store, inst[0], "duckdb")
        return trend_pass.plan(comp, target_tree(store, rule, None), None, inst) is not None


@pytest.mark.parametrize(("rule", "fast"), RULES)
def test_path_taken(edges, rule, fast):
    assert _one_pass(edges, rule) is fast


@pytest.mark.parametrize("engine", ["duckdb", "clickhouse"])
@pytest.mark.parametrize(("rule", "fast"), RULES)
def test_same_as_polars(edges, engine, rule, fast):
    assert _trend(edges, rule, engine) == _trend(edges, rule, "polars")


@pytest.mark.parametrize("engine", ["duckdb", "clickhouse"])
def test_weekly_points(edges, engine):
    rng = ("2026-05-25", "2026-06-28")
    for rule in ("did('a', within => '7 days')", "event_count('b') >= 2 OR tier = 3"):
        assert _one_pass(edges, rule, rng, "week")
        want = _trend(edges, rule, "polars", rng, Period.WEEK)
        assert _trend(edges, rule, engine, rng, Period.WEEK) == want


@pytest.mark.parametrize("engine", ["duckdb", "clickhouse"])
@pytest.mark.parametrize("tz", [NY, BERLIN])
def test_report_zone_with_clock_changes(zoned, engine, tz):
    rng = ("2026-03-05", "2026-04-02")  # New York's and Berlin's spring changes
    for rule in ZONE_RULES:
        assert _one_pass(zoned, rule, rng, tz=tz), rule
        want = _trend(zoned, rule, "polars", rng, tz=tz)
        assert any(p["members"] for p in want), rule
        assert _trend(zoned, rule, engine, rng, tz=tz) == want, (tz, rule)


def test_cases_are_not_trivial(edges):
    got = {rule: _trend(edges, rule, "polars") for rule, _ in RULES}
    empty = {"did('a', within => '1 day', where => k = 'zz')", "tier = 99 AND did('a')",
             "1 = 0"}
    for rule, points in got.items():
        if rule in empty:
            assert all(p["members"] == 0 for p in points)
        else:
            assert any(p["members"] for p in points), rule
    assert any(p["entered"] and p["exited"] for p in got[RULES[0][0]])


def test_spark(edges, zoned):
    """Spark (local) on a sample of the cases: one session for all of them."""
    for rule in (RULES[1][0], RULES[4][0], RULES[9][0], RULES[11][0], RULES[13][0]):
        assert _trend(edges, rule, "spark") == _trend(edges, rule, "polars"), rule
    rng = ("2026-03-05", "2026-04-02")
    for rule in ZONE_RULES[:2]:
        want = _trend(zoned, rule, "polars", rng, tz=NY)
        assert _trend(zoned, rule, "spark", rng, tz=NY) == want, rule


def test_retention_entered_cohort_uses_the_one_pass(edges):
    """A segment's entries from the one pass equal those of the stacked members."""
    rule = "did('a', within => '2 days') OR tier = 2"
    pts = make_points(*RANGE)
    inst = [pts.instant(j) for j in range(pts.P)]
    tree = target_tree(edges, rule, None)
    comp = compiler(edges, inst[0], "duckdb")
    fast = trend_pass.entries(comp, trend_pass.plan(comp, tree, None, inst))
    got = run_select(comp.finish(exp.select("user_id", "sc_j").from_(fast)), Engine.parse("duckdb"))
    comp2 = compiler(edges, inst[0], "duckdb")
    stack = stacked_members(comp2, tree, None, inst)
    rows = run_select(comp2.finish(exp.select("user_id", "sc_j").from_(stack)),
                      Engine.parse("duckdb"))
    m = {(u, j) for u, j in rows.iter_rows()}
    want = sorted((u, j) for u, j in m if j >= 1 and (u, j - 1) not in m)
    assert sorted(got.iter_rows()) == want and want
    assert isinstance(got, pl.DataFrame)
