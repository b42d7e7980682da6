"""Retention, lifecycle and stickiness (segcore.analytics.retention, the queries and runners,
the SQL engines, the CLI): hand-computed tables on a small store, a differential test
against independent per-period SQL in DuckDB on generated data, and engine equality."""

from __future__ import annotations

import datetime as dt
import json

import duckdb
import polars as pl
import pytest

from segcore.cli import main
from segcore.errors import ConflictError, UsageError
from segcore.query import (
    DateRange,
    LifecycleQuery,
    Period,
    RetentionQuery,
    StickinessQuery,
    lifecycle_actors,
    query_from_json,
    retention_actors,
    run_lifecycle,
    run_retention,
    run_stickiness,
    save_actors,
    stickiness_actors,
)
from segcore.segments import create_segment

# June 2026: Monday 1, 8, 15, 22, 29. Weeks W0 = May 25, W1 = Jun 1, W2 = Jun 8, W3 = Jun 15,
# W4 = Jun 22.
EVENTS = [
    ("u1", "signup", "2026-06-01T10:00"), ("u1", "login", "2026-06-01T12:00"),
    ("u1", "login", "2026-06-02T08:00"), ("u1", "login", "2026-06-02T09:00"),
    ("u1", "login", "2026-06-09T10:00"), ("u1", "login", "2026-06-23T10:00"),
    ("u2", "signup", "2026-06-03T10:00"), ("u2", "login", "2026-06-17T10:00"),
    ("u3", "signup", "2026-06-08T10:00"), ("u3", "signup", "2026-06-15T10:00"),
    ("u3", "login", "2026-06-16T10:00"),
    ("u4", "signup", "2026-05-20T10:00"), ("u4", "signup", "2026-06-02T10:00"),
    ("u4", "login", "2026-06-10T10:00"),
    ("u5", "signup", "2026-06-22T10:00"), ("u5", "login", "2026-07-03T10:00"),
    ("u6", "login", "2026-05-25T10:00"), ("u6", "login", "2026-06-09T10:00"),
]
JUNE = DateRange.of("2026-06-01", "2026-06-21")


@pytest.fixture
def small(tiny):
    store = tiny(EVENTS, [{"user_id": f"u{i}", "plan": "free"} for i in range(1, 7)])
    create_segment(store, "P", ids=["u1", "u3"])
    create_segment(store, "Q", ids=["u2", "u3"])
    create_segment(store, "Signed up today", "did('signup', within => '1 day')")
    return store


def table(result, segment=None) -> dict[str, tuple[int, list[int]]]:
    return {c["period"]: (c["size"], c["retained"]) for c in result.cohorts(segment)}


def ret(store, engine=None, **kw) -> object:
    base = {"start_event": "signup", "return_event": "login", "range": JUNE, "every": "week",
            "periods": 3}
    return run_retention(store, RetentionQuery(**{**base, **kw}), engine)


# --------------------------------------------------------------------------- retention
def test_first_time_weekly_cohorts(small):
    r = ret(small)
    # u4 first signed up in May: no cohort; W3 has no first-time signup (an empty cohort)
    assert table(r) == {"2026-06-01": (2, [1, 1, 1, 1]), "2026-06-08": (1, [0, 1, 0, 0]),
                        "2026-06-15": (0, [0, 0, 0, 0])}
    d = r.to_dict()
    assert d["cohorts"][0]["shares"] == [0.5, 0.5, 0.5, 0.5]
    assert d["cohorts"][2]["shares"] == [0.0, 0.0, 0.0, 0.0]
    # average: a cohort counts at k when its period k has begun by the last week (W3)
    assert [(a["cohorts"], a["size"], a["retained"], a["share"]) for a in d["average"]] == [
        (3, 3, 1, 1 / 3), (2, 3, 2, 2 / 3), (1, 2, 1, 0.5), (0, 0, 0, None)]


def test_recurring_and_on_or_after(small):
    assert table(ret(small, recurring=True)) == {
        "2026-06-01": (3, [1, 2, 1, 1]), "2026-06-08": (1, [0, 1, 0, 0]),
        "2026-06-15": (1, [1, 0, 0, 0])}
    assert table(ret(small, on_or_after=True)) == {
        "2026-06-01": (2, [2, 2, 2, 1]), "2026-06-08": (1, [1, 1, 0, 0]),
        "2026-06-15": (0, [0, 0, 0, 0])}


