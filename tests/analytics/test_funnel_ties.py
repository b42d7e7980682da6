"""Funnels against the definition of docs/analytics.md, enumerated on tiny histories.

The oracle below is independent of segcore's algorithms: per user it enumerates every
injective assignment of events to steps (pure Python; histories have a few events) and
applies the definition literally: ordered chains with ``ts`` non-decreasing (strict:
increasing), any order, a held property, exclusions. Histories are random and small,
with repeated step events, many equal timestamps, events around the range and window
edges and NULL properties; every production path must agree with it user by user:
levels and times to convert per step (both methods), conversion over time, drop-offs,
the segment filter and the breakdown by segments.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from segcore import Store
from segcore.analytics.funnel import (
    funnel,
    funnel_dropoffs,
    funnel_over_time,
    make_spec,
    reached,
)
from segcore.errors import UsageError

UTC = dt.timezone.utc
HOUR = 3_600_000_000
BASE = dt.datetime(2026, 6, 1, tzinfo=UTC)
BASE_US = int(BASE.timestamp()) * 1_000_000
FROM, TO = "2026-06-01", "2026-06-02"
LO, HI = BASE_US, BASE_US + 48 * HOUR  # [from, to) in us
NAMES = ["a", "b", "c", "x"]


@dataclass(frozen=True)
class Ev:
    ts: int
    event: str
    p: int | None


Pred = Callable[[int | None], bool]
ANY: Pred = lambda p: True  # noqa: E731


def ge1(p: int | None) -> bool:
    return p is not None and p >= 1


def eq0(p: int | None) -> bool:
    return p is not None and p == 0


def le1(p: int | None) -> bool:
    return p is not None and p <= 1


# each oracle predicate next to the Polars filter segcore gets
WHERE: dict[Pred, pl.Expr | None] = {
    ANY: None,
    ge1: pl.col("p") >= 1,
    eq0: pl.col("p") == 0,
    le1: pl.col("p") <= 1,
}


@dataclass(frozen=True)
class Case:
    steps: tuple[tuple[str, Pred], ...]
    window_h: int
    strict: bool = False
    any_order: bool = False
    hold: bool = False
    exclusions: tuple[tuple[int, int], ...] = ()  # spans of event 'x'
    strict_order: bool = False
    dedup: bool = False
    label: str = field(default="", compare=False)

    def seg_steps(self) -> list:
        return [e if WHERE[f] is None else {"event": e, "where": WHERE[f]} for e, f in self.steps]

    def options(self) -> dict:
        out: dict = {}
        if self.any_order:
            out["order"] = "any"
        if self.hold:
            out["hold"] = "p"
        if self.exclusions:
            out["exclusions"] = [{"event": "x", "between": list(s)} for s in self.exclusions]
        if self.strict_order:
            out["strict_order"] = True
        if self.dedup:
            out["dedup"] = True
        return out


# ---------------------------------------------------------------------- the oracle
def chains_of(evs: list[Ev], case: Case) -> dict[int, list[tuple[int, int]]]:
    """Per length i >= 1, ``(ts(e1), ts(ei))`` of every chain satisfying the definition."""
    k = len(case.steps)
    w = case.window_h * HOUR
    out: dict[int, list[tuple[int, int]]] = {i: [] for i in range(1, k + 1)}
    xs = [e.ts for e in evs if e.event == "x"]

    def matches(e: Ev, i: int) -> bool:
        name, pred = case.steps[i]
        if case.hold and e.p is None:
            return False
        return e.event == name and pred(e.p)

    def clean(chain: list[Ev]) -> bool:
        # an exclusion (a, b) applies once the chain has step b: no 'x' strictly between
        return not any(
            b < len(chain) and any(chain[a].ts < x < chain[b].ts for x in xs)
            for a, b in case.exclusions
        )

    def interrupted(a: Ev, b: Ev, i: int) -> bool:
        # strict order: any other event strictly between the chain's steps i-1 and i;
        # dedup: an event matching one of steps 2..i+1 (1-based) strictly between them
        between = [r for r in evs if a.ts < r.ts < b.ts]
        if case.strict_order and between:
            return True
        return case.dedup and any(matches(r, m) for r in between for m in range(1, i + 1))

    def ordered(chain: list[Ev], used: set[int]) -> None:
        i = len(chain)
        if not clean(chain):
            return
        out[i].append((chain[0].ts, chain[-1].ts))
        if i == k:
            return
        for n, e in enumerate(evs):
            if n in used or not matches(e, i):
                continue
            later = e.ts > chain[-1].ts if case.strict else e.ts >= chain[-1].ts
            held = not case.hold or e.p == chain[0].p
            if later and held and e.ts - chain[0].ts <= w and not interrupted(chain[-1], e, i):
                ordered([*chain, e], used | {n})

    if case.any_order:
        any_order_all(evs, case, matches, w, out)
        return out
    for n, e in enumerate(evs):
        if matches(e, 0) and LO <= e.ts < HI:
            ordered([e], {n})
    return out


def any_order_all(
    evs: list[Ev], case: Case, matches: Callable[[Ev, int], bool], w: int, out: dict
) -> None:
    """Any order: every injective assignment of steps 1..i to events (one per step)."""
    k = len(case.steps)

    def rec(chosen: list[Ev], used: set[int]) -> None:
        i = len(chosen)
        if i:
            first, last = min(e.ts for e in chosen), max(e.ts for e in chosen)
            if last - first > w:
                return  # a larger set spans at least as much
            if LO <= first < HI:
                out[i].append((first, last))
        if i == k:
            return
        for n, e in enumerate(evs):
            if n in used or not matches(e, i):
                continue
            if case.hold and chosen and e.p != chosen[0].p:
                continue
            rec([*chosen, e], used | {n})

    rec([], set())


@dataclass
class Expected:
    seconds: list[dict[str, float]]  # per step, user -> shortest time to convert
    entered: dict[dt.date, set[str]]
    completed: dict[dt.date, set[str]]


def expected(history: dict[str, list[Ev]], case: Case) -> Expected:
    k = len(case.steps)
    seconds: list[dict[str, float]] = [{} for _ in range(k)]
    entered: dict[dt.date, set[str]] = {}
    completed: dict[dt.date, set[str]] = {}

    def day(t: int) -> dt.date:
        return (BASE + dt.timedelta(microseconds=t - BASE_US)).date()

    for uid, evs in history.items():
        found = chains_of(evs, case)
        for i in range(1, k + 1):
            if found[i]:
                seconds[i - 1][uid] = min(b - a for a, b in found[i]) / 1_000_000
        # over time: entry = a step-1 event in range; completion = a full chain's start
        for e in evs:
            if LO <= e.ts < HI and e.event == case.steps[0][0] and case.steps[0][1](e.p):
                if not case.hold or e.p is not None:
                    entered.setdefault(day(e.ts), set()).add(uid)
        for a, _ in found[k]:
            completed.setdefault(day(a), set()).add(uid)
    return Expected(seconds, entered, completed)


# ---------------------------------------------------------------------- histories
def histories(seed: int, n_users: int) -> dict[str, list[Ev]]:
    """Tiny random histories on an hourly grid around the two days of the range."""
    rng = np.random.default_rng(seed)
    out: dict[str, list[Ev]] = {}
    for u in range(n_users):
        n = int(rng.integers(1, 8))
        # a few distinct instants per user, so equal timestamps are common
        instants = rng.choice(np.arange(-3, 52), size=int(rng.integers(1, 5)), replace=False)
        evs = []
        for _ in range(n):
            t = BASE_US + int(rng.choice(instants)) * HOUR
            p = int(rng.integers(0, 3)) if rng.random() > 0.1 else None
            evs.append(Ev(t, str(rng.choice(NAMES, p=[0.4, 0.25, 0.2, 0.15])), p))
        out[f"u{u:03d}"] = evs
    return out


def write_store(home: Path, history: dict[str, list[Ev]]) -> Store:
    (home / "events").mkdir(parents=True, exist_ok=True)
    rows = [(uid, e) for uid, evs in history.items() for e in evs]
    pl.DataFrame(
        {
            "user_id": [u for u, _ in rows],
            "event": [e.event for _, e in rows],
            "ts": pl.Series([e.ts for _, e in rows]).cast(pl.Datetime("us", "UTC")),
            "p": pl.Series([e.p for _, e in rows], dtype=pl.Int64),
            "event_id": [str(i) for i in range(len(rows))],
        }
    ).write_parquet(home / "events" / "part-1.parquet")
    return Store(home)


# ---------------------------------------------------------------------- cases
def S(*steps: str | tuple[str, Pred]) -> tuple[tuple[str, Pred], ...]:
    return tuple(s if isinstance(s, tuple) else (s, ANY) for s in steps)


STEP_SETS = {
    "abcb": S("a", "b", "c", "b"),  # issue 13: one event name in two steps, ties
    "aca": S("a", "c", "a"),
    "aa": S("a", "a"),
    "aaa": S("a", "a", "a"),
    "abab": S("a", "b", "a", "b"),
    "abc": S("a", "b", "c"),  # distinct events: the latest-start path
    "ab": S("a", "b"),
    "a,a>=1,b,a": S("a", ("a", ge1), "b", "a"),
    "a=0,a>=1": S(("a", eq0), ("a", ge1)),
    "a>=1,a<=1,a": S(("a", ge1), ("a", le1), "a"),
    "b>=1,a,b<=1": S(("b", ge1), "a", ("b", le1)),
}


def cases() -> list[Case]:
    out = []
    for label, steps in STEP_SETS.items():
        k = len(steps)
        for strict in (False, True):
            out.append(Case(steps, 3, strict, label=f"{label} strict={strict}"))
        out.append(Case(steps, 0, label=f"{label} w=0"))
        out.append(Case(steps, 5, hold=True, label=f"{label} hold"))
        out.append(Case(steps, 4, any_order=True, label=f"{label} any"))
        out.append(Case(steps, 0, any_order=True, label=f"{label} any w=0"))
        out.append(Case(steps, 6, any_order=True, hold=True, label=f"{label} any hold"))
        if k >= 2:
            out.append(Case(steps, 6, exclusions=((0, k - 1),), label=f"{label} excl 0-{k - 1}"))
            out.append(
                Case(steps, 6, True, exclusions=((k - 2, k - 1),), label=f"{label} strict excl")
            )
        if k >= 3:
            out.append(Case(steps, 6, exclusions=((1, 2),), label=f"{label} excl 1-2"))
            out.append(Case(steps, 6, hold=True, exclusions=((1, k - 1),), label=f"{label} hx"))
        if k >= 4:  # two spans that share no step
            out.append(Case(steps, 6, exclusions=((0, 1), (2, 3)), label=f"{label} excl 0-1,2-3"))
        out.append(Case(steps, 1, True, hold=True, label=f"{label} strict hold"))
        out.append(Case(steps, 5, strict_order=True, label=f"{label} strict order"))
        out.append(Case(steps, 5, True, strict_order=True, label=f"{label} strict+order"))
        out.append(Case(steps, 8, dedup=True, label=f"{label} dedup"))
        out.append(Case(steps, 0, dedup=True, label=f"{label} dedup w=0"))
        out.append(Case(steps, 8, True, dedup=True, label=f"{label} strict dedup"))
    return out


CASES = cases()


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> tuple[Store, dict[str, list[Ev]]]:
    history = histories(2026, 400)
    store = write_store(tmp_path_factory.mktemp("ties"), history)
    for name, rest in SEGMENTS.items():
        store.catalog.create(name, kind="static", members=[u for u in history if _in(u, rest)])
    return store, history


SEGMENTS = {"odd": 1, "even": 0}


def _in(uid: str, rest: int) -> bool:
    return int(uid[1:]) % 2 == rest


def _by_user(frames: list[pl.DataFrame]) -> list[dict[str, float]]:
    return [dict(zip(f["user_id"], f["seconds"], strict=True)) for f in frames]


def _methods(case: Case) -> list[str]:
    """Both methods where the latest-start pass applies (ordered, distinct step events,
    no exclusions: the definition in docs/analytics.md), else chains only."""
    distinct = len({e for e, _ in case.steps}) == len(case.steps)
    plain = not (case.strict_order or case.dedup)
    fast = distinct and not case.any_order and not case.exclusions and plain
    return ["chains", "latest_start"] if fast else ["chains"]


@pytest.mark.parametrize("case", CASES, ids=[c.label for c in CASES])
def test_every_path_matches_the_definition(world, case: Case) -> None:
    store, history = world
    want = expected(history, case)
    k = len(case.steps)
    window = f"{case.window_h}h"
    spec = make_spec(store, case.seg_steps(), window, FROM, TO, case.strict, **case.options())
    for method in _methods(case):
        got = _by_user(reached(store, spec, method=method))
        for i in range(k):
            assert got[i] == want.seconds[i], (method, i + 1, _diff(got[i], want.seconds[i]))
        over = funnel_over_time(
            store,
            case.seg_steps(),
            window,
            FROM,
            TO,
            "day",
            case.strict,
            method=method,
            **case.options(),
        )
        assert over["entered"].to_list() == [len(want.entered.get(d, ())) for d in over["period"]]
        assert over["completed"].to_list() == [
            len(want.completed.get(d, ())) for d in over["period"]
        ], method
    for after in range(1, k):
        drop = funnel_dropoffs(
            store,
            case.seg_steps(),
            window,
            FROM,
            TO,
            case.strict,
            after_step=after,
            **case.options(),
        )["user_id"].to_list()
        assert drop == sorted(set(want.seconds[after - 1]) - set(want.seconds[after]))
    # the breakdown by segments (and one segment as a filter): users and median times
    r = funnel(
        store, case.seg_steps(), window, FROM, TO, case.strict, list(SEGMENTS), **case.options()
    )
    for name, rest in SEGMENTS.items():
        for i, step in enumerate(r["segments"][name]["steps"]):
            times = sorted(t for u, t in want.seconds[i].items() if _in(u, rest))
            assert step["users"] == len(times)
            median = pl.Series(times, dtype=pl.Float64).median()
            assert step["median_seconds_from_first"] == median
    one = funnel(
        store, case.seg_steps(), window, FROM, TO, case.strict, segment="odd", **case.options()
    )
    assert [s["users"] for s in one["steps"]] == [s["users"] for s in r["segments"]["odd"]["steps"]]
    assert want.seconds[0], "vacuous case"
    assert len(want.seconds[-1]) < len(want.seconds[0]), "no drop-off: a weak case"


def _diff(got: dict, want: dict) -> dict:
    keys = set(got) | set(want)
    return {u: (got.get(u), want.get(u)) for u in sorted(keys) if got.get(u) != want.get(u)}


def _clickhouse_levels(path: Path, conds: list[str], window_s: int) -> dict[str, int]:
    import chdb

    sql = f"""
        SELECT user_id, windowFunnel({window_s * 1_000_000})(
            toUInt64(toUnixTimestamp64Micro(ts)), {", ".join(conds)}) AS level
        FROM file('{path}', Parquet) GROUP BY user_id ORDER BY user_id FORMAT CSV"""
    out = chdb.query(sql).bytes().decode().split()
    return {line.split(",")[0].strip('"'): int(line.split(",")[1]) for line in out}


def test_issue_13_ties_with_one_event_in_two_steps(tmp_path: Path) -> None:
    t = BASE_US + 10 * HOUR
    m = 60_000_000
    history = {
        # a, b, c, b with the last c and b at the same instant: level 4
        "u1": [Ev(t, "a", 0), Ev(t + m, "b", 0), Ev(t + 2 * m, "c", 0), Ev(t + 2 * m, "b", 0)],
        # a, c, a with c and the second a at the same instant: level 3 with a, c, a
        "u2": [Ev(t, "a", 0), Ev(t + m, "c", 0), Ev(t + m, "a", 0)],
        # one event cannot serve two steps: a single a at the instant of c
        "u3": [Ev(t, "c", 0), Ev(t, "a", 0)],
    }
    store = write_store(tmp_path, history)
    abcb = funnel(store, ["a", "b", "c", "b"], "1d", FROM, FROM)
    assert [s["users"] for s in abcb["steps"]] == [3, 1, 1, 1]
    aca = funnel(store, ["a", "c", "a"], "1d", FROM, FROM)
    assert [s["users"] for s in aca["steps"]] == [3, 3, 1]
    assert aca["steps"][2]["median_seconds_from_first"] == 60.0
    # ClickHouse windowFunnel agrees on u1 and u2; for u3 it lets the one `a` row serve
    # steps 1 and 3 (level 3), where the definition needs distinct events (level 2)
    path = tmp_path / "events" / "part-1.parquet"
    names = ["event = 'a'", "event = 'b'", "event = 'c'", "event = 'b'"]
    assert _clickhouse_levels(path, names, 86400)["u1"] == 4
    assert _clickhouse_levels(path, [names[0], names[2], names[0]], 86400) == {
        "u1": 2,
        "u2": 3,
        "u3": 3,
    }
    levels = _by_user(reached(store, make_spec(store, ["a", "c", "a"], "1d", FROM, FROM)))
    assert levels[2] == {"u2": 60.0} and levels[1]["u3"] == 0.0


@pytest.mark.parametrize("window_h", [0, 3])
@pytest.mark.parametrize("label", ["abc", "ab"])
def test_clickhouse_agrees_where_definitions_coincide(world, label: str, window_h: int) -> None:
    # distinct step events, not strict: windowFunnel's definition is the same, ties included
    store, history = world
    case = Case(STEP_SETS[label], window_h)
    want = expected(history, case)
    levels = {u: sum(u in s for s in want.seconds) for u in history}
    names = [e for e, _ in case.steps]
    hi = f"toDateTime64('{TO} 00:00:00', 6, 'UTC') + toIntervalDay(1)"
    conds = [f"event = '{names[0]}' AND ts < {hi}"] + [f"event = '{e}'" for e in names[1:]]
    path = store.home / "events" / "part-1.parquet"
    import chdb

    sql = f"""
        SELECT user_id, windowFunnel({window_h * HOUR})(
            toUInt64(toUnixTimestamp64Micro(ts)), {", ".join(conds)}) AS level
        FROM file('{path}', Parquet)
        WHERE ts >= toDateTime64('{FROM} 00:00:00', 6, 'UTC')
          AND ts < {hi} + toIntervalHour({window_h})
        GROUP BY user_id FORMAT CSV"""
    got = {
        line.split(",")[0].strip('"'): int(line.split(",")[1])
        for line in chdb.query(sql).bytes().decode().split()
    }
    assert {u: v for u, v in got.items() if v} == {u: v for u, v in levels.items() if v}
    assert max(levels.values()) == len(names)


def test_filters_that_print_alike_stay_apart(tmp_path: Path) -> None:
    # Polars abbreviates long lists when printing: these two filters print alike
    one = pl.col("p").is_in(list(range(300)))
    two = pl.col("p").is_in([v for v in range(300) if v != 2])
    assert str(one) == str(two)
    t = BASE_US + 10 * HOUR
    store = write_store(tmp_path, {"u1": [Ev(t, "a", 2), Ev(t, "a", 2)]})
    steps = [{"event": "a", "where": one}, {"event": "a", "where": two}]
    assert [s["users"] for s in funnel(store, steps, "1h", FROM, FROM)["steps"]] == [1, 0]


def test_many_filters_on_one_event(tmp_path: Path) -> None:
    # a path of 16 page views with disjoint filters needs one count per filter
    t = BASE_US + 10 * HOUR
    history = {"u1": [Ev(t + (i // 2) * HOUR, "a", i) for i in range(16)]}
    history["u2"] = [Ev(t, "a", i) for i in range(16)]  # all at one instant: any order
    history["u3"] = [Ev(t + (15 - i) * HOUR // 60, "a", i) for i in range(16)]  # reversed
    store = write_store(tmp_path, history)
    steps = [{"event": "a", "where": pl.col("p") == i} for i in range(16)]
    r = funnel(store, steps, "1d", FROM, FROM)
    assert [s["users"] for s in r["steps"]] == [3] + [2] * 15
    assert r["steps"][15]["median_seconds_from_first"] == 7 * 3600 / 2
    # nested filters overlap pairwise: the matching checks grow as 2^n, a clear error
    nested = [{"event": "a", "where": pl.col("p") >= i} for i in range(13)]
    with pytest.raises(UsageError, match="event 'a' have too many overlapping filters"):
        funnel(store, nested, "1d", FROM, FROM)
    assert [s["users"] for s in funnel(store, nested[:8], "1d", FROM, FROM)["steps"]] == [3] * 8


def _sequential_histories(seed: int, n_users: int, repeat: bool) -> dict[str, list[Ev]]:
    """One ``a`` per user (in the range), distinct instants, other events around it;
    ``repeat``: step events may repeat (for dedup), else each name occurs at most once."""
    rng = np.random.default_rng(seed)
    out: dict[str, list[Ev]] = {}
    for u in range(n_users):
        names = ["b", "c", "d", "x", "x"] + (["b", "c", "b", "c"] if repeat else [])
        picked = [n for n in names if rng.random() < 0.6]
        a_hour = int(rng.integers(2, 46))
        offsets = rng.choice([-2, -1, *range(1, 12)], size=len(picked), replace=False)
        if rng.random() < 0.6:  # often in step order, so that long chains occur
            offsets = np.sort(offsets)
        evs = [Ev(BASE_US + a_hour * HOUR, "a", 0)]
        evs += [
            Ev(BASE_US + (a_hour + int(h)) * HOUR, n, 0)
            for n, h in zip(picked, offsets, strict=True)
        ]
        out[f"u{u:03d}"] = evs
    return out


@pytest.mark.parametrize(
    ("mode", "window_h"),
    [
        ("strict_order", 4),
        ("strict_order", 30),
        ("strict_deduplication", 5),
        ("strict_deduplication", 40),
    ],
)
def test_clickhouse_modes_agree_where_definitions_coincide(
    tmp_path: Path, mode: str, window_h: int
) -> None:
    # one step-1 event per user and no equal instants: windowFunnel's single chain is
    # then the definition's (strict_order: each step event at most once per user)
    history = _sequential_histories(7, 300, repeat=mode == "strict_deduplication")
    store = write_store(tmp_path, history)
    names = ["a", "b", "c", "d"]
    opts = {"strict_order": True} if mode == "strict_order" else {"dedup": True}
    case = Case(S(*names), window_h, **opts)
    want = expected(history, case)
    levels = {u: sum(u in s for s in want.seconds) for u in history}
    got_polars = _by_user(reached(store, make_spec(store, names, f"{window_h}h", FROM, TO, **opts)))
    assert got_polars == want.seconds
    hi = f"toDateTime64('{TO} 00:00:00', 6, 'UTC') + toIntervalDay(1)"
    conds = [f"event = 'a' AND ts < {hi}"] + [f"event = '{e}'" for e in names[1:]]
    path = store.home / "events" / "part-1.parquet"
    import chdb

    sql = f"""
        SELECT user_id, windowFunnel({window_h * HOUR}, '{mode}')(
            toUInt64(toUnixTimestamp64Micro(ts)), {", ".join(conds)}) AS level
        FROM file('{path}', Parquet)
        WHERE ts >= toDateTime64('{FROM} 00:00:00', 6, 'UTC')
          AND ts < {hi} + toIntervalHour({window_h})
        GROUP BY user_id FORMAT CSV"""
    got = {
        line.split(",")[0].strip('"'): int(line.split(",")[1])
        for line in chdb.query(sql).bytes().decode().split()
    }
    assert {u: v for u, v in got.items() if v} == {u: v for u, v in levels.items() if v}
    assert sorted(set(levels.values())) == [1, 2, 3, 4]


def test_strict_order_and_dedup_by_hand(tmp_path: Path) -> None:
    t = BASE_US + 10 * HOUR
    m = 60_000_000
    history = {
        # a, x, b: another event between a and b interrupts a strict-order chain
        "u1": [Ev(t, "a", 0), Ev(t + m, "x", 0), Ev(t + 2 * m, "b", 0)],
        # a, b, b, c: the repeated b interrupts both modes
        "u2": [Ev(t, "a", 0), Ev(t + m, "b", 0), Ev(t + 2 * m, "b", 0), Ev(t + 3 * m, "c", 0)],
        # a and b at one instant with x, then c: same-instant events never interrupt
        "u3": [Ev(t, "a", 0), Ev(t, "x", 0), Ev(t, "b", 0), Ev(t + m, "c", 0)],
        # {a, b} then {b} then {c}: staying at the first instant for b is a dead end
        "u4": [Ev(t, "a", 0), Ev(t, "b", 0), Ev(t + m, "b", 0), Ev(t + 2 * m, "c", 0)],
    }
    store = write_store(tmp_path, history)
    users = lambda r: [s["users"] for s in r["steps"]]  # noqa: E731
    abc = ["a", "b", "c"]
    assert users(funnel(store, abc, "1d", FROM, FROM)) == [4, 4, 3]
    assert users(funnel(store, abc, "1d", FROM, FROM, strict_order=True)) == [4, 3, 2]
    r = funnel(store, abc, "1d", FROM, FROM, dedup=True)
    assert users(r) == [4, 4, 2]
    assert r["dedup"] is True and r["steps"][2]["median_seconds_from_first"] == 90.0
    drop = funnel_dropoffs(store, abc, "1d", FROM, FROM, after_step=2, strict_order=True)
    assert drop["user_id"].to_list() == ["u2"]
    with pytest.raises(UsageError, match="strict order and step deduplication"):
        funnel(store, abc, "1d", FROM, FROM, strict_order=True, order="any")


def test_cli_and_saved_query_carry_the_modes(tmp_path: Path, capsys) -> None:
    import json

    from segcore.cli import main
    from segcore.query import FunnelQuery

    t = BASE_US + 10 * HOUR
    m = 60_000_000
    history = {"u1": [Ev(t, "a", 0), Ev(t + m, "x", 0), Ev(t + 2 * m, "b", 0)]}
    store = write_store(tmp_path, history)
    base = ["funnel", "--home", str(store.home), "--step", "a", "--step", "b"]
    base += ["--from", FROM, "--to", FROM, "--json"]
    for flags, want in (([], 1), (["--strict-order"], 0), (["--dedup"], 1)):
        assert main(base + flags) == 0
        data = json.loads(capsys.readouterr().out)
        assert data["steps"][1]["users"] == want, flags
    assert main(base + ["--strict-order", "--save", "f"]) == 0
    capsys.readouterr()
    q = FunnelQuery.from_saved(store.catalog.get_funnel("f")["spec"])
    assert q.strict_order and not q.dedup
    assert FunnelQuery.from_dict(q.to_dict()) == q
