"""The keyed latest-start pass (segcore/analytics/funnel_keyed.py): the same users, times
and conversion over time as the by-user joins and the chains, over long ranges with many
re-entries, ties at one instant and chains exactly one window long."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl
import pytest

import segcore.analytics.funnel_keyed as keyed_mod
from segcore import Store
from segcore.analytics.funnel import funnel, funnel_over_time, make_spec, reached
from segcore.store.cache import USER_CODE
from tests.analytics.test_funnel import DAY, brute_level, make_store, ts, users


def _by_user(frames: list[pl.DataFrame]) -> list[dict[str, float]]:
    return [dict(zip(f["user_id"], f["seconds"], strict=True)) for f in frames]


def _long_events(seed: int, n: int, n_users: int, days: int, unit_s: int) -> pl.DataFrame:
    """Events over ``days`` days on a ``unit_s`` grid: many re-entries and equal instants."""
    rng = np.random.default_rng(seed)
    base = int(ts("2026-01-01T00:00:00").timestamp() * 1_000_000)
    t = base + rng.integers(0, days * 86400, n) // unit_s * unit_s * 1_000_000
    return pl.DataFrame(
        {
            "user_id": [f"u{i}" for i in rng.integers(0, n_users, n)],
            "event": np.array(["a", "b", "c", "d", "z"])[rng.integers(0, 5, n)],
            "ts": pl.Series(t).cast(pl.Datetime("us", "UTC")),
            "p": rng.integers(0, 3, n),
        }
    )


def _all_ways(store: Store, spec, users_filter, monkeypatch: pytest.MonkeyPatch):
    """Users per step by the keyed pass, the by-user joins and the chains."""
    keyed = _by_user(reached(store, spec, users_filter, method="latest_start"))
    chains = _by_user(reached(store, spec, users_filter, method="chains"))
    with monkeypatch.context() as m:  # keys that do not fit: the by-user joins
        m.setattr(keyed_mod, "key_span", lambda frames, lo, hi: None)
        joined = _by_user(reached(store, spec, users_filter, method="latest_start"))
    return keyed, joined, chains


@pytest.mark.parametrize("seed", [71])
@pytest.mark.parametrize("cached", [True, False])
def test_keyed_equals_joins_and_chains_over_long_ranges(
    tmp_path: Path, seed: int, cached: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    # 60 days, 40 users: each user enters many times; a 1 h grid puts many events at one
    # instant; windows that are multiples of the grid make chains exactly W long
    df = _long_events(seed, 12000, 40, 60, 3600)
    make_store(
        tmp_path,
        list(zip(df["user_id"], df["event"], df["ts"], strict=True)),
        {"p": df["p"].to_list()},
    )
    store = Store(tmp_path, cache_events=cached)
    segment = pl.DataFrame({"user_id": [f"u{i}" for i in range(0, 40, 3)]})
    cases = [
        (["a", "b", "c", "d"], "3h", False),
        (["a", "b", "c", "d"], "3h", True),
        (["b", "a", {"event": "c", "where": "p >= 1"}], "1d", False),
        (["d", "c", "b", "a", "z"], "2h", True),
    ]
    seen = 0
    for steps, window, strict in cases:
        spec = make_spec(store, steps, window, "2026-01-05", "2026-02-20", strict)
        for users_filter in (None, segment):
            keyed, joined, chains = _all_ways(store, spec, users_filter, monkeypatch)
            assert keyed == joined == chains, (steps, window, strict)
            seen += len(keyed[-1])
        over = {
            m: funnel_over_time(
                store, steps, window, "2026-01-05", "2026-02-20", "week", strict, method=m
            )
            for m in ("latest_start", "chains")
        }
        assert over["latest_start"].equals(over["chains"]), (steps, window, strict)
    assert seen > 20


@pytest.mark.parametrize("strict", [False, True])
def test_keyed_matches_brute_force_with_ties(tmp_path: Path, strict: bool) -> None:
    # a 30 min grid over 10 days: equal instants within and across steps everywhere
    df = _long_events(5, 1200, 60, 4, 1800).filter(pl.col("event") != "z")
    store = make_store(tmp_path, list(zip(df["user_id"], df["event"], df["ts"], strict=True)))
    names = ["a", "b", "c"]
    lo = int(ts("2026-01-02T00:00:00").timestamp() * 1e6)
    hi = int(ts("2026-01-04T00:00:00").timestamp() * 1e6)
    w = 6 * 3600 * 1_000_000
    t = df.with_columns(pl.col("ts").dt.epoch("us").alias("t"))
    levels = {
        uid: brute_level(
            list(zip(g["t"], g["event"], g["p"], strict=True)),
            [(n, lambda p: True) for n in names],
            w,
            lo,
            hi,
            strict,
        )
        for (uid,), g in t.group_by("user_id")
    }
    expected = [sum(v >= i for v in levels.values()) for i in range(1, 4)]
    assert users(funnel(store, names, "6h", "2026-01-02", "2026-01-03", strict)) == expected
    assert expected[-1] > 0


def test_window_edge_and_same_instant(tmp_path: Path) -> None:
    rows = [
        # u1: b exactly W after a (counts), c 1 us later than a + W (does not)
        ("u1", "a", "2026-06-01T08:00:00"),
        ("u1", "b", "2026-06-01T09:00:00"),
        ("u1", "c", "2026-06-01T09:00:00.000001"),
        # u2: all three at one instant: level 3, strict level 1
        ("u2", "a", "2026-06-01T10:00:00"),
        ("u2", "b", "2026-06-01T10:00:00"),
        ("u2", "c", "2026-06-01T10:00:00"),
        # u3: re-entry: the early a is too old, the later a completes at the edge
        ("u3", "a", "2026-06-01T01:00:00"),
        ("u3", "b", "2026-06-01T01:30:00"),
        ("u3", "a", "2026-06-01T04:00:00"),
        ("u3", "c", "2026-06-01T05:00:00"),
        ("u3", "b", "2026-06-01T04:30:00"),
    ]
    store = make_store(tmp_path, rows)
    r = funnel(store, ["a", "b", "c"], "1h", DAY, DAY)
    assert users(r) == [3, 3, 2]
    assert r["steps"][2]["median_seconds_from_first"] == 1800.0  # u2 0 s, u3 3600 s
    assert users(funnel(store, ["a", "b", "c"], "1h", DAY, DAY, strict=True)) == [3, 2, 1]


def _frame(codes: list[int], times: list[int]) -> pl.DataFrame:
    users_ = pl.Series([f"x{c}" for c in codes]).cast(pl.Categorical)
    return pl.DataFrame({USER_CODE: users_, "ts": pl.Series(times, dtype=pl.Int64)})


@pytest.mark.parametrize("order", ["time", "user", "none"])
def test_keyed_steps_order_any_input(order: str) -> None:
    rng = np.random.default_rng(3)
    n = 5000
    frame = _frame(rng.integers(0, 300, n).tolist(), rng.integers(0, 10_000, n).tolist())
    if order == "time":
        frame = frame.sort("ts")
    elif order == "user":
        frame = frame.sort(frame[USER_CODE].to_physical(), "ts")
    (got,) = keyed_mod.keyed_steps([frame], 0, 10_000, 10_000)
    code = frame[USER_CODE].to_physical().cast(pl.UInt64)
    want = (code * 10_000 + frame["ts"].cast(pl.UInt64)).sort()
    assert got["k"].equals(want.alias("k"))
    assert got["ts"].equals((want % 10_000).cast(pl.Int64).alias("ts"))


def test_keys_too_wide_fall_back() -> None:
    frame = _frame([1, 2], [0, 5])
    assert keyed_mod.key_span([frame], 0, 10) == 10
    assert keyed_mod.key_span([frame], 0, 1 << 62) is None


def test_keyed_steps_prunes_users_without_the_next_step() -> None:
    first = _frame([1, 2, 3], [1, 2, 3]).sort("ts")
    second = _frame([2, 3, 4], [4, 5, 6]).sort("ts")
    third = _frame([4, 3], [7, 8]).sort("ts")
    a, b, c = keyed_mod.keyed_steps([first, second, third], 0, 100, 100)
    phys = {
        name: int(code)
        for name, code in zip(
            pl.Series(["x1", "x2", "x3", "x4"]).cast(pl.Categorical).to_list(),
            pl.Series(["x1", "x2", "x3", "x4"]).cast(pl.Categorical).to_physical().to_list(),
            strict=True,
        )
    }
    assert sorted((a["k"] // 100).to_list()) == sorted([phys["x2"], phys["x3"]])
    assert sorted((b["k"] // 100).to_list()) == sorted([phys["x2"], phys["x3"]])
    assert (c["k"] // 100).to_list() == [phys["x3"]]
    (all_a, _, _) = keyed_mod.keyed_steps([first, second, third], 0, 100, 100, all_starts=True)
    assert all_a.height == 3


def test_keyed_steps_prunes_by_time_bucket() -> None:
    # window 100 us over 1000 us: ten buckets; the step-1 event at 0 has no step-2 event
    # in its bucket or the next one, those at 500 and 520 have (550); no step-1 event lies
    # in the bucket of the step-2 event at 990 or the one before
    first = _frame([1, 1, 1], [0, 500, 520])
    second = _frame([1, 1], [550, 990])
    a, b = keyed_mod.keyed_steps([first, second], 0, 1000, 100)
    assert a["ts"].to_list() == [500, 520]
    assert b["ts"].to_list() == [550]
    a, b = keyed_mod.keyed_steps([first, second], 0, 1000, 100, all_starts=True)
    assert a["ts"].to_list() == [0, 500, 520]


def _pruned_reference(
    frames: list[pl.DataFrame], lo: int, span: int, window: int, all_starts: bool
) -> list[list[tuple[int, int]]]:
    """The pruning rule as written (step 2 first, against every step-1 event), per step
    the sorted ``(code, ts)`` pairs kept."""
    width, _ = keyed_mod._buckets(
        1 + max(int(f[USER_CODE].to_physical().max()) for f in frames if f.height), span, window
    )
    ev = [
        [(int(c), int(t)) for c, t in zip(f[USER_CODE].to_physical(), f["ts"], strict=True)]
        for f in frames
    ]

    def cells(rows: list[tuple[int, int]]) -> set[tuple[int, int]]:
        return {(c, (t - lo) // width) for c, t in rows}

    keep: list[list[tuple[int, int]]] = [ev[0]] + [[] for _ in ev[1:]]
    prev = cells(ev[0])
    for i in range(1, len(ev)):
        keep[i] = [(c, t) for c, t in ev[i] if {(c, (t - lo) // width), (c, (t - lo) // width - 1)} & prev]
        prev = cells(keep[i])
        if i == 1 and not all_starts:
            keep[0] = [(c, t) for c, t in ev[0]
                       if {(c, (t - lo) // width), (c, (t - lo) // width + 1)} & prev]
    return [sorted(k) for k in keep]


@pytest.mark.parametrize("all_starts", [False, True])
@pytest.mark.parametrize("seed", [0, 1])
def test_keyed_steps_keep_the_rule_on_chunked_frames(all_starts: bool, seed: int) -> None:
    # frames of several chunks of uneven sizes (as Parquet reads come), codes that do not
    # start at 0, equal instants, events exactly one window apart, an empty last step
    rng = np.random.default_rng(seed)
    pl.Series([f"other{i}" for i in range(50)]).cast(pl.Categorical)
    window, span = 100, 2000
    frames = []
    for n in (3000, 800, 400, 0):
        times = (rng.integers(0, span // 10, n) * 10).tolist()  # a 10 us grid
        f = _frame(rng.integers(0, 60, n).tolist(), times)
        cut = n // 3
        frames.append(pl.concat([f.slice(0, cut), f.slice(cut, 7), f.slice(cut + 7)],
                                rechunk=False))
    for steps in (frames[:3], frames):
        got = keyed_mod.keyed_steps(steps, 0, span, window, all_starts=all_starts)
        want = _pruned_reference(steps, 0, span, window, all_starts)
        for g, w in zip(got, want, strict=True):
            assert g["k"].is_sorted()
            pairs = sorted(zip((g["k"] // span).to_list(), g["ts"].to_list(), strict=True))
            assert pairs == w
            assert (g["k"] % span).to_list() == g["ts"].to_list()
        assert 0 < got[1].height < steps[1].height


def test_user_ids_of_a_chunked_frame() -> None:
    pl.Series([f"other{i}" for i in range(30)]).cast(pl.Categorical)  # codes not from 0
    f = _frame([5, 1, 5, 9, 1, 2], [0, 1, 2, 3, 4, 5])
    f = pl.concat([f.slice(0, 2), f.slice(2, 3), f.slice(5)], rechunk=False)
    ids = keyed_mod.user_ids(f)
    assert ids["user_id"].to_list() == sorted(
        ["x5", "x1", "x9", "x2"], key=lambda u: f.filter(pl.col(USER_CODE) == u)[
            USER_CODE].to_physical()[0])
    assert ids["code"].is_sorted()
    assert dict(zip(ids["user_id"], ids["code"], strict=True)) == dict(
        zip(f[USER_CODE].cast(pl.String), f[USER_CODE].to_physical(), strict=True))
    assert keyed_mod.user_ids(f.clear()).height == 0
