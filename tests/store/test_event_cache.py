"""The event-column cache (segcore/store/cache.py) serves what a filtered Parquet scan
serves: on the first read (answered by the scan itself), once it builds a block (second
read, sorted by time), for columns added later, for all events, after a new data
version, and when a long-lived store builds the blocks in a background thread."""

from __future__ import annotations

import datetime as dt
import threading

import polars as pl

from segcore import Store
from segcore.store.cache import USER_CODE
from tests.conftest import make_store

UTC = dt.timezone.utc


def _rows(lf: pl.LazyFrame) -> list[tuple]:
    """The frame's rows as plain values, in a canonical order."""
    df = lf.collect().with_columns(pl.col(pl.Categorical).cast(pl.String))
    return sorted(df.rows(), key=repr)


def _events() -> list[tuple]:
    t0 = dt.datetime(2026, 1, 1, tzinfo=UTC)
    out = []
    for i in range(60):  # interleaved users, times out of order within an event
        ts = t0 + dt.timedelta(hours=(i * 37) % 97)
        out.append((f"u{i % 7}", ("a", "b", "c")[i % 3], ts, {"amount": float(i)}))
    return out


def test_cache_equals_parquet_scan_first_and_later_reads(tmp_path):
    make_store(tmp_path, _events())
    hot, cold = Store(tmp_path), Store(tmp_path, cache_events=False)
    since, until = dt.datetime(2026, 1, 2, tzinfo=UTC), dt.datetime(2026, 1, 4, tzinfo=UTC)
    asks = [
        (["ts", USER_CODE], ["a"], since, until),  # first read: a Parquet scan
        (["ts", USER_CODE], ["a"], since, until),  # second read: block built, sorted
        (["ts", "amount", "user_id"], ["a", "b"], None, until),  # column added after sort
        (["event", "ts", "user_id", USER_CODE], None, since, None),  # all events
        (["ts", "amount"], ["missing", "c"], None, None),  # unknown event name
        (["ts", USER_CODE], ["zzz"], None, None),  # nothing at all
    ]
    for cols, events, lo, hi in asks:
        got = hot.events_frame(cols, events=events, since=lo, until=hi)
        want = cold.events_frame(cols, events=events, since=lo, until=hi)
        assert _rows(got) == _rows(want), (cols, events)
        assert got.collect_schema().names() == cols
    # a sorted block is served in time order
    block = hot.events_frame(["ts"], events=["a"]).collect()["ts"]
    assert block.is_sorted() and block.len() == 20


def test_new_data_version_invalidates_the_cache(tmp_path):
    store = make_store(tmp_path, _events())
    first = store.events_frame(["ts", "user_id"], events=["a"]).collect()
    assert first.height == 20
    extra = pl.DataFrame({"user_id": ["new"], "event": ["a"], "event_id": ["x"],
                          "ts": [dt.datetime(2026, 3, 1, tzinfo=UTC)], "amount": [1.0]})
    extra.write_parquet(tmp_path / "events" / "part-1.parquet")
    again = store.events_frame(["ts", "user_id"], events=["a"]).collect()
    assert again.height == 21 and "new" in again["user_id"].to_list()


def test_stores_over_the_row_limit_scan_parquet(tmp_path, monkeypatch, caplog):
    monkeypatch.setenv("SEGCORE_EVENT_CACHE_MAX_ROWS", "10")
    store = make_store(tmp_path, _events())
    cold = Store(tmp_path, cache_events=False)
    got = store.events_frame(["ts", USER_CODE], events=["b"])
    assert _rows(got) == _rows(cold.events_frame(["ts", USER_CODE], events=["b"]))
    assert not store.cache.enabled
    assert "60 events exceed SEGCORE_EVENT_CACHE_MAX_ROWS (10)" in caplog.text


def test_the_scan_path_answers_like_the_cache(sample_home, monkeypatch):
    """A store over SEGCORE_EVENT_CACHE_MAX_ROWS (forced tiny here) answers rules, trends
    and funnels from Parquet scans with the same numbers as the in-memory cache."""
    from segcore.analytics.funnel import funnel
    from segcore.analytics.trend import trend

    rule = "did('charged', within => '30 days') AND event_count('page_viewed', within => '7 days') >= 3"
    steps = ["product_viewed", "added_to_cart", "charged"]

    def answers(store: Store) -> tuple:
        return (store.members(rule, as_of="2026-06-30")["user_id"].to_list(),
                trend(store, rule, start="2026-06-01", end="2026-06-30")["members"].to_list(),
                [s["users"] for s in funnel(store, steps, window="1d", start="2026-03-01",
                                            end="2026-06-30")["steps"]])

    hot = Store(sample_home)
    want = answers(hot)
    assert hot.cache.enabled
    monkeypatch.setenv("SEGCORE_EVENT_CACHE_MAX_ROWS", "1000")
    big = Store(sample_home)
    assert answers(big) == want
    assert not big.cache.enabled


def test_a_first_read_builds_nothing_and_a_second_read_builds_the_block(tmp_path):
    """A one-shot process (a CLI call) never pays for a cache it will not reuse."""
    store = make_store(tmp_path, _events())
    first = store.events_frame(["ts", USER_CODE], events=["a", "b"]).collect()
    assert store.cache._blocks == {}  # answered by a filtered Parquet scan
    assert store.cache._users is None or store.cache._users[1] is None
    again = store.events_frame(["ts", USER_CODE], events=["a", "b"]).collect()
    assert sorted(store.cache._blocks) == ["a", "b"]
    assert _rows(first.lazy()) == _rows(again.lazy())
    assert store.cache.frame(["ts"], ["a"], None, None).collect()["ts"].is_sorted()


