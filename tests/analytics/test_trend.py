"""Segment size over time (docs/analytics.md): hand-made histories and a differential
test of the one-pass trend against one evaluation per point."""

from __future__ import annotations

import datetime as dt

import polars as pl
import pytest

from segcore.analytics.trend import make_points, trend, trend_many, trend_members, trend_naive
from segcore.errors import RuleError, UsageError
from segcore.lang.dates import day_points
from segcore.segments import create_segment

USERS = [
    {"user_id": "u1", "country": "US", "subscription_end_date": dt.date(2026, 6, 9)},
    {"user_id": "u2", "country": "DE", "subscription_end_date": dt.date(2026, 6, 10)},
]


def rows(df: pl.DataFrame) -> list[tuple]:
    return [(d.isoformat(), m, e, x) for d, m, e, x in df.iter_rows()]


@pytest.fixture
def shop(tiny):
    return tiny(
        events=[
            ("u1", "buy", "2026-06-03T10:00:00", {"amount": 30.0}),
            ("u2", "buy", "2026-06-02T00:00:00", {"amount": 5.0}),  # exactly at a window edge
            ("u2", "buy", "2026-06-06T00:00:00", {"amount": 7.0}),  # exactly at T of 06-05
            ("u3", "visit", "2026-06-04T08:00:00", {"amount": None}),  # only in events
        ],
        users=USERS,
    )


def test_enters_day3_leaves_day5_when_window_passes(shop):
    got = trend(
        shop, "did('buy', within => '2 days') AND country = 'US'", "2026-06-01", "2026-06-06"
    )
    assert got.schema == {
        "date": pl.Date,
        "members": pl.Int64,
        "entered": pl.Int64,
        "exited": pl.Int64,
    }
    assert rows(got) == [
        ("2026-06-01", 0, 0, 0),
        ("2026-06-02", 0, 0, 0),
        ("2026-06-03", 1, 1, 0),
        ("2026-06-04", 1, 0, 0),
        ("2026-06-05", 0, 0, 1),
        ("2026-06-06", 0, 0, 0),
    ]
    assert trend_members(shop, "did('buy', within => '2 days') AND country = 'US'", "2026-06-03")[
        "user_id"
    ].to_list() == ["u1"]
    assert trend_members(
        shop, "did('buy', within => '2 days') AND country = 'US'", "2026-06-05", which="exited"
    )["user_id"].to_list() == ["u1"]


def test_window_edges_move_with_T(shop):
    # u2: event at 06-02 00:00 counts for T in (06-02, 06-04] (T=06-04: lo = 06-02, included);
    # event at 06-06 00:00 is not yet there at T = 06-06 00:00 (end of 06-05).
    got = trend(
        shop, "did('buy', within => '2 days') AND country = 'DE'", "2026-06-01", "2026-06-07"
    )
    assert got["members"].to_list() == [0, 1, 1, 0, 0, 1, 1]
    assert got["entered"].to_list() == [0, 1, 0, 0, 0, 1, 0]
    assert got["exited"].to_list() == [0, 0, 0, 1, 0, 0, 0]


def test_today_rule_changes_day_by_day(shop):
    got = trend(shop, "subscription_end_date = today() + 6", "2026-06-02", "2026-06-05")
    assert rows(got) == [
        ("2026-06-02", 0, 0, 0),
        ("2026-06-03", 1, 1, 0),
        ("2026-06-04", 1, 1, 1),
        ("2026-06-05", 0, 0, 1),
    ]
    assert trend_members(shop, "subscription_end_date = today() + 6", "2026-06-04", which="exited")[
        "user_id"
    ].to_list() == ["u1"]
    assert trend_members(
        shop, "subscription_end_date = today() + 6", "2026-06-04", which="members"
    )["user_id"].to_list() == ["u2"]


