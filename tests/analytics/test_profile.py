"""Audience profile: hand-made users and shares on the sample store."""

from __future__ import annotations

import datetime as dt
import json

import polars as pl
import pytest

from segcore.analytics.profile import profile
from segcore.cli import main
from segcore.errors import UsageError

USERS = [
    {
        "user_id": "u1",
        "country": "US",
        "age": 20,
        "vip": True,
        "tags": ["VIP", "Customer"],
        "created_at": dt.datetime(2026, 1, 5),
    },
    {
        "user_id": "u2",
        "country": "US",
        "age": 30,
        "vip": False,
        "tags": ["Customer"],
        "created_at": dt.datetime(2026, 1, 20),
    },
    {
        "user_id": "u3",
        "country": "DE",
        "age": 40,
        "vip": None,
        "tags": [],
        "created_at": dt.datetime(2026, 2, 1),
    },
    {"user_id": "u4", "country": None, "age": None, "vip": True, "tags": None, "created_at": None},
]


@pytest.fixture
def crowd(tiny):
    # u5 only appears in events: in the universe with NULL attributes
    return tiny(
        events=[
            ("u5", "visit", "2026-06-01T10:00:00"),
            ("u1", "visit", "2026-06-02T10:00:00"),
            ("u2", "visit", "2026-06-02T11:00:00"),
        ],
        users=USERS,
    )


def by_value(rows):
    return {r["value"]: r for r in rows}


def test_categorical_with_lift_other_and_none(crowd):
    out = profile(crowd, "did('visit')", as_of="2026-06-30", attributes=["country"], top=1)
    assert (out["members"], out["all"]) == (3, 5)  # u1, u2, u5 of u1..u5
    rows = by_value(out["attributes"]["country"]["values"])
    assert list(rows) == ["US", "other", "(none)"]  # other = DE: no member, one user
    assert (rows["other"]["count"], rows["other"]["all_count"]) == (0, 1)
    assert rows["US"]["count"] == 2 and rows["US"]["all_count"] == 2
    assert rows["US"]["share"] == pytest.approx(2 / 3)
    assert rows["US"]["lift"] == pytest.approx((2 / 3) / (2 / 5))
    assert rows["(none)"]["count"] == 1 and rows["(none)"]["all_count"] == 2  # u5; u4, u5
    top2 = by_value(
        profile(crowd, "did('visit')", as_of="2026-06-30", attributes=["country"], top=5)[
            "attributes"
        ]["country"]["values"]
    )
    assert top2["DE"] == {
        "value": "DE",
        "count": 0,
        "share": 0.0,
        "all_count": 1,
        "all_share": 0.2,
        "lift": 0.0,
    }
    assert sum(r["share"] for r in top2.values()) == pytest.approx(1.0)


def test_other_bucket(crowd):
    out = profile(crowd, "age >= 20", as_of="2026-06-30", attributes=["country"], top=1)
    rows = by_value(out["attributes"]["country"]["values"])
    assert rows["US"]["count"] == 2 and rows["other"]["count"] == 1  # DE
    assert rows["other"]["all_count"] == 1


def test_numeric_boolean_dates_and_tags(crowd):
    out = profile(
        crowd,
        "did('visit')",
        as_of="2026-06-30",
        attributes=["age", "vip", "created_at", "tags"],
        bins=2,
    )
    age = out["attributes"]["age"]
    assert age["kind"] == "numeric"
    assert age["edges"] == [20.0, 30.0, 40.0]
    bins = by_value(age["bins"])
    assert bins["[20, 30)"]["count"] == 1 and bins["[20, 30)"]["all_count"] == 1
    assert bins["[30, 40]"]["count"] == 1 and bins["[30, 40]"]["all_count"] == 2
    assert bins["(none)"]["count"] == 1 and bins["(none)"]["all_count"] == 2
    assert (age["mean"], age["median"], age["all_mean"]) == (25.0, 25.0, 30.0)
    vip = by_value(out["attributes"]["vip"]["values"])
    assert (vip["true"]["count"], vip["false"]["count"], vip["(none)"]["count"]) == (1, 1, 1)
    assert (vip["true"]["all_count"], vip["(none)"]["all_count"]) == (2, 2)
    months = by_value(out["attributes"]["created_at"]["months"])
    assert list(months) == ["2026-01", "2026-02", "(none)"]
    assert (months["2026-01"]["count"], months["2026-01"]["all_count"]) == (2, 2)
    tags = by_value(out["attributes"]["tags"]["values"])
    assert (tags["Customer"]["count"], tags["VIP"]["count"]) == (2, 1)
    assert tags["(none)"]["count"] == 1 and tags["(none)"]["all_count"] == 3  # u3 [], u4, u5


def test_sample_shares_sum_to_one(sample_store):
    rule = "event_count('page_viewed', where => page = 'pricing') > 2"
    out = profile(sample_store, rule, as_of="2026-06-30")
    assert out["members"] == sample_store.count(rule, as_of="2026-06-30")
    assert {"country", "plan", "age", "tags", "total_spent", "created_at"} <= set(out["attributes"])
    for name, body in out["attributes"].items():
        rows = body.get("bins") or body.get("months") or body["values"]
        if body["kind"] != "list":
            assert sum(r["share"] for r in rows) == pytest.approx(1.0), name
            assert sum(r["all_share"] for r in rows) == pytest.approx(1.0), name
            assert sum(r["count"] for r in rows) == out["members"], name
    users = sample_store.scan_users().collect()
    seg = users.join(sample_store.members(rule, as_of="2026-06-30"), on="user_id", how="semi")
    us = by_value(out["attributes"]["country"]["values"])["US"]
    assert us["count"] == seg.filter(pl.col("country") == "US").height
    assert us["lift"] == pytest.approx(
        (us["count"] / seg.height) / (users.filter(pl.col("country") == "US").height / out["all"])
    )


def test_errors_and_cli(crowd, capsys):
    with pytest.raises(UsageError, match="unknown attribute"):
        profile(crowd, "did('visit')", as_of="2026-06-30", attributes=["shoe_size"])
    code = main(
        [
            "profile",
            "--home",
            str(crowd.home),
            "--rule",
            "did('visit')",
            "--as-of",
            "2026-06-30",
            "--attribute",
            "country",
            "--json",
        ]
    )
    assert code == 0
    out = json.loads(capsys.readouterr().out)
    assert out["members"] == 3 and out["attributes"]["country"]["kind"] == "categorical"
    assert (
        main(
            [
                "profile",
                "--home",
                str(crowd.home),
                "--rule",
                "did('visit')",
                "--as-of",
                "2026-06-30",
                "--attribute",
                "age",
            ]
        )
        == 0
    )
    assert "age [numeric]" in capsys.readouterr().out
