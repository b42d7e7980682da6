"""``segcore info``: its JSON against direct Polars counts, and the empty store."""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl
import pytest

from segcore import Store
from segcore.cli import main
from segcore.sample import generate


@pytest.fixture(scope="module")
def home(tmp_path_factory) -> Path:
    h = tmp_path_factory.mktemp("info")
    generate(h, users=300, days=30, end="2026-06-30", seed=3)
    return h


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_info_json_matches_polars(home, capsys):
    code, out, err = run(capsys, "info", "--home", str(home), "--json")
    assert code == 0 and err == ""
    info = json.loads(out)
    events = pl.read_parquet(home / "events")
    users = pl.read_parquet(home / "users")
    assert isinstance(info["users"], int) and isinstance(info["events"], int)
    assert info["users"] == users.height == 300
    assert info["events"] == events.height
    assert info["users_with_events"] == events["user_id"].n_unique()
    assert info["first_event"].startswith("2026-06-01T")
    assert info["last_event"].startswith("2026-06-30T") and info["last_event"].endswith("Z")
    counts = {r["event"]: r["count"] for r in info["event_names"]}
    expected = dict(events.group_by("event").len().iter_rows())
    assert counts == expected
    assert [r["count"] for r in info["event_names"]] == sorted(counts.values(), reverse=True)
    assert info["event_columns"]["ts"] == "Datetime(time_unit='us', time_zone='UTC')"
    assert info["event_columns"]["amount"] == "Float64"
    assert info["user_columns"]["tags"] == "List(String)"
    assert info["user_columns"]["subscription_end_date"] == "Date"
    assert info["event_files"] == 1 and info["user_files"] == 1
    assert info == Store(home).info()


def test_info_human_output(home, capsys):
    code, out, _ = run(capsys, "info", "--home", str(home))
    assert code == 0
    lines = out.splitlines()
    assert lines[1].split() == ["users", "300"]
    assert "date range  2026-06-01 to 2026-06-30" in out
    n_charged = pl.read_parquet(home / "events").filter(pl.col("event") == "charged").height
    assert any(line.split() == ["charged", f"{n_charged:,}"] for line in lines)
    assert any(line.split() == ["subscription_end_date", "Date"] for line in lines)


def test_info_on_an_empty_store(tmp_path, capsys):
    code, out, _ = run(capsys, "info", "--home", str(tmp_path / "nothing"))
    assert code == 0
    assert "empty" in out and "segcore sample" in out and "segcore ingest" in out
    code, out, _ = run(capsys, "info", "--home", str(tmp_path / "nothing"), "--json")
    info = json.loads(out)
    assert code == 0 and info["users"] == 0 and info["events"] == 0
    assert info["event_names"] == [] and info["first_event"] is None
    assert not (tmp_path / "nothing").exists()


def test_info_uses_segcore_home(home, capsys, monkeypatch):
    monkeypatch.setenv("SEGCORE_HOME", str(home))
    code, out, _ = run(capsys, "info", "--json")
    assert code == 0 and json.loads(out)["users"] == 300


def test_info_human_types_are_short(home, capsys):
    _, out, _ = run(capsys, "info", "--home", str(home))
    lines = [line.split(maxsplit=1) for line in out.splitlines() if line.startswith("  ")]
    types = {k: v.strip() for k, v in (x for x in lines if len(x) == 2)}
    assert types["ts"] == "Datetime(us, UTC)"
    assert types["created_at"] == "Datetime(us, UTC)"
    assert types["tags"] == "List(String)"