def test_not_did_users_entering_the_universe(shop):
    # u1 buys 06-03, u2 06-02 and 06-06; u3 appears (event) on 06-04
    got = trend(shop, "NOT did('buy')", "2026-06-01", "2026-06-05")
    assert rows(got) == [
        ("2026-06-01", 2, 0, 0),
        ("2026-06-02", 1, 0, 1),
        ("2026-06-03", 0, 0, 1),
        ("2026-06-04", 1, 1, 0),
        ("2026-06-05", 1, 0, 0),
    ]
    assert trend_members(shop, "NOT did('buy')", "2026-06-04")["user_id"].to_list() == ["u3"]


def test_sums_and_sequences_on_hand_made_history(tiny):
    store = tiny(
        events=[
            ("a", "cart", "2026-06-01T10:00:00"),
            ("a", "pay", "2026-06-01T10:05:00"),
            ("b", "cart", "2026-06-02T23:00:00"),
            ("b", "pay", "2026-06-03T01:00:00"),
            ("c", "pay", "2026-06-01T09:00:00", {"amount": 10}),
            ("c", "pay", "2026-06-03T09:00:00", {"amount": 20}),
        ]
    )
    # b's pay at 06-03 01:00 is 2 h after the cart: outside a 1 h gap
    then = trend(store, "did_then('cart', 'pay', gap => '1 hour')", "2026-06-01", "2026-06-03")
    assert then["members"].to_list() == [1, 1, 1]
    # did_then_not counts once a + gap < T: b's cart (06-02 23:00) + 1 h is not < T = 06-03
    then_not = trend(
        store, "did_then_not('cart', 'pay', gap => '1 hour')", "2026-06-01", "2026-06-03"
    )
    assert then_not["members"].to_list() == [0, 0, 1]
    total = trend(
        store, "event_sum('pay', 'amount', within => '1 day') >= 20", "2026-06-01", "2026-06-04"
    )
    assert total["members"].to_list() == [0, 0, 1, 0]


def test_weekly_points_are_sundays(shop):
    assert day_points("2026-06-01", "2026-06-30", "week") == [
        dt.date(2026, 6, 7),
        dt.date(2026, 6, 14),
        dt.date(2026, 6, 21),
        dt.date(2026, 6, 28),
    ]
    pts = make_points("2026-06-01", "2026-06-30", "week")
    assert pts.instant(0) == dt.datetime(2026, 6, 1, tzinfo=dt.timezone.utc)  # end of 05-31
    got = trend(shop, "did('buy', within => '7 days')", "2026-06-01", "2026-06-30", "week")
    assert rows(got) == [
        ("2026-06-07", 2, 2, 0),
        ("2026-06-14", 0, 0, 2),
        ("2026-06-21", 0, 0, 0),
        ("2026-06-28", 0, 0, 0),
    ]
    assert got.equals(
        trend_naive(shop, "did('buy', within => '7 days')", "2026-06-01", "2026-06-30", "week")
    )


def test_static_segment_members_join_with_the_universe(shop):
    create_segment(shop, "picked", ids=["u1", "u3", "zz"])
    got = trend(shop, segment="picked", start="2026-06-02", end="2026-06-05")
    assert rows(got) == [
        ("2026-06-02", 1, 0, 0),
        ("2026-06-03", 1, 0, 0),
        ("2026-06-04", 2, 1, 0),
        ("2026-06-05", 2, 0, 0),
    ]
    assert shop.trend(segment="picked", start="2026-06-02", end="2026-06-05").equals(got)
    assert got.equals(trend_naive(shop, segment="picked", start="2026-06-02", end="2026-06-05"))


def test_in_segment_and_trend_many(shop):
    create_segment(shop, "buyers", "did('buy', within => '2 days')")
    create_segment(shop, "us_buyers", "in_segment('buyers') AND country = 'US'")
    got = trend(shop, segment="us_buyers", start="2026-06-01", end="2026-06-06")
    assert got["members"].to_list() == [0, 0, 1, 1, 0, 0]
    many = trend_many(shop, ["buyers", "us_buyers"], "2026-06-01", "2026-06-06")
    assert many.columns == ["segment", "date", "members", "entered", "exited"]
    assert many.filter(pl.col("segment") == "buyers")["members"].to_list() == [0, 1, 2, 1, 0, 1]


