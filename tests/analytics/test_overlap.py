"""Overlap of saved segments: regions and Jaccard by hand."""

from __future__ import annotations

import json

import pytest

from segcore.analytics.overlap import overlap
from segcore.cli import main
from segcore.errors import UsageError
from segcore.segments import create_segment


@pytest.fixture
def groups(tiny):
    users = [{"user_id": f"u{i}", "age": 10 * i} for i in range(1, 7)]  # ages 10..60
    store = tiny(
        events=[
            ("u1", "buy", "2026-06-01T10:00:00"),
            ("u2", "buy", "2026-06-01T10:00:00"),
            ("u5", "buy", "2026-06-01T10:00:00"),
        ],
        users=users,
    )
    create_segment(store, "buyers", "did('buy')")  # u1 u2 u5
    create_segment(store, "old", "age >= 40")  # u4 u5 u6
    create_segment(store, "picked", ids=["u2", "u5", "u6"])
    return store


def test_two_segments(groups):
    out = overlap(groups, ["buyers", "old"], as_of="2026-06-30")
    assert out["sizes"] == {"buyers": 3, "old": 3}
    assert out["union"] == 5
    assert out["regions"] == [
        {"segments": ["buyers"], "count": 2},
        {"segments": ["old"], "count": 2},
        {"segments": ["buyers", "old"], "count": 1},
    ]
    assert out["pairs"] == [
        {"a": "buyers", "b": "old", "intersection": 1, "union": 5, "jaccard": 0.2}
    ]


def test_three_segments_and_rules(groups):
    out = overlap(groups, ["buyers", "old", "picked", "age < 20"], as_of="2026-06-30")
    # u1: buyers, age<20; u2: buyers, picked; u4: old; u5: all three; u6: old, picked
    assert sorted((r["segments"], r["count"]) for r in out["regions"]) == sorted(
        [
            (["buyers", "age < 20"], 1),
            (["buyers", "picked"], 1),
            (["old"], 1),
            (["buyers", "old", "picked"], 1),
            (["old", "picked"], 1),
        ]
    )
    assert sum(r["count"] for r in out["regions"]) == out["union"] == 5
    pairs = {(p["a"], p["b"]): p for p in out["pairs"]}
    assert len(pairs) == 6
    assert pairs[("buyers", "picked")]["jaccard"] == pytest.approx(2 / 4)  # {u2,u5}/{u1,u2,u5,u6}
    assert pairs[("old", "picked")]["jaccard"] == pytest.approx(2 / 4)
    assert pairs[("old", "age < 20")]["jaccard"] == 0.0


def test_errors_and_cli(groups, capsys):
    with pytest.raises(UsageError, match="2 to 5 segments, got 1"):
        overlap(groups, ["buyers"])
    with pytest.raises(UsageError, match="got 6"):
        overlap(groups, ["buyers", "old", "picked", "age > 1", "age > 2", "age > 3"])
    with pytest.raises(UsageError, match="twice"):
        overlap(groups, ["buyers", "buyers"])
    code = main(
        ["overlap", "--home", str(groups.home), "buyers", "old", "--as-of", "2026-06-30", "--json"]
    )
    assert code == 0
    assert json.loads(capsys.readouterr().out)["pairs"][0]["jaccard"] == 0.2
