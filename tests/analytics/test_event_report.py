"""Event reports (docs/analytics.md) on a hand-made store."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import polars as pl
import pytest

from segcore import Store
from segcore.analytics.event_report import event_report
from segcore.errors import UsageError

UTC = dt.timezone.utc
D = dt.date


def make_store(home: Path) -> Store:
    rows = [
        # user, event, ts, product, amount
        ("u1", "view", "2026-06-01T10:00:00", "tv", 10.0),
        ("u1", "view", "2026-06-01T11:00:00", "tv", 20.0),
        ("u2", "view", "2026-06-01T12:00:00", "radio", 5.0),
        ("u1", "buy", "2026-06-01T13:00:00", "tv", 900.0),
        ("u3", "view", "2026-06-03T09:00:00", None, 1.0),
        ("u3", "view", "2026-06-03T23:59:59.999999", "phone", 2.0),
        ("u2", "buy", "2026-06-08T00:00:00", "radio", 50.0),  # a Monday
        ("u4", "view", "2026-06-04T00:00:00", "lamp", 3.0),
        ("u4", "view", "2026-05-31T23:59:59", "tv", 3.0),  # before the range
        ("u4", "view", "2026-06-09T00:00:00", "tv", 3.0),  # after the range
    ]
    (home / "events").mkdir(parents=True)
    pl.DataFrame(
        {
            "user_id": [r[0] for r in rows],
            "event": [r[1] for r in rows],
            "ts": [dt.datetime.fromisoformat(r[2]).replace(tzinfo=UTC) for r in rows],
            "product": [r[3] for r in rows],
            "amount": [r[4] for r in rows],
        },
        schema_overrides={"ts": pl.Datetime("us", "UTC")},
    ).with_columns(pl.int_range(pl.len()).cast(pl.String).alias("event_id")).write_parquet(
        home / "events" / "part-1.parquet"
    )
    return Store(home)


@pytest.fixture
def store(tmp_path: Path) -> Store:
    return make_store(tmp_path)


def test_daily_full_calendar(store: Store) -> None:
    df = event_report(store, ["view", "buy"], "2026-06-01", "2026-06-08")
    assert df.columns == ["period", "event", "events", "users"]
    assert df.height == 16  # 8 days x 2 events, zeros included
    got = {(r["period"], r["event"]): (r["events"], r["users"]) for r in df.to_dicts()}
    assert got[(D(2026, 6, 1), "view")] == (3, 2)
    assert got[(D(2026, 6, 1), "buy")] == (1, 1)
    assert got[(D(2026, 6, 2), "view")] == (0, 0)
    assert got[(D(2026, 6, 3), "view")] == (2, 1)
    assert got[(D(2026, 6, 4), "view")] == (1, 1)
    assert got[(D(2026, 6, 8), "buy")] == (1, 1)
    assert df["events"].sum() == 8
    assert df["period"].to_list()[:4] == [D(2026, 6, 1)] * 2 + [D(2026, 6, 2)] * 2
    assert df["event"].to_list()[:2] == ["view", "buy"]


def test_weekly_periods_are_mondays(store: Store) -> None:
    df = event_report(store, ["view", "buy"], "2026-06-01", "2026-06-08", every="week")
    assert df.rows() == [
        (D(2026, 6, 1), "view", 6, 4),
        (D(2026, 6, 1), "buy", 1, 1),
        (D(2026, 6, 8), "view", 0, 0),
        (D(2026, 6, 8), "buy", 1, 1),
    ]


def test_by_property_top_n_other_none(store: Store) -> None:
    df = event_report(
        store, ["view"], "2026-06-01", "2026-06-04", every="week", by="product", top=1
    )
    # view counts in range: tv 2, radio 1, phone 1, lamp 1, NULL 1
    assert df.rows() == [
        (D(2026, 6, 1), "view", "tv", 2, 1),
        (D(2026, 6, 1), "view", "other", 3, 3),
        (D(2026, 6, 1), "view", "(none)", 1, 1),
    ]
    df = event_report(store, ["view"], "2026-06-01", "2026-06-01", by="product", top=5)
    assert df.select("value", "events", "users").rows() == [("tv", 2, 1), ("radio", 1, 1)]


def test_where_filter(store: Store) -> None:
    df = event_report(
        store,
        ["view", "buy"],
        "2026-06-01",
        "2026-06-08",
        every="week",
        where=pl.col("amount") >= 10,
    )
    assert df.filter(pl.col("period") == D(2026, 6, 1)).rows() == [
        (D(2026, 6, 1), "view", 2, 1),
        (D(2026, 6, 1), "buy", 1, 1),
    ]
    text = event_report(
        store,
        ["view", "buy"],
        "2026-06-01",
        "2026-06-08",
        every="week",
        where="amount >= 10 AND product = 'tv'",
    )
    assert text["events"].to_list() == [2, 1, 0, 0]


def test_segments(store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    import segcore.analytics.event_report as mod

    seg = {"a": ["u1", "u3"], "b": ["u1", "u2"]}
    monkeypatch.setattr(
        mod, "_members", lambda store, name, at: pl.DataFrame({"user_id": seg[name]})
    )
    df = event_report(
        store, ["view"], "2026-06-01", "2026-06-08", every="week", segments=["b", "a"]
    )
    assert df.rows() == [
        (D(2026, 6, 1), "view", "b", 3, 2),
        (D(2026, 6, 1), "view", "a", 4, 2),
        (D(2026, 6, 8), "view", "b", 0, 0),
        (D(2026, 6, 8), "view", "a", 0, 0),
    ]
    df = event_report(store, ["view", "buy"], "2026-06-01", "2026-06-08", every="week", segment="a")
    assert df["events"].to_list() == [4, 1, 0, 0]


def test_errors(store: Store) -> None:
    with pytest.raises(UsageError, match="unknown event 'nope'"):
        event_report(store, ["nope"], "2026-06-01", "2026-06-02")
    with pytest.raises(UsageError, match="unknown event property 'color'"):
        event_report(store, ["view"], "2026-06-01", "2026-06-02", by="color")
    with pytest.raises(UsageError, match="bad step"):
        event_report(store, ["view"], "2026-06-01", "2026-06-02", every="month")
    with pytest.raises(UsageError, match="before it starts"):
        event_report(store, ["view"], "2026-06-02", "2026-06-01")
    with pytest.raises(UsageError, match="at least one event"):
        event_report(store, [], "2026-06-01", "2026-06-02")


def test_cli_events_json(store: Store, capsys: pytest.CaptureFixture) -> None:
    import json

    from segcore.cli import main

    code = main(
        [
            "events",
            "--home",
            str(store.home),
            "--event",
            "view",
            "--event",
            "buy",
            "--from",
            "2026-06-01",
            "--to",
            "2026-06-08",
            "--every",
            "week",
            "--json",
        ]
    )
    out, _ = capsys.readouterr()
    assert code == 0
    data = json.loads(out)
    assert data["rows"][0] == {"period": "2026-06-01", "event": "view", "events": 6, "users": 4}
    assert len(data["rows"]) == 4
    code = main(
        [
            "events",
            "--home",
            str(store.home),
            "--event",
            "view",
            "--from",
            "2026-06-01",
            "--to",
            "2026-06-04",
            "--by",
            "product",
            "--top",
            "1",
        ]
    )
    out, _ = capsys.readouterr()
    assert code == 0 and "other" in out and "(none)" in out
    code = main(
        [
            "events",
            "--home",
            str(store.home),
            "--event",
            "nope",
            "--from",
            "2026-06-01",
            "--to",
            "2026-06-04",
        ]
    )
    _, err = capsys.readouterr()
    assert code == 2 and err.strip() == "error: unknown event 'nope'"


def test_store_api_and_real_segment(store: Store) -> None:
    store.catalog.create("s", kind="static", members=["u3", "u4"])
    df = store.events(["view"], start="2026-06-01", end="2026-06-08", every="week", segment="s")
    # u3: 2 views; u4: 1 view in range (the others are outside it)
    assert df.rows() == [(D(2026, 6, 1), "view", 3, 2), (D(2026, 6, 8), "view", 0, 0)]
    df = store.events(["view"], start="2026-06-01", end="2026-06-08", every="week", segments=["s"])
    assert df["segment"].to_list() == ["s", "s"] and df["events"].to_list() == [3, 0]