def test_errors(shop):
    with pytest.raises(UsageError, match="before it starts"):
        trend(shop, "did('buy')", "2026-06-05", "2026-06-01")
    with pytest.raises(UsageError, match="bad step"):
        trend(shop, "did('buy')", "2026-06-01", "2026-06-05", every="month")
    with pytest.raises(RuleError, match="either a rule or a segment"):
        trend(shop, start="2026-06-01", end="2026-06-05")
    with pytest.raises(RuleError, match="unknown segment"):
        trend(shop, segment="nope", start="2026-06-01", end="2026-06-05")
    # a cap on the number of points, with the way out in the message
    with pytest.raises(UsageError, match="3,701 day points; a trend takes at most 3,700"):
        trend(shop, "did('buy')", "2016-06-01", dt.date(2016, 6, 1) + dt.timedelta(days=3700))
    assert trend(shop, "did('buy')", "2016-06-01", "2026-06-01", every="week").height == 522


DIFF_RULES = [
    "did('charged', within => '30 days')",
    "event_count('page_viewed', where => page = 'pricing') > 2",
    "event_sum('charged', 'amount', within => '14 days') > 100",
    "event_avg('charged', 'amount') > 50 OR event_avg('charged', 'amount') IS NULL",
    "event_min('charged', 'amount', within => '10 days') < 20",
    "event_max('charged', 'amount') > 200",
    "event_distinct('product_viewed', 'product', within => '7 days') >= 3",
    "first_seen('charged') >= now() - interval '7 days'",
    "last_seen('*') < now() - interval '14 days'",
    "first_seen('charged', within => '20 days') < now() - interval '10 days'",
    "last_seen('charged', within => '20 days') > now() - interval '3 days'",
    "event_periods('app_launched', period => 'week', within => '4 weeks') >= 3",
    "did_then('added_to_cart', 'charged', gap => '10 minutes', within => '7 days')",
    "did_then_not('added_to_cart', 'charged', gap => '1 day', within => '7 days')",
    "did('charged', since => now() - interval '60 days', until => now() - interval '30 days')"
    " AND NOT did('charged', within => '30 days')",
    "NOT did('charged')",
    "subscription_end_date = today() + 6",
    "country = 'US' AND did('app_launched', since => today() - 3)",
    "did('charged', since => DATE '2026-06-10') OR age > 70",
    "in_segment('pricing_fans') AND NOT in_segment('recent_buyers')",
    "event_periods('app_launched', period => '36 hours', within => '6 days') >= 2",
    "(user_id < 'u0005' AND did('charged', within => '3 days')) OR user_id = 'u000001'",
    "1 = 1 AND did('charged', within => '2 days')",
    "event_max('product_viewed', 'price', within => '5 days') > 1000",
    "now() > TIMESTAMP '2026-06-10 00:00:00' OR 1 = 2",
    "did('charged', within => '36 hours') OR event_distinct('charged', 'quantity', "
    "within => '30 days') >= 2",
    # conjuncts that need events: the grid keeps only users who have them
    "event_count('page_viewed', within => '7 days') >= 3 AND last_seen('charged') > "
    "now() - interval '20 days'",
    "event_avg('charged', 'amount', within => '30 days') > 50 AND age > 30",
    "did_then('added_to_cart', 'charged', gap => '1 day', within => '7 days') AND "
    "event_count('page_viewed', within => '3 days') = 0",
    "0 < event_distinct('product_viewed', 'product', within => '7 days') AND NOT "
    "did('charged', within => '10 days')",
    # the event name and the user id read as properties
    "event_distinct('*', 'event', within => '3 days') >= 4",
    "event_distinct('charged', 'user_id', within => '7 days') = 1",
    # fallbacks to one evaluation per point: a filter reading now(), min of a string
    "event_count('charged', where => amount > 10 AND ts >= now() - interval '3 days') >= 1",
    "event_min('charged', 'payment_method') = 'card'",
    "did_then('added_to_cart', 'charged', gap => '1 day', where => price > 100, "
    "then_where => amount > 0)",
    # attribute-only conjuncts at the root: only users who pass them take rows
    "country = 'US' AND did('charged', within => '30 days') AND "
    "event_count('page_viewed', within => '7 days') >= 3",
    "country <> 'US' AND NOT did('charged', within => '10 days')",
    "age > 40 AND (did('charged', within => '5 days') OR country = 'DE')",
]