def test_month_and_day_periods(small):
    may_june = DateRange.of("2026-05-01", "2026-06-30")
    assert table(ret(small, range=may_june, every="month", periods=1)) == {
        "2026-05-01": (1, [0, 1]), "2026-06-01": (4, [3, 1])}
    days = DateRange.of("2026-06-01", "2026-06-03")
    assert table(ret(small, range=days, every="day", periods=2)) == {
        "2026-06-01": (1, [1, 1, 0]), "2026-06-02": (0, [0, 0, 0]), "2026-06-03": (1, [0, 0, 0])}


def test_cohorts_by_segment_entered(small):
    # "Signed up today": entered on each signup day (u1 Jun 1, u4 Jun 2, u2 Jun 3, u3 Jun 8, 15)
    seg = {"start_event": None, "entered": "Signed up today"}
    assert table(ret(small, **seg)) == {
        "2026-06-01": (3, [1, 2, 1, 1]), "2026-06-08": (1, [0, 1, 0, 0]),
        "2026-06-15": (0, [0, 0, 0, 0])}
    assert table(ret(small, recurring=True, **seg)) == table(ret(small, recurring=True))
    for engine in ("duckdb", "clickhouse"):  # the entries of the trend's grid, in SQL
        for kw in ({}, {"recurring": True}, {"every": "day", "compare": ("P", "Q")}):
            assert ret(small, engine, **seg, **kw).to_dict() == ret(small, **seg, **kw).to_dict()


def test_population_and_breakdown(small):
    assert table(ret(small, segment="P")) == {
        "2026-06-01": (1, [1, 1, 0, 1]), "2026-06-08": (1, [0, 1, 0, 0]),
        "2026-06-15": (0, [0, 0, 0, 0])}
    r = ret(small, compare=("P", "Q"))
    assert table(r, "P") == table(ret(small, segment="P"))
    assert table(r, "Q") == {"2026-06-01": (1, [0, 0, 1, 0]), "2026-06-08": (1, [0, 1, 0, 0]),
                             "2026-06-15": (0, [0, 0, 0, 0])}
    assert [s["segment"] for s in r.to_dict()["segments"]] == ["P", "Q"]
    # a population restricts every breakdown segment
    assert table(ret(small, compare=("P", "Q"), segment="P"), "Q")["2026-06-01"] == (0, [0] * 4)


def test_cell_users_and_save(small):
    q = RetentionQuery("signup", "login", JUNE, "week", 3, recurring=True)
    assert retention_actors(small, q, "2026-06-03")["user_id"].to_list() == ["u1", "u2", "u4"]
    assert retention_actors(small, q, "2026-06-01", 1)["user_id"].to_list() == ["u1", "u4"]
    q2 = RetentionQuery("signup", "login", JUNE, "week", 3, on_or_after=True)
    assert retention_actors(small, q2, "2026-06-01", 2)["user_id"].to_list() == ["u1", "u2"]
    qb = RetentionQuery("signup", "login", JUNE, "week", 3, compare=("P", "Q"))
    assert retention_actors(small, qb, "2026-06-01", 2, "Q")["user_id"].to_list() == ["u2"]
    users = retention_actors(small, q, "2026-06-01", 1)
    assert save_actors(small, users, "Came back")["members"] == 2
    assert sorted(small.catalog.members("Came back")) == ["u1", "u4"]
    with pytest.raises(ConflictError):
        save_actors(small, users, "Came back")


# --------------------------------------------------------------------------- lifecycle, stickiness
def test_lifecycle_weekly(small):
    r = run_lifecycle(small, LifecycleQuery("login", JUNE, "week"))
    assert r.table.rows() == [
        (dt.date(2026, 6, 1), 1, 0, 0, -1),   # u1 new; u6 (active May 25) dormant
        (dt.date(2026, 6, 8), 1, 1, 1, 0),    # u4 new, u1 returning, u6 resurrecting
        (dt.date(2026, 6, 15), 2, 0, 0, -3),  # u2, u3 new; u1, u4, u6 dormant
    ]
    assert r.to_dict()["periods"][2]["quick_ratio"] == 2 / 3
    q = LifecycleQuery("login", JUNE, "week")
    assert lifecycle_actors(small, q, "2026-06-17", "dormant")["user_id"].to_list() == [
        "u1", "u4", "u6"]
    assert lifecycle_actors(small, q, "2026-06-08", "resurrecting")["user_id"].to_list() == ["u6"]
    pop = run_lifecycle(small, LifecycleQuery("login", JUNE, "week", segment="P"))
    assert pop.table["dormant"].to_list() == [0, 0, -1]


