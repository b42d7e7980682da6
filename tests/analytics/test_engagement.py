"""Engagement and conversion of members, now and over time."""

from __future__ import annotations

import json

import pytest

from segcore.analytics.engagement import engagement, engagement_over_time
from segcore.cli import main
from segcore.errors import RuleError

USERS = [{"user_id": f"u{i}", "country": "US"} for i in range(1, 5)]


@pytest.fixture
def active(tiny):
    return tiny(
        events=[
            ("u1", "visit", "2026-06-29T10:00:00"),  # active in 7 and 30 days
            ("u2", "visit", "2026-06-10T10:00:00"),  # 30 days only (T = 07-01)
            ("u2", "buy", "2026-06-10T11:00:00"),
            ("u3", "buy", "2026-05-01T10:00:00"),  # neither
        ],
        users=USERS,
    )


def test_shares_by_hand(active):
    out = engagement(active, "country = 'US'", as_of="2026-06-30", goal="buy")
    assert out["members"] == 4
    assert out["active_7d"] == {"count": 1, "share": 0.25}
    assert out["active_30d"] == {"count": 2, "share": 0.5}
    assert out["goal"] == {"event": "buy", "within": "30 days", "count": 1, "share": 0.25}
    longer = engagement(
        active, "country = 'US'", as_of="2026-06-30", goal="buy", goal_within="90 days"
    )
    assert longer["goal"]["count"] == 2
    assert engagement(active, "country = 'XX'", as_of="2026-06-30")["active_7d"] == {
        "count": 0,
        "share": 0.0,
    }
    with pytest.raises(RuleError, match="unknown event 'nope'"):
        engagement(active, "country = 'US'", goal="nope")


def test_over_time_matches_point_reports(active):
    df = engagement_over_time(
        active,
        "did('visit', within => '30 days')",
        "2026-06-08",
        "2026-07-12",
        every="week",
        goal="buy",
    )
    assert df["date"].cast(str).to_list() == [
        "2026-06-14",
        "2026-06-21",
        "2026-06-28",
        "2026-07-05",
        "2026-07-12",
    ]
    for row in df.iter_rows(named=True):
        one = engagement(active, "did('visit', within => '30 days')", as_of=row["date"], goal="buy")
        assert row["members"] == one["members"]
        assert row["active_7d"] == one["active_7d"]["count"]
        assert row["active_30d"] == one["active_30d"]["count"]
        assert row["goal"] == one["goal"]["count"]
        assert row["goal_share"] == pytest.approx(one["goal"]["share"])
    assert df["members"].to_list() == [1, 1, 1, 2, 1]


def test_cli(active, capsys):
    assert (
        main(
            [
                "engagement",
                "--home",
                str(active.home),
                "--rule",
                "country = 'US'",
                "--as-of",
                "2026-06-30",
                "--goal",
                "buy",
                "--json",
            ]
        )
        == 0
    )
    assert json.loads(capsys.readouterr().out)["goal"]["count"] == 1
    assert (
        main(
            [
                "engagement",
                "--home",
                str(active.home),
                "--rule",
                "country = 'US'",
                "--from",
                "2026-06-28",
                "--to",
                "2026-06-30",
                "--json",
            ]
        )
        == 0
    )
    points = json.loads(capsys.readouterr().out)["points"]
    assert [p["active_7d"] for p in points] == [0, 1, 1]  # u1 visits on 06-29