def test_a_long_lived_store_builds_the_cache_in_the_background(tmp_path):
    make_store(tmp_path, _events(), users=[{"user_id": f"u{i}", "age": i} for i in range(7)])
    store, cold = Store(tmp_path, background_cache=True), Store(tmp_path, cache_events=False)
    asks = (["ts", USER_CODE, "amount"], ["a", "c"], None, dt.datetime(2026, 1, 3, tzinfo=UTC))
    first = store.events_frame(*asks)  # from Parquet, while a thread builds the blocks
    users = store.scan_users().collect()
    for thread in store.cache.threads:
        thread.join(timeout=60)
    assert sorted(store.cache._blocks) == ["a", "c"] and store.cache._filling == set()
    assert store.cache._users is not None and store.cache._users[1] is not None
    assert _rows(first) == _rows(store.events_frame(*asks)) == _rows(cold.events_frame(*asks))
    assert store.scan_users().collect().equals(users)


def test_a_long_lived_store_never_builds_on_a_read(tmp_path, monkeypatch):
    """A column new to a built block, asked by a long-lived store, is added by a thread
    while the read scans Parquet: no read of the dashboard or the service waits on a build
    (segcore/store/cache.py)."""
    make_store(tmp_path, _events())
    store, cold = Store(tmp_path, background_cache=True), Store(tmp_path, cache_events=False)
    store.events_frame(["ts", USER_CODE], events=["a"])
    for thread in store.cache.threads:
        thread.join(timeout=60)
    block = store.cache._blocks["a"]
    asks = (["ts", USER_CODE, "amount"], ["a"], None, None)
    builds = []
    real = store.cache._prepare
    monkeypatch.setattr(store.cache, "_prepare", lambda df, b: builds.append(
        threading.current_thread() is threading.main_thread()) or real(df, b))
    first = store.events_frame(*asks)  # from Parquet: "amount" is not in the block yet
    assert "amount" not in block.cols or builds == [False]
    for thread in store.cache.threads:
        thread.join(timeout=60)
    assert builds == [False]  # built once, in the background thread
    assert store.cache._blocks["a"] is block and "amount" in block.cols
    assert _rows(first) == _rows(store.events_frame(*asks)) == _rows(cold.events_frame(*asks))


def test_per_event_windows_and_the_user_key(tmp_path):
    """``events`` as a mapping reads each event over its own window, from Parquet (one scan
    per name) and from the cache alike; ``USER_KEY`` is a user key whatever serves it."""
    from segcore.store.cache import USER_KEY

    make_store(tmp_path, _events())
    hot, cold = Store(tmp_path), Store(tmp_path, cache_events=False)
    t0 = dt.datetime(2026, 1, 1, tzinfo=UTC)
    windows = {"a": t0 + dt.timedelta(hours=40), "b": None, "c": t0 + dt.timedelta(hours=80)}
    until = t0 + dt.timedelta(hours=90)
    every = cold.scan_events().collect()
    want = sorted(
        (r["ts"], r["user_id"], r["event"]) for r in every.iter_rows(named=True)
        if r["ts"] < until and (windows[r["event"]] is None or r["ts"] >= windows[r["event"]]))
    cols = ["ts", "user_id", "event", USER_KEY]
    for store in (cold, hot, hot, hot):  # Parquet; then the cache's first, building, later reads
        got = store.events_frame(cols, events=windows, until=until).collect()
        assert got.columns == cols
        rows = sorted((ts, u, str(e)) for ts, u, e in got.select("ts", "user_id", "event").rows())
        assert rows == want
        assert got[USER_KEY].cast(pl.String).to_list() == got["user_id"].to_list()


def test_rules_keep_only_user_codes_in_the_cache(tmp_path):
    """Evaluating rules reads the cache's user codes: no block derives the ``user_id``
    strings of a whole event or materialises its ``event`` column (the name is a literal
    on each slice), and every answer equals the Parquet scan's, before and after the
    blocks are built."""
    users = [{"user_id": f"u{i}", "plan": ("free", "pro")[i % 2]} for i in range(9)]
    store = make_store(tmp_path, _events(), users)
    cold = Store(tmp_path, cache_events=False)
    rules = [
        "did('a') AND event_count('b') >= 2",
        "NOT did('c', where => amount > 10)",  # the universe: every user with an event
        "plan = 'pro' AND event_sum('a', amount) > 30",
        "did_then('a', 'b', gap => '3 days')",
        "event_count('*') > 8",
    ]
    as_of = "2026-01-04"
    for rule in rules:  # ok-loop: a few rules, three reads each
        want = cold.members(rule, as_of=as_of)["user_id"].to_list()
        for _ in range(3):  # ok-loop: first read (Parquet), the build, a cached read
            assert store.members(rule, as_of=as_of)["user_id"].to_list() == want, rule
    assert sorted(store.cache._blocks) == ["a", "b", "c"]
    for name, block in store.cache._blocks.items():  # ok-loop: three blocks
        assert "user_id" not in block.cols and "event" not in block.cols, name
    # a caller asking for the strings still gets them (derived once per block)
    got = store.events_frame(["event", "user_id"], events=["a"])
    assert _rows(got) == _rows(cold.events_frame(["event", "user_id"], events=["a"]))
    assert len(_rows(got)) == 20 and "user_id" in store.cache._blocks["a"].cols
