"""CLI: ``--engine`` on the analytic commands, and its errors as one line."""

from __future__ import annotations

import json

import pytest

from segcore.cli import main
from tests.conftest import make_store

AS_OF = "2026-06-05"


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def home(tmp_path):
    """Four users; u1 charges on June 1 and 3, u2 on June 2, u3 never, u4 (no users row)
    on June 4 at exactly midnight."""
    events = [
        ("u1", "charged", "2026-06-01T10:00:00", {"amount": 5.0}),
        ("u1", "charged", "2026-06-03T23:59:59", {"amount": 7.5}),
        ("u2", "charged", "2026-06-02T00:00:00", {"amount": None}),
        ("u3", "viewed", "2026-06-02T12:00:00", {"amount": None}),
        ("u4", "charged", "2026-06-04T00:00:00", {"amount": 1.0}),
    ]
    users = [{"user_id": u, "country": c} for u, c in
             (("u1", "DE"), ("u2", "US"), ("u3", None))]
    return str(make_store(tmp_path / "s", events, users).home)


RULE = "did('charged', within => '1 day')"


@pytest.mark.parametrize("engine", ["polars", "duckdb", "clickhouse"])
def test_trend_by_hand_on_each_engine(capsys, home, engine):
    code, out, err = run(capsys, "trend", "--home", home, "--rule", RULE, "--from", "2026-06-01",
                         "--to", "2026-06-04", "--entered", "2026-06-04", "--json",
                         "--engine", engine)
    assert code == 0, err
    got = json.loads(out)
    assert [(p["members"], p["entered"], p["exited"]) for p in got["points"]] == [
        (1, 1, 0),  # June 1: u1
        (1, 1, 1),  # June 2: u2 in (00:00 is inside the day), u1 out
        (1, 1, 1),  # June 3: u1 (23:59:59) in, u2 out
        (1, 1, 1),  # June 4: u4 (00:00 June 4) in, u1 out
    ]
    assert got["entered"]["user_ids"] == ["u4"]


@pytest.mark.parametrize("engine", ["duckdb", "clickhouse"])
def test_events_and_eval_by_hand(capsys, home, engine):
    code, out, err = run(capsys, "events", "--home", home, "--event", "charged", "--from",
                         "2026-06-01", "--to", "2026-06-04", "--by", "amount", "--json",
                         "--engine", engine)
    assert code == 0, err
    rows = [(r["period"], r["value"], r["events"], r["users"]) for r in json.loads(out)["rows"]
            if r["events"]]
    assert rows == [("2026-06-01", "5.0", 1, 1), ("2026-06-02", "(none)", 1, 1),
                    ("2026-06-03", "7.5", 1, 1), ("2026-06-04", "1.0", 1, 1)]
    code, out, _ = run(capsys, "eval", "--home", home, "--rule", "country IS NULL", "--as-of",
                       AS_OF, "--json", "--engine", engine)
    assert json.loads(out)["count"] == 2 and json.loads(out)["engine"] == engine  # u3, u4


def test_engine_errors_are_one_line(capsys, home, monkeypatch):
    code, out, err = run(capsys, "reach", "--home", home, "--rule", RULE, "--engine", "oracle")
    assert code != 0 and out == ""
    assert err.strip().splitlines() == [
        "error: unknown engine 'oracle' (expected polars, duckdb, clickhouse or spark)"]
    code, _, err = run(capsys, "eval", "--home", home, "--rule", RULE, "--engine", "duckdb",
                       "--spark-master", "local[2]")
    assert len(err.strip().splitlines()) == 1 and "master URL is for the spark engine" in err
    code, _, err = run(capsys, "funnel", "--home", home, "--step", "charged", "--step",
                       "viewed", "--from", "2026-06-01", "--to", "2026-06-04",
                       "--engine", "duckdb")
    assert code != 0 and len(err.strip().splitlines()) == 1 and "polars engine only" in err
    monkeypatch.setenv("SEGCORE_ENGINE", "duckdb")
    code, out, _ = run(capsys, "eval", "--home", home, "--rule", RULE, "--as-of", AS_OF,
                       "--json")
    assert json.loads(out)["engine"] == "duckdb"


def test_a_failing_engine_is_one_line(capsys, home):
    from pathlib import Path

    (Path(home) / "events" / "part-0.parquet").write_bytes(b"not parquet")
    code, out, err = run(capsys, "trend", "--home", home, "--rule", RULE, "--from",
                         "2026-06-01", "--to", "2026-06-02", "--engine", "duckdb")
    assert code != 0 and out == ""
    assert len(err.strip().splitlines()) == 1 and err.startswith("error:")