def test_stickiness(small):
    r = run_stickiness(small, StickinessQuery("login", JUNE, "week"))
    got = {p["period"]: p["days"] for p in r.to_dict()["periods"]}
    assert got == {"2026-06-01": [0, 1, 0, 0, 0, 0, 0], "2026-06-08": [3, 0, 0, 0, 0, 0, 0],
                   "2026-06-15": [2, 0, 0, 0, 0, 0, 0]}
    month = run_stickiness(small, StickinessQuery("login", JUNE, "month")).to_dict()["periods"]
    assert len(month) == 1 and len(month[0]["days"]) == 30
    assert month[0]["days"][:3] == [4, 0, 1] and month[0]["users"] == 5
    q = StickinessQuery("login", JUNE, "month")
    assert stickiness_actors(small, q, "2026-06-01", 3)["user_id"].to_list() == ["u1"]


# --------------------------------------------------------------------------- queries
@pytest.mark.parametrize("query", [
    RetentionQuery("signup", "login", JUNE, "month", 4, recurring=True, on_or_after=True,
                   segment="P", compare=("P", "Q")),
    RetentionQuery(None, "login", JUNE, entered="P"),
    LifecycleQuery("login", JUNE, "day", segment="P"),
    StickinessQuery("login", JUNE, "month"),
])
def test_queries_round_trip_and_hash(query):
    assert query_from_json(query.to_json()) == query
    assert type(query).from_json(query.to_json()) == query
    assert hash(query) == hash(type(query).from_dict(json.loads(query.to_json())))


@pytest.mark.parametrize("build, message", [
    (lambda: RetentionQuery("a", "b"), "needs a range"),
    (lambda: RetentionQuery(None, "b", JUNE), "start event or a segment"),
    (lambda: RetentionQuery("a", "b", JUNE, entered="S"), "not both"),
    (lambda: RetentionQuery("a", None, JUNE), "return event"),
    (lambda: RetentionQuery("a", "b", JUNE, periods=0), "positive"),
    (lambda: RetentionQuery("a", "b", JUNE, periods=401), "at most 400"),
    (lambda: RetentionQuery("a", "b", JUNE, every="year"), "use day or week or month"),
    (lambda: LifecycleQuery("", JUNE), "event name"),
    (lambda: StickinessQuery("a", None), "needs a range"),
])
def test_queries_are_validated(build, message):
    with pytest.raises(UsageError, match=message):
        build()


def test_unknown_events_and_trend_keeps_day_and_week(small):
    with pytest.raises(UsageError, match="unknown return event 'nope'"):
        ret(small, return_event="nope")
    with pytest.raises(UsageError, match="use day or week"):
        Period.parse("month")
    assert Period.parse("month", ("day", "week", "month")) is Period.MONTH


# --------------------------------------------------------------------------- engines
@pytest.mark.parametrize("engine", ["duckdb", "clickhouse"])
def test_sql_engines_give_the_same_tables(small, engine):
    for kw in ({}, {"recurring": True}, {"on_or_after": True}, {"every": "month", "periods": 1},
               {"every": "day", "periods": 5}, {"segment": "P", "compare": ("P", "Q")}):
        assert ret(small, engine, **kw).to_dict() == ret(small, **kw).to_dict(), kw
    for every in ("day", "week", "month"):
        for seg in (None, "P"):
            lq = LifecycleQuery("login", JUNE, every, seg)
            assert run_lifecycle(small, lq, engine).table.equals(run_lifecycle(small, lq).table)
            sq = StickinessQuery("login", JUNE, every, seg)
            assert run_stickiness(small, sq, engine).table.equals(
                run_stickiness(small, sq).table)