@pytest.fixture(scope="module")
def diff_store(sample_home, tmp_path_factory):
    import shutil

    from segcore import Store

    home = tmp_path_factory.mktemp("trend_diff") / "store"
    shutil.copytree(sample_home, home)
    store = Store(home)
    create_segment(
        store,
        "pricing_fans",
        "event_count('page_viewed', where => page = 'pricing', within => '30 days') > 1",
    )
    create_segment(store, "recent_buyers", "did('charged', within => '5 days')")
    yield store
    shutil.rmtree(home, ignore_errors=True)


@pytest.mark.parametrize("rule", DIFF_RULES)
def test_trend_equals_per_point_evaluation(diff_store, rule):
    fast = trend(diff_store, rule, "2026-06-05", "2026-06-18")
    slow = trend_naive(diff_store, rule, "2026-06-05", "2026-06-18")
    assert fast.equals(slow), fast.join(slow, on="date", suffix="_naive")
    assert fast["members"].sum() > 0


def test_weekly_trend_equals_per_point_evaluation(diff_store):
    rule = "event_periods('app_launched', period => 'day', within => '10 days') >= 4"
    fast = trend(diff_store, rule, "2026-04-01", "2026-06-30", "week")
    assert fast.height == 13
    assert fast.equals(trend_naive(diff_store, rule, "2026-04-01", "2026-06-30", "week"))