@pytest.mark.parametrize("engine", ["duckdb", "clickhouse"])
def test_sql_engines_give_the_same_cell_users(small, engine):
    def same(actors, *args):
        want = actors(small, *args)
        assert actors(small, *args, engine=engine).equals(want), args
        return want["user_id"].to_list()

    q = RetentionQuery("signup", "login", JUNE, "week", 3, recurring=True)
    assert same(retention_actors, q, "2026-06-03") == ["u1", "u2", "u4"]
    assert same(retention_actors, q, "2026-06-01", 1) == ["u1", "u4"]
    q2 = RetentionQuery("signup", "login", JUNE, "week", 3, on_or_after=True)
    assert same(retention_actors, q2, "2026-06-01", 2) == ["u1", "u2"]
    qb = RetentionQuery("signup", "login", JUNE, "week", 3, compare=("P", "Q"))
    assert same(retention_actors, qb, "2026-06-01", 2, "Q") == ["u2"]
    qe = RetentionQuery(None, "login", JUNE, "week", 3, entered="Signed up today")
    assert same(retention_actors, qe, "2026-06-01", 1) == ["u1", "u4"]
    with pytest.raises(UsageError, match="k must be a period from 0 to 3"):
        retention_actors(small, q, "2026-06-01", 4, engine=engine)
    lq = LifecycleQuery("login", JUNE, "week")
    assert same(lifecycle_actors, lq, "2026-06-17", "dormant") == ["u1", "u4", "u6"]
    assert same(lifecycle_actors, lq, "2026-06-08", "resurrecting") == ["u6"]
    with pytest.raises(UsageError, match="bad status"):
        lifecycle_actors(small, lq, "2026-06-08", "gone", engine=engine)
    sq = StickinessQuery("login", JUNE, "month")
    assert same(stickiness_actors, sq, "2026-06-01", 3) == ["u1"]


def test_sql_engines_on_generated_data(writable_sample):
    store = writable_sample
    create_segment(store, "Buyers", "did('charged')")
    rng = DateRange.of("2026-04-06", "2026-06-28")
    for q in (
        RetentionQuery("signed_up", "app_launched", rng, "week", 4),
        RetentionQuery("app_launched", "charged", rng, "month", 2, recurring=True,
                       on_or_after=True, compare=("Buyers",)),
    ):
        want = run_retention(store, q).to_dict()
        for engine in ("duckdb", "clickhouse"):
            assert run_retention(store, q, engine).to_dict() == want
    for every in ("week", "month"):
        lq = LifecycleQuery("charged", rng, every, "Buyers")
        want_l = run_lifecycle(store, lq).table
        sq = StickinessQuery("app_launched", rng, every)
        want_s = run_stickiness(store, sq).table
        for engine in ("duckdb", "clickhouse"):
            assert run_lifecycle(store, lq, engine).table.equals(want_l)
            assert run_stickiness(store, sq, engine).table.equals(want_s)