def test_cli_trend_json(shop, capsys):
    import json

    from segcore.cli import main

    rule = "did('buy', within => '2 days') AND country = 'US'"
    args = [
        "trend",
        "--home",
        str(shop.home),
        "--rule",
        rule,
        "--from",
        "2026-06-02",
        "--to",
        "2026-06-05",
    ]
    assert main([*args, "--json", "--entered", "2026-06-03", "--exited", "2026-06-05"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["points"] == [
        {"date": "2026-06-02", "members": 0, "entered": 0, "exited": 0},
        {"date": "2026-06-03", "members": 1, "entered": 1, "exited": 0},
        {"date": "2026-06-04", "members": 1, "entered": 0, "exited": 0},
        {"date": "2026-06-05", "members": 0, "entered": 0, "exited": 1},
    ]
    assert out["entered"]["user_ids"] == ["u1"] and out["exited"]["user_ids"] == ["u1"]
    assert main(args) == 0
    assert "2026-06-03 | 1" in capsys.readouterr().out
    create_segment(shop, "buyers", "did('buy', within => '2 days')")
    create_segment(shop, "everyone", "country IS NOT NULL")
    assert (
        main(
            [
                "trend",
                "--home",
                str(shop.home),
                "--segments",
                "buyers",
                "everyone",
                "--from",
                "2026-06-02",
                "--to",
                "2026-06-03",
                "--json",
            ]
        )
        == 0
    )
    many = json.loads(capsys.readouterr().out)["segments"]
    assert [p["members"] for p in many["buyers"]["points"]] == [1, 2]
    assert [p["members"] for p in many["everyone"]["points"]] == [2, 2]
    assert main([*args[:5], "--from", "2026-06-05", "--to", "2026-06-01"]) == 2
    assert "before it starts" in capsys.readouterr().err


@pytest.mark.parametrize(
    "rule", [DIFF_RULES[0], DIFF_RULES[10], DIFF_RULES[11], DIFF_RULES[16], DIFF_RULES[19]]
)
@pytest.mark.parametrize("dense_cells", [0, 10**9])
def test_blocks_of_users_give_the_same_trend(diff_store, monkeypatch, rule, dense_cells):
    import segcore.analytics.trend as trend_module

    whole = trend(diff_store, rule, "2026-06-05", "2026-06-18")
    monkeypatch.setattr(trend_module, "CHUNK_CELLS", 1000)  # 66 users per block
    # 0: count matrices built block by block from per-event rows (large grids)
    monkeypatch.setattr(trend_module, "DENSE_CELLS", dense_cells)
    assert trend(diff_store, rule, "2026-06-05", "2026-06-18").equals(whole)


def test_cli_trend_out_csv(shop, tmp_path, capsys):
    from segcore.cli import main

    out = tmp_path / "changes.csv"
    rule = "did('buy', within => '2 days')"
    args = [
        "trend",
        "--home",
        str(shop.home),
        "--rule",
        rule,
        "--from",
        "2026-06-02",
        "--to",
        "2026-06-05",
        "--entered",
        "2026-06-03",
        "--exited",
        "2026-06-04",
    ]
    assert main([*args, "--out", str(out)]) == 0
    assert "wrote" in capsys.readouterr().out
    # entered 06-03: u1 (u2 was in since 06-02); exited 06-04: u2 (06-02 event left the window)
    assert pl.read_csv(out).rows() == [
        ("u1", "entered", "2026-06-03"),
        ("u2", "exited", "2026-06-04"),
    ]
    assert main([*args[:9], "--out", str(tmp_path / "x.csv")]) == 2
    assert "--entered/--exited" in capsys.readouterr().err


@pytest.mark.parametrize("rule", DIFF_RULES)
def test_trend_without_the_event_cache(diff_store, rule):
    # Parquet scans: events not in time order, user codes made on the fly, the smallest
    # required term read first and the other scans filtered to its users
    from segcore import Store

    cold = Store(diff_store.home, cache_events=False)
    warm = trend(diff_store, rule, "2026-06-05", "2026-06-18")
    assert trend(cold, rule, "2026-06-05", "2026-06-18").equals(warm)
    assert warm["members"].sum() > 0


@pytest.mark.parametrize("rule", DIFF_RULES[-3:])
def test_first_read_of_a_new_store_equals_the_cached_trend(diff_store, rule):
    # a new process: the cache is on but empty, so the first trend reads Parquet
    from segcore import Store

    first = Store(diff_store.home)
    got = trend(first, rule, "2026-05-20", "2026-06-30")
    assert got.equals(trend(diff_store, rule, "2026-05-20", "2026-06-30"))
    assert got.equals(trend(first, rule, "2026-05-20", "2026-06-30"))  # read again
    assert got.equals(trend_naive(diff_store, rule, "2026-05-20", "2026-06-30"))


ATTRIBUTE_RULES = [
    "country IS NULL AND did('buy', within => '2 days')",  # users without attributes pass
    "country = 'US' AND event_count('buy', within => '3 days') >= 1",
    "coalesce(country, 'none') <> 'US' AND NOT did('buy', within => '2 days')",
    "country = 'DE' AND subscription_end_date >= today()",
    "country IS NULL",
]


@pytest.mark.parametrize("rule", ATTRIBUTE_RULES)
@pytest.mark.parametrize("cache", [False, True])
def test_static_conjuncts_with_users_missing_from_the_users_table(tiny, rule, cache):
    from segcore import Store

    store = tiny(
        events=[
            ("u1", "buy", "2026-06-03T10:00:00", {"amount": 30.0}),
            ("u2", "buy", "2026-06-04T00:00:00", {"amount": 5.0}),
            ("u3", "buy", "2026-06-05T08:00:00", {"amount": 1.0}),  # not in the users table
            ("u4", "buy", "2026-06-02T08:00:00", {"amount": 1.0}),
        ],
        users=[*USERS, {"user_id": "u4", "country": None,
                        "subscription_end_date": dt.date(2026, 6, 9)}],
    )
    store = Store(store.home, cache_events=cache)
    want = trend_naive(store, rule, "2026-06-01", "2026-06-08")
    for _ in range(2):  # with the cache on: the first read (Parquet), then the cache
        assert trend(store, rule, "2026-06-01", "2026-06-08").equals(want)
    assert want["members"].sum() > 0


@pytest.mark.parametrize("zone", ["America/New_York", "Europe/Berlin"])
def test_first_read_across_clock_changes(diff_store, zone):
    from segcore import Store
    from segcore.lang.dates import report_zone

    rule = DIFF_RULES[-3]
    with report_zone(zone):
        first = Store(diff_store.home, cache_events=False)
        got = trend(first, rule, "2026-03-05", "2026-04-02")  # both zones change clocks
        assert got.equals(trend_naive(diff_store, rule, "2026-03-05", "2026-04-02"))
        assert got.equals(trend(diff_store, rule, "2026-03-05", "2026-04-02"))
        assert got["members"].sum() > 0


def test_point_index_runs_equal_binary_search():
    import numpy as np

    from segcore.analytics.trend import _point_index

    rng = np.random.default_rng(5)
    bounds = np.sort(rng.integers(0, 1000, 40))  # repeated bounds too
    for ts in (np.sort(rng.integers(-50, 1050, 5000)), np.array([7]), bounds.copy()):
        want = np.searchsorted(bounds, ts, side="right")
        assert np.array_equal(_point_index(ts, bounds), want)
    shuffled = rng.permutation(np.sort(rng.integers(0, 1000, 300)))
    assert np.array_equal(
        _point_index(shuffled, bounds), np.searchsorted(bounds, shuffled, side="right")
    )
    assert _point_index(np.array([], dtype=np.int64), bounds).size == 0


def test_required_terms_are_the_ones_a_member_needs_events_for(shop):
    from segcore.analytics.trend import _required_terms
    from segcore.engine.polars.evaluate import to_tree

    def needed(rule: str) -> list[str]:
        return [f"{t.func}:{getattr(t, 'event', None) or t.first}"
                for t in _required_terms(to_tree(shop, rule))]

    assert needed("did('buy') AND event_count('visit', within => '7 days') >= 2") == [
        "did:buy", "event_count:visit"]
    assert needed("event_count('visit') >= 0 AND event_count('visit') < 3") == []  # 0 passes
    assert needed("2 <= event_count('visit')") == ["event_count:visit"]
    assert needed("event_sum('buy', 'amount') > -1") == []
    assert needed("last_seen('visit') < now() AND country = 'US'") == ["last_seen:visit"]
    assert needed("did('buy') OR did('visit')") == []  # either one: no single requirement
    assert needed("NOT did('buy')") == []
    assert needed("did_then_not('visit', 'buy', gap => '1 hour')") == ["did_then_not:visit"]


@pytest.mark.parametrize("threads", [1, 3])
def test_run_sums_equal_counting_each_window(monkeypatch, threads):
    """Window counts and sums from run pieces: several time-ordered runs (one per file,
    or per chunk of a read), windows that are whole steps and ones that are not, users
    who are not candidates; the bounds split among threads or not."""
    import numpy as np

    import segcore.analytics.trend as trend_module
    from segcore.analytics.trend import _run_sums, _time_runs
    from segcore.store.cache import USER_CODE

    monkeypatch.setattr(trend_module, "THREADS", threads)
    monkeypatch.setattr(trend_module, "PARALLEL_EVENTS", 0)

    rng = np.random.default_rng(11)
    chunks = [
        pl.DataFrame({
            USER_CODE: rng.integers(0, 9, n).astype(np.uint32),
            "ts": np.sort(rng.integers(0, 2_000, n)),
            "amount": rng.normal(size=n),
        })
        for n in (400, 1, 250, 0, 333)
    ]
    chunks.append(pl.concat([chunks[0], chunks[2]], rechunk=True))  # two runs in one chunk
    frame = pl.concat(chunks, rechunk=False).with_columns(
        pl.col("ts").cast(pl.Datetime("us", "UTC"))
    )
    runs = _time_runs(frame)
    assert runs is not None and len(runs) == 6  # four chunks, one of two runs, no empty one
    assert sum(len(r[1]) for r in runs) == len(frame)
    codes = frame[USER_CODE].to_numpy()
    ts = frame["ts"].dt.epoch("us").to_numpy()
    v = frame["amount"].to_numpy()
    column = np.array([0, 1, 2, 3, 4, 5, 6, 6, 6])  # codes 6..8: not candidates (spare 6)
    hi = np.arange(100, 2_100, 100)
    for lo in (hi - 300, hi - 250, np.full(len(hi), -(2**63))):
        inside = [(column[codes] == u) for u in range(7)]
        want = np.array([
            [np.count_nonzero(m & (ts >= a) & (ts < b)) for m in inside]
            for a, b in zip(lo, hi, strict=True)
        ])
        assert np.array_equal(_run_sums(runs, column, lo, hi, 7, len(hi)), want)
        sums = _run_sums(_time_runs(frame, "amount"), column, lo, hi, 7, len(hi))
        want_s = np.array([
            [v[m & (ts >= a) & (ts < b)].sum() for m in inside]
            for a, b in zip(lo, hi, strict=True)
        ])
        assert np.allclose(sums, want_s)


def test_point_index_of_runs_from_several_files():
    import numpy as np

    from segcore.analytics.trend import _point_index

    rng = np.random.default_rng(3)
    bounds = np.sort(rng.integers(0, 1000, 30))
    ts = np.concatenate([np.sort(rng.integers(-20, 1020, n)) for n in (500, 200, 700)])
    assert np.array_equal(_point_index(ts, bounds), np.searchsorted(bounds, ts, side="right"))


@pytest.mark.parametrize("rule", [DIFF_RULES[0], DIFF_RULES[2], DIFF_RULES[6], DIFF_RULES[12],
                                  DIFF_RULES[26], DIFF_RULES[-3], DIFF_RULES[-1]])
def test_trend_from_several_event_files(diff_store, tmp_path, monkeypatch, rule):
    """A store written in several imports has one time-ordered run per file: a first
    read (Parquet, no cache) gives the trend of one evaluation per point."""
    import shutil

    import segcore.analytics.trend as trend_module
    from segcore import Store
    from segcore.store.events import write_events_file

    home = tmp_path / "store"
    shutil.copytree(diff_store.home, home)
    events = Store(home).scan_events().collect()
    for f in Store(home).event_files():
        f.unlink()
    users = events["user_id"].unique().sort()
    for i in range(3):  # three imports of every day, by user
        part = events.filter(pl.col("user_id").is_in(users.gather_every(3, i).implode()))
        write_events_file(part, home / "events" / f"part-{i:05d}.parquet")
    cold = Store(home, cache_events=False)
    monkeypatch.setattr(trend_module, "THREADS", 2)  # the sample is small: threads anyway
    monkeypatch.setattr(trend_module, "PARALLEL_EVENTS", 0)
    got = trend(cold, rule, "2026-06-01", "2026-06-30")
    assert got.equals(trend_naive(diff_store, rule, "2026-06-01", "2026-06-30"))
    assert got["members"].sum() > 0