# --------------------------------------------------------------------------- differential
def _next(day: dt.date, every: str, n: int = 1) -> dt.date:
    if every == "day":
        return day + dt.timedelta(days=n)
    if every == "week":
        return day + dt.timedelta(days=7 * n)
    m = day.year * 12 + day.month - 1 + n
    return dt.date(m // 12, m % 12 + 1, 1)


def _first(day: dt.date, every: str) -> dt.date:
    if every == "week":
        return day - dt.timedelta(days=day.weekday())
    return day.replace(day=1) if every == "month" else day


def _ts(day: dt.date) -> str:
    return f"TIMESTAMPTZ '{day.isoformat()} 00:00:00+00:00'"


class Reference:
    """Retention, lifecycle and stickiness by one plain SQL query per period and cell."""

    def __init__(self, store):
        files = ", ".join(f"'{f}'" for f in store.event_files())
        self.con = duckdb.connect()
        self.con.execute("SET TimeZone = 'UTC'")
        self.con.execute(f"CREATE VIEW ev AS SELECT user_id, event, ts FROM read_parquet([{files}])")

    def users(self, sql: str) -> set[str]:
        return {r[0] for r in self.con.execute(sql).fetchall()}

    def did(self, event: str, lo: dt.date | None, hi: dt.date | None) -> str:
        cond = [f"event = '{event}'"]
        cond += [f"ts >= {_ts(lo)}"] if lo else []
        cond += [f"ts < {_ts(hi)}"] if hi else []
        return f"SELECT DISTINCT user_id FROM ev WHERE {' AND '.join(cond)}"

    def periods(self, start: dt.date, end: dt.date, every: str) -> list[dt.date]:
        out, p = [], _first(start, every)
        while p <= end:
            out.append(p)
            p = _next(p, every)
        return out

    def retention(self, start_event, return_event, start, end, every, n, recurring, after):
        last = end + dt.timedelta(days=1)
        out = {}
        for p in self.periods(start, end, every):
            lo, hi = max(p, start), min(_next(p, every), last)
            if recurring:
                cohort = self.users(self.did(start_event, lo, hi))
            else:
                cohort = self.users(
                    f"SELECT user_id FROM ev WHERE event = '{start_event}' GROUP BY user_id "
                    f"HAVING MIN(ts) >= {_ts(lo)} AND MIN(ts) < {_ts(hi)}")
            row = []
            for k in range(n + 1):
                back = self.users(self.did(return_event, _next(p, every, k),
                                           None if after else _next(p, every, k + 1)))
                row.append(len(cohort & back))
            out[p.isoformat()] = (len(cohort), row)
        return out

    def lifecycle(self, event, start, end, every):
        rows = []
        for p in self.periods(start, end, every):
            before, nxt = _next(p, every, -1), _next(p, every)
            now = self.users(self.did(event, p, min(nxt, end + dt.timedelta(days=1))))
            prev = self.users(self.did(event, before, p))
            earlier = self.users(self.did(event, None, p))
            new = now - earlier
            rows.append((p, len(new), len(now & prev), len(now - prev - new), -len(prev - now)))
        return rows

    def stickiness(self, event, start, end, every):
        out = {}
        last = end + dt.timedelta(days=1)
        for p in self.periods(start, end, every):
            lo, hi = max(p, start), min(_next(p, every), last)
            counts = dict(self.con.execute(
                f"SELECT n, COUNT(*) FROM (SELECT user_id, COUNT(DISTINCT CAST(ts AS DATE)) AS n "
                f"FROM ev WHERE event = '{event}' AND ts >= {_ts(lo)} AND ts < {_ts(hi)} "
                "GROUP BY user_id) GROUP BY n").fetchall())
            out[p.isoformat()] = [counts.get(d, 0) for d in range(1, (_next(p, every) - p).days + 1)]
        return out


@pytest.mark.parametrize("every, start, end, n", [
    ("day", "2026-06-10", "2026-06-20", 4),
    ("week", "2026-04-08", "2026-06-30", 3),
    ("month", "2026-03-15", "2026-06-30", 2),
])
def test_differential_against_per_period_sql(sample_store, every, start, end, n):
    ref = Reference(sample_store)
    s, e = dt.date.fromisoformat(start), dt.date.fromisoformat(end)
    rng = DateRange.of(start, end)
    for start_event, return_event in (("signed_up", "app_launched"), ("app_launched", "charged")):
        for recurring in (False, True):
            for after in (False, True):
                q = RetentionQuery(start_event, return_event, rng, every, n, recurring, after)
                got = table(run_retention(sample_store, q))
                assert got == ref.retention(start_event, return_event, s, e, every, n,
                                            recurring, after), (start_event, recurring, after)
    lc = run_lifecycle(sample_store, LifecycleQuery("charged", rng, every)).table
    assert lc.rows() == ref.lifecycle("charged", s, e, every)
    st = run_stickiness(sample_store, StickinessQuery("app_launched", rng, every)).to_dict()
    assert {p["period"]: p["days"] for p in st["periods"]} == ref.stickiness(
        "app_launched", s, e, every)


# --------------------------------------------------------------------------- CLI
def test_cli_retention_json_and_cells(small, capsys, tmp_path):
    home = str(small.home)
    args = ["retention", "--home", home, "--start-event", "signup", "--return-event", "login",
            "--every", "week", "--periods", "3", "--from", "2026-06-01", "--to", "2026-06-21"]
    assert main([*args, "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert [(c["period"], c["size"], c["retained"]) for c in out["cohorts"]] == [
        ("2026-06-01", 2, [1, 1, 1, 1]), ("2026-06-08", 1, [0, 1, 0, 0]),
        ("2026-06-15", 0, [0, 0, 0, 0])]
    assert main([*args, "--engine", "duckdb", "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == out
    assert main([*args, "--segment", "P", "--segment", "Q", "--json"]) == 0
    assert [s["segment"] for s in json.loads(capsys.readouterr().out)["segments"]] == ["P", "Q"]
    assert main(args) == 0
    assert "average" in capsys.readouterr().out
    csv = tmp_path / "cell.csv"
    assert main([*args, "--users", "2026-06-01:1", "--export", str(csv), "--save-users", "Back",
                 "--json"]) == 0
    cell = json.loads(capsys.readouterr().out)
    assert cell["users"] == ["u1"] and cell["saved"]["members"] == 1
    assert pl.read_csv(csv)["user_id"].to_list() == ["u1"]
    assert main([*args, "--save-users", "X"]) == 2
    assert "go with --users" in capsys.readouterr().err
    assert main([*args[:-2], "--to", "2026-05-01"]) == 2


def test_cli_lifecycle_and_stickiness(small, capsys):
    home = str(small.home)
    rng = ["--from", "2026-06-01", "--to", "2026-06-21"]
    assert main(["lifecycle", "--home", home, "--event", "login", *rng, "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)["periods"]
    assert [(r["new"], r["returning"], r["resurrecting"], r["dormant"]) for r in rows] == [
        (1, 0, 0, -1), (1, 1, 1, 0), (2, 0, 0, -3)]
    assert main(["lifecycle", "--home", home, "--event", "login", *rng,
                 "--users", "2026-06-15:dormant", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["users"] == ["u1", "u4", "u6"]
    assert main(["stickiness", "--home", home, "--event", "login", *rng, "--every", "month",
                 "--engine", "clickhouse", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["periods"][0]["days"][:3] == [4, 0, 1]
    assert main(["stickiness", "--home", home, "--event", "login", *rng,
                 "--users", "2026-06-01:x"]) == 2


def test_store_api(small):
    r = small.retention("signup", "login", "2026-06-01", "2026-06-21", "week", 3)
    assert r["cohorts"][0]["retained"] == [1, 1, 1, 1]
    assert small.retention_users("2026-06-01", 3, start_event="signup", return_event="login",
                                 start="2026-06-01", end="2026-06-21", periods=3)[
        "user_id"].to_list() == ["u1"]
    assert small.lifecycle("login", "2026-06-01", "2026-06-21")["new"].to_list() == [1, 1, 2]
    assert small.lifecycle_users("login", "2026-06-08", "new", "2026-06-01", "2026-06-21")[
        "user_id"].to_list() == ["u4"]
    st = small.stickiness("login", "2026-06-01", "2026-06-21", engine="duckdb")
    assert st.filter(pl.col("users") > 0).rows() == [
        (dt.date(2026, 6, 1), 2, 1), (dt.date(2026, 6, 8), 1, 3), (dt.date(2026, 6, 15), 1, 2)]
    users = small.stickiness_users("login", "2026-06-08", 1, "2026-06-01", "2026-06-21")
    assert small.save_users("Week 2", users)["members"] == 3


def test_spark_local_gives_the_same_tables(small):
    for kw in ({"recurring": True, "on_or_after": True, "segment": "P"},
               {"every": "month", "periods": 1, "compare": ("P", "Q")}):
        assert ret(small, "spark", **kw).to_dict() == ret(small, **kw).to_dict(), kw
    lq = LifecycleQuery("login", JUNE, "week")
    assert run_lifecycle(small, lq, "spark").table.equals(run_lifecycle(small, lq).table)
    sq = StickinessQuery("login", JUNE, "month", "P")
    assert run_stickiness(small, sq, "spark").table.equals(run_stickiness(small, sq).table)
    entered = {"start_event": None, "entered": "Signed up today"}
    assert ret(small, "spark", **entered).to_dict() == ret(small, **entered).to_dict()
    cell = RetentionQuery("signup", "login", JUNE, "week", 3, recurring=True)
    assert retention_actors(small, cell, "2026-06-01", 1, engine="spark").equals(
        retention_actors(small, cell, "2026-06-01", 1))
